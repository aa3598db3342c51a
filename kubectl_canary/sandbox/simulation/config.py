"""The simulation's runtime settings, read from the ConfigMap kube-system/sandbox-traffic.

The format is documented in docs/sandbox-simulation.md. A malformed ConfigMap never stops the
simulation: the previous valid settings stay in force and the error is logged, the way a real
component keeps running on a bad config reload.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

CONFIG_NAMESPACE = "kube-system"
CONFIG_NAME = "sandbox-traffic"
DEFAULT_BAD_IMAGE_PATTERN = "crashloop"
DEFAULT_READY_DELAY_SECONDS = 2.0
DEFAULT_P50_MS = 50.0
DEFAULT_P99_MS = 150.0


class ConfigError(ValueError):
    """The ConfigMap holds something the simulation cannot use."""


@dataclass(frozen=True)
class RequestClass:
    """A share of an app's requests that carries the same headers."""

    share: float
    headers: dict[str, str]


@dataclass(frozen=True)
class AppTraffic:
    """Clients sending `rps` requests per simulated second to Service `namespace/service`."""

    namespace: str
    service: str
    rps: float
    source_workload: str = "sandbox-client"
    path: str = "/"
    request_classes: tuple[RequestClass, ...] = ()

    def classes_with_remainder(self) -> list[RequestClass]:
        """The configured classes plus the plain requests that make up the rest of the mix."""
        configured = list(self.request_classes)
        rest = 1.0 - sum(c.share for c in configured)
        if rest > 1e-9:
            configured.append(RequestClass(share=rest, headers={}))
        return configured


@dataclass(frozen=True)
class Profile:
    """How a version behaves: share of requests answered 500, and latency percentiles."""

    error_rate: float = 0.0
    p50_ms: float = DEFAULT_P50_MS
    p99_ms: float = DEFAULT_P99_MS


@dataclass(frozen=True)
class TrafficConfig:
    apps: tuple[AppTraffic, ...] = ()
    profiles: dict[str, Profile] = field(default_factory=dict)
    bad_image_pattern: str = DEFAULT_BAD_IMAGE_PATTERN
    ready_delay_seconds: float = DEFAULT_READY_DELAY_SECONDS

    def profile_for_image(self, image: str) -> Profile:
        """The profile keyed by the full image, else by its tag, else the healthy default."""
        if image in self.profiles:
            return self.profiles[image]
        return self.profiles.get(image_tag(image), Profile())

    def is_bad_image(self, image: str) -> bool:
        return bool(self.bad_image_pattern) and (
            re.search(self.bad_image_pattern, image_tag(image)) is not None
        )


def image_tag(image: str) -> str:
    """`registry:5000/app:1.2` -> `1.2`; digests and untagged images give `latest`-style tags."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        return last.rsplit(":", 1)[1]
    return "latest"


def parse_config(data: dict[str, str] | None, base: TrafficConfig) -> TrafficConfig:
    """Build settings from a ConfigMap's `data`; keys that are absent keep `base`'s values."""
    data = data or {}
    apps = base.apps
    profiles = base.profiles
    pattern = base.bad_image_pattern
    ready_delay = base.ready_delay_seconds
    if "apps" in data:
        apps = tuple(_parse_app(item) for item in _load_list(data["apps"], "apps"))
    if "profiles" in data:
        loaded = _load_yaml(data["profiles"], "profiles") or {}
        if not isinstance(loaded, dict):
            raise ConfigError("profiles: expected a map of image or tag to profile")
        profiles = {str(key): _parse_profile(str(key), value) for key, value in loaded.items()}
    if "badImagePattern" in data:
        pattern = str(data["badImagePattern"]).strip()
        try:
            re.compile(pattern)
        except re.error as error:
            raise ConfigError(f"badImagePattern: invalid regular expression: {error}") from None
    if "readyDelaySeconds" in data:
        ready_delay = _number(data["readyDelaySeconds"], "readyDelaySeconds", minimum=0.0)
    return TrafficConfig(
        apps=apps, profiles=profiles, bad_image_pattern=pattern, ready_delay_seconds=ready_delay
    )


def _load_yaml(text: str, key: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{key}: not valid YAML: {error}") from None


def _load_list(text: str, key: str) -> list[Any]:
    loaded = _load_yaml(text, key) or []
    if not isinstance(loaded, list):
        raise ConfigError(f"{key}: expected a list")
    return loaded


def _number(value: Any, where: str, minimum: float, maximum: float | None = None) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if number < minimum or (maximum is not None and number > maximum):
        bounds = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ConfigError(f"{where}: must be {bounds}, got {number}")
    return number


def _parse_app(item: Any) -> AppTraffic:
    if not isinstance(item, dict) or "service" not in item:
        raise ConfigError(f"apps: each entry needs at least `service`, got {item!r}")
    where = f"apps[{item['service']}]"
    classes = []
    for entry in item.get("requests") or []:
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}.requests: expected {{share, headers}}, got {entry!r}")
        headers = entry.get("headers") or {}
        if not isinstance(headers, dict):
            raise ConfigError(f"{where}.requests.headers: expected a map")
        share = _number(entry.get("share", 0), f"{where}.requests.share", 0.0, 1.0)
        classes.append(RequestClass(share, {str(k).lower(): str(v) for k, v in headers.items()}))
    if sum(c.share for c in classes) > 1.0 + 1e-9:
        raise ConfigError(f"{where}.requests: shares add up to more than 1")
    return AppTraffic(
        namespace=str(item.get("namespace", "default")),
        service=str(item["service"]),
        rps=_number(item.get("rps", 10), f"{where}.rps", 0.0),
        source_workload=str(item.get("source", "sandbox-client")),
        path=str(item.get("path", "/")),
        request_classes=tuple(classes),
    )


def _parse_profile(key: str, value: Any) -> Profile:
    if not isinstance(value, dict):
        raise ConfigError(f"profiles[{key}]: expected a map")
    latency = value.get("latencyMs") or {}
    if not isinstance(latency, dict):
        raise ConfigError(f"profiles[{key}].latencyMs: expected {{p50, p99}}")
    p50 = _number(latency.get("p50", DEFAULT_P50_MS), f"profiles[{key}].latencyMs.p50", 0.001)
    p99 = _number(
        latency.get("p99", max(p50, DEFAULT_P99_MS * p50 / DEFAULT_P50_MS)),
        f"profiles[{key}].latencyMs.p99",
        p50,
    )
    error_rate = _number(value.get("errorRate", 0), f"profiles[{key}].errorRate", 0.0, 1.0)
    return Profile(error_rate=error_rate, p50_ms=p50, p99_ms=p99)
