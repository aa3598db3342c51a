"""Validate a Canary or MetricTemplate document and report every problem at once.

Shape rules (what the CRD schema also enforces) are checked while decoding (`decode.py`); the
rules here relate fields to each other, which an OpenAPI schema cannot express and which we do
not leave to CEL (Kubernetes 1.24 drops CEL rules). Each rule skips fields that already have a
shape problem, so one mistake is reported once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kubectl_canary.api.decode import (
    DNS1035_LABEL,
    decode_canary,
    decode_metric_template,
)
from kubectl_canary.api.errors import Problem, show_value
from kubectl_canary.api.model import (
    BUILTIN_METRICS,
    CLUSTER_TEMPLATE_KIND,
    PROVIDERS,
    Canary,
    MetricTemplate,
    TemplateRef,
    ThresholdRange,
)
from kubectl_canary.api.reader import Problems
from kubectl_canary.objects.names import SERVICE_NAME_MAX

DEFAULT_PROVIDER = "kubernetes"
# Providers that can route by request attributes (headers, cookies) and mirror traffic.
_L7_PROVIDERS = ("istio", "gatewayapi")
# What a built-in metric's value can be: a percentage, and milliseconds.
_BUILTIN_RANGE: dict[str, tuple[float, float | None]] = {
    "request-success-rate": (0.0, 100.0),
    "request-duration": (0.0, None),
}


def validate_canary(obj: Any, *, default_provider: str = DEFAULT_PROVIDER) -> list[Problem]:
    """Every problem of a Canary document (a dict as read from YAML or the API server)."""
    return check_canary(obj, default_provider=default_provider)[1]


def validate_metric_template(obj: Any) -> list[Problem]:
    return check_metric_template(obj)[1]


def check_canary(
    obj: Any, *, default_provider: str = DEFAULT_PROVIDER
) -> tuple[Canary | None, list[Problem]]:
    """The decoded Canary (None when `obj` is not an object) and every problem found.

    `default_provider` is the agent's `--provider`, used when `spec.provider` is unset.
    """
    if default_provider not in PROVIDERS:
        raise ValueError(f"unknown default provider {default_provider!r}")
    if not isinstance(obj, Mapping):
        return None, [Problem("(document)", "must be an object", obj)]
    problems = Problems()
    canary = decode_canary(obj, problems, default_provider)
    if isinstance(obj.get("spec"), Mapping):
        _CrossChecks(canary, obj, problems).run()
    return canary, problems.items


def check_metric_template(obj: Any) -> tuple[MetricTemplate | None, list[Problem]]:
    if not isinstance(obj, Mapping):
        return None, [Problem("(document)", "must be an object", obj)]
    problems = Problems()
    template = decode_metric_template(obj, problems)
    return template, problems.items


class _CrossChecks:
    def __init__(self, canary: Canary, obj: Mapping[str, Any], problems: Problems) -> None:
        self.namespace = canary.namespace
        self.spec = canary.spec
        self.analysis = canary.spec.analysis
        self.problems = problems
        spec = obj.get("spec")
        analysis = spec.get("analysis") if isinstance(spec, Mapping) else None
        self.raw_analysis: Mapping[str, Any] = analysis if isinstance(analysis, Mapping) else {}

    def clean(self, *paths: str) -> bool:
        return not self.problems.touches(*paths)

    def run(self) -> None:
        self.weights()
        self.routing()
        self.metrics()
        self.webhooks()
        self.names()

    def weights(self) -> None:
        a, p = self.analysis, "spec.analysis"
        if self.raw_analysis.get("stepWeights"):
            if self.clean(f"{p}.stepWeights"):
                self.step_weights()
        elif (
            a.iterations == 0
            and self.clean(f"{p}.stepWeight", f"{p}.maxWeight", f"{p}.iterations")
            and a.step_weight > a.max_weight
        ):
            self.problems.add(
                f"{p}.stepWeight", f"must be at most maxWeight ({a.max_weight})", a.step_weight
            )
        if a.mirror_weight > 0 and not a.mirror and self.clean(f"{p}.mirror"):
            self.problems.add(
                f"{p}.mirrorWeight", "needs spec.analysis.mirror: true", a.mirror_weight
            )

    def step_weights(self) -> None:
        a, p = self.analysis, "spec.analysis"
        for index in range(1, len(a.step_weights)):
            before, step = a.step_weights[index - 1], a.step_weights[index]
            if step <= before:
                self.problems.add(
                    f"{p}.stepWeights[{index}]",
                    f"must be more than the step before it ({before})",
                    step,
                )
        explicit_max = self.raw_analysis.get("maxWeight")
        last = a.step_weights[-1]
        if explicit_max is not None and self.clean(f"{p}.maxWeight") and explicit_max != last:
            self.problems.add(
                f"{p}.maxWeight",
                f"must be omitted or equal the last of stepWeights ({last})",
                explicit_max,
            )

    def routing(self) -> None:
        spec, a = self.spec, self.analysis
        provider_ok = self.clean("spec.provider")
        if a.match and self.clean("spec.analysis.match", "spec.analysis.iterations"):
            if a.iterations == 0:
                self.problems.add(
                    "spec.analysis.match",
                    "A/B testing needs spec.analysis.iterations > 0 (header matching runs "
                    "iterations, not weights)",
                )
            if provider_ok and spec.provider not in _L7_PROVIDERS:
                self.problems.add(
                    "spec.analysis.match",
                    f"needs provider {' or '.join(_L7_PROVIDERS)} to route by request, "
                    f"provider is {spec.provider!r}",
                )
        if a.mirror and provider_ok and spec.provider not in _L7_PROVIDERS:
            self.problems.add(
                "spec.analysis.mirror",
                f"needs provider {' or '.join(_L7_PROVIDERS)}, provider is {spec.provider!r}",
                True,
            )
        if (
            spec.provider == "gatewayapi"
            and provider_ok
            and not spec.service.gateway_refs
            and self.clean("spec.service.gatewayRefs", "spec.service")
        ):
            self.problems.add(
                "spec.service.gatewayRefs",
                "required by provider gatewayapi (the Gateways the HTTPRoute attaches to)",
            )

    def metrics(self) -> None:
        seen: dict[str, int] = {}
        for index, metric in enumerate(self.analysis.metrics):
            path = f"spec.analysis.metrics[{index}]"
            if not self.clean(path):
                continue
            if metric.name in seen:
                self.problems.add(
                    f"{path}.name", f"duplicate of metrics[{seen[metric.name]}]", metric.name
                )
            seen.setdefault(metric.name, index)
            if metric.template_ref is None and metric.name not in BUILTIN_METRICS:
                self.problems.add(
                    f"{path}.name",
                    f"is not a built-in metric ({', '.join(BUILTIN_METRICS)}) and no "
                    "templateRef names a MetricTemplate",
                    metric.name,
                )
            ref = metric.template_ref
            if ref is not None and self.clean(f"{path}.templateRef"):
                self.template_ref(f"{path}.templateRef", ref)
            bounds = metric.threshold_range
            if metric.template_ref is None and self.clean(f"{path}.thresholdRange"):
                self.builtin_bounds(f"{path}.thresholdRange", metric.name, bounds)
            if bounds.min is not None and bounds.max is not None and bounds.min > bounds.max:
                self.problems.add(
                    f"{path}.thresholdRange.min",
                    f"must be at most thresholdRange.max ({show_value(bounds.max)})",
                    bounds.min,
                )

    def builtin_bounds(self, path: str, name: str, bounds: ThresholdRange) -> None:
        """A built-in metric's unit is known, so a bound outside it can never pass (or never
        fail): request-success-rate is a percentage, request-duration milliseconds."""
        if name not in _BUILTIN_RANGE:
            return
        lo, hi = _BUILTIN_RANGE[name]
        allowed = f">= {lo:g}" if hi is None else f"{lo:g}..{hi:g}"
        for key, bound in (("min", bounds.min), ("max", bounds.max)):
            if bound is not None and (bound < lo or (hi is not None and bound > hi)):
                self.problems.add(f"{path}.{key}", f"must be {allowed} for {name}", bound)

    def template_ref(self, path: str, ref: TemplateRef) -> None:
        """A Canary uses templates of its own namespace, or the platform's cluster-scoped ones:
        another namespace's MetricTemplate carries that namespace's credentials and address."""
        if ref.kind == CLUSTER_TEMPLATE_KIND:
            if ref.namespace is not None:
                self.problems.add(
                    f"{path}.namespace",
                    "must be unset: a ClusterMetricTemplate has none",
                    ref.namespace,
                )
        elif ref.namespace is not None and ref.namespace != self.namespace:
            self.problems.add(
                f"{path}.namespace",
                f"a MetricTemplate of another namespace cannot be used (its credentials are that "
                f"namespace's); use one in {self.namespace} or a ClusterMetricTemplate "
                "(kind: ClusterMetricTemplate), which the platform team shares",
                ref.namespace,
            )

    def webhooks(self) -> None:
        seen: dict[str, int] = {}
        for index, hook in enumerate(self.analysis.webhooks):
            path = f"spec.analysis.webhooks[{index}]"
            if not self.clean(f"{path}.name"):
                continue
            if hook.name in seen:
                self.problems.add(
                    f"{path}.name", f"duplicate of webhooks[{seen[hook.name]}]", hook.name
                )
            seen.setdefault(hook.name, index)

    def names(self) -> None:
        # Without service.name the target's name also names the Services, so it must be a
        # DNS-1035 label short enough for the `-primary` suffix.
        target = self.spec.target_ref.name
        if (
            self.spec.service.name is None
            and target
            and self.clean("spec.targetRef.name")
            and (not re.match(DNS1035_LABEL, target) or len(target) > SERVICE_NAME_MAX)
        ):
            self.problems.add(
                "spec.targetRef.name",
                "also names the Services while spec.service.name is unset, so must be a "
                f"DNS-1035 label of at most {SERVICE_NAME_MAX} characters",
                target,
            )
