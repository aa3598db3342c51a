"""The sandbox-traffic ConfigMap format."""

from __future__ import annotations

import pytest

from kubectl_canary.sandbox.simulation.config import (
    ConfigError,
    Profile,
    TrafficConfig,
    image_tag,
    parse_config,
)

DATA = {
    "apps": """
- namespace: test
  service: mhs
  rps: 50
  source: loadtester
  requests:
    - share: 0.1
      headers: {X-Mirror-Code: "500"}
""",
    "profiles": """
"1.1.3": {errorRate: 0.5}
"ghcr.io/acme/mhs:1.1.4": {errorRate: 0.01, latencyMs: {p50: 100, p99: 900}}
""",
    "badImagePattern": "broken|crashloop",
    "readyDelaySeconds": "5",
}


def test_full_config() -> None:
    config = parse_config(DATA, TrafficConfig())
    (app,) = config.apps
    assert (app.namespace, app.service, app.rps, app.source_workload) == (
        "test", "mhs", 50.0, "loadtester"
    )  # fmt: skip
    shares = [(c.share, c.headers) for c in app.classes_with_remainder()]
    assert shares[0] == (0.1, {"x-mirror-code": "500"})
    assert shares[1][0] == pytest.approx(0.9) and shares[1][1] == {}
    assert config.profile_for_image("ghcr.io/acme/mhs:1.1.3") == Profile(0.5, 50.0, 150.0)
    assert config.profile_for_image("ghcr.io/acme/mhs:1.1.4") == Profile(0.01, 100.0, 900.0)
    # The full image is more specific than a tag; other images are healthy.
    assert config.profile_for_image("other/app:1.1.4") == Profile()
    assert config.is_bad_image("x/y:2.0-broken") and not config.is_bad_image("x/broken:2.0")
    assert config.ready_delay_seconds == 5.0


def test_absent_keys_keep_the_base() -> None:
    base = TrafficConfig(bad_image_pattern="nope", ready_delay_seconds=1.0)
    assert parse_config({}, base) == base
    assert parse_config(None, base) == base


@pytest.mark.parametrize(
    "data,message",
    [
        ({"apps": "- {rps: 3}"}, "needs at least `service`"),
        ({"apps": "service: x"}, "expected a list"),
        ({"apps": "- {service: x, rps: -1}"}, "must be >= 0"),
        ({"apps": "- {service: x, requests: [{share: 0.7}, {share: 0.6}]}"}, "more than 1"),
        ({"profiles": "'1.0': {errorRate: 2}"}, "must be in [0.0, 1.0]"),
        ({"profiles": "'1.0': {latencyMs: {p50: 100, p99: 10}}"}, "must be >= 100"),
        ({"badImagePattern": "("}, "invalid regular expression"),
        ({"apps": "- [unclosed"}, "not valid YAML"),
    ],
)
def test_errors_are_clear(data: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_config(data, TrafficConfig())


def test_image_tag() -> None:
    assert image_tag("ghcr.io:5000/acme/mhs:1.1.3") == "1.1.3"
    assert image_tag("nginx") == "latest"
    assert image_tag("nginx:1.2@sha256:abc") == "1.2"


def test_start_options_accept_a_dict_or_any_object() -> None:
    from types import SimpleNamespace

    from kubectl_canary.sandbox.simulation import SimulationOptions

    assert SimulationOptions.coerce({"speed": 5, "seed": 3}) == SimulationOptions(speed=5, seed=3)
    server_args = SimpleNamespace(speed=2.0, seed=1, port=0)  # extra attributes are ignored
    assert SimulationOptions.coerce(server_args) == SimulationOptions(speed=2.0, seed=1)
    assert SimulationOptions.coerce(None) == SimulationOptions()
    with pytest.raises(ValueError, match="speed must be > 0"):
        SimulationOptions.coerce({"speed": 0})
