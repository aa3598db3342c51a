"""The multi-tenant abuse suite (docs/security.md): one test per attack a tenant who may create
Canaries and MetricTemplates in its own namespace can try, on a real API server with the agent
under exactly the RBAC `init` installs.

Each asserts what the attack was after: no secret byte reaches a listener it was not meant for,
no internal URL is fetched, no reply body lands in status or Events, another namespace's
canary keeps its pace, the agent's memory stays bounded. Listeners on 127.0.0.1 play the
tenant's endpoints; where a test is about a defence other than the egress policy, the agent is
told to allow that listener (`--allow-egress`), so the defence under test is the only one left.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.agent_harness import AgentProcess, ClusterView, deployment, wait_for
from tests.realcluster.bed import Bed, plain_canary
from tests.realcluster.bed import image as tagged
from tests.realcluster.listeners import Listener, listening, prometheus_vector

pytestmark = [pytest.mark.realcluster]

GROUP_VERSION = "kubectl-canary.dev/v1alpha1"
ALLOWED_ADDRESSES = "kubectl-canary.dev/allowed-addresses"
QUERY = 'sum(up{namespace="{{ namespace }}"})'


# ----- building blocks -----


def template(
    ns: str | None, name: str, address: str, secret: str = "", kind: str = "MetricTemplate"
) -> dict[str, Any]:
    provider: dict[str, Any] = {"type": "prometheus"}
    if address:
        provider["address"] = address
    if secret:
        provider["secretRef"] = {"name": secret}
    metadata: dict[str, Any] = {"name": name}
    if ns:
        metadata["namespace"] = ns
    return {
        "apiVersion": GROUP_VERSION,
        "kind": kind,
        "metadata": metadata,
        "spec": {"provider": provider, "query": QUERY},
    }


def secret(
    ns: str, name: str, data: dict[str, str], *, allowed: str = "", type_: str = "Opaque"
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": ns}
    if allowed:
        metadata["annotations"] = {ALLOWED_ADDRESSES: allowed}
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": type_,
        "data": encoded,
    }


def checked_canary(
    ns: str,
    name: str,
    *,
    template_ref: dict[str, Any] | None = None,
    variables: dict[str, str] | None = None,
    webhooks: list[dict[str, Any]] | None = None,
    metrics_server: str = "",
) -> dict[str, Any]:
    """A kubernetes-provider Canary with one templated check and/or webhooks."""
    canary = plain_canary(ns, name)
    analysis = canary["spec"]["analysis"]
    if template_ref is not None:
        metric: dict[str, Any] = {
            "name": "up",
            "interval": "30s",
            "templateRef": template_ref,
            "thresholdRange": {"min": 0},
        }
        if variables:
            metric["templateVariables"] = variables
        analysis["metrics"] = [metric]
    if webhooks:
        analysis["webhooks"] = webhooks
    if metrics_server:
        canary["spec"]["metricsServer"] = metrics_server
    return canary


def start_release(c: ClusterView, ns: str, name: str, canary: dict[str, Any]) -> None:
    """Deploy `name`, let the agent initialise it, then ship a new version."""
    c.apply(deployment(ns, name, tagged("1.1.1")))
    c.apply(canary)
    c.wait_phase(ns, name, "Initialized", 90, 0.5)
    c.set_image(ns, name, tagged("1.1.2"))


def condition(c: ClusterView, ns: str, name: str, kind: str) -> dict[str, Any]:
    found = [x for x in c.status(ns, name).get("conditions", []) if x["type"] == kind]
    return found[0] if found else {}


def wait_invalid(c: ClusterView, ns: str, name: str, *words: str) -> str:
    """Wait for Valid=False and return its message, which must name every one of `words`."""
    wait_for(
        f"{ns}/{name} Valid=False",
        lambda: condition(c, ns, name, "Valid").get("status") == "False",
        60,
        0.5,
    )
    message = str(condition(c, ns, name, "Valid").get("message", ""))
    for word in words:
        assert word.lower() in message.lower(), message
    # The agent writes the status first and posts the Event after it in the same tick, so a
    # reader can see the condition a moment before the Event exists.
    wait_for(
        f"a Warning event for {ns}/{name}",
        lambda: any(e.get("type") == "Warning" for e in c.events(ns, name)),
        30,
        0.5,
    )
    return message


def messages(c: ClusterView, ns: str, name: str) -> str:
    """Everything the agent wrote about a Canary: its status and its Events."""
    events = [str(e.get("message", "")) for e in c.events(ns, name)]
    return json.dumps(c.status(ns, name)) + "\n" + "\n".join(events)


def wait_event(c: ClusterView, ns: str, name: str, *words: str, timeout: float = 90) -> str:
    def found() -> str:
        for e in c.events(ns, name):
            text = str(e.get("message", ""))
            if all(w.lower() in text.lower() for w in words):
                return text
        return ""

    return str(wait_for(f"an event about {ns}/{name} saying {words}", found, timeout, 0.5))


def rss_bytes(agent: AgentProcess) -> int:
    for line in Path(f"/proc/{agent.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for the agent")


def allow(*listeners: Listener) -> list[str]:
    return [arg for x in listeners for arg in ("--allow-egress", x.url)]


# ----- credentials go only where their owner said -----


@pytest.mark.timeout(420)
def test_template_credentials_never_reach_a_tenant_chosen_address(
    bed: Bed, ns: str, tmp_path: Path
) -> None:
    """Four ways a tenant tried to make the agent send a Secret to its own listener; each is
    refused and the listener sees nothing: a platform MetricTemplate in another namespace with
    the tenant's `metricsServer`; its own template naming a service-account token, or a Secret
    whose owner never marked it for metrics, with its address; a template with a secretRef and
    no address of its own. The one Secret marked for an address reaches exactly that address."""
    c = bed.view()
    platform = bed.namespace("abuse-platform")
    try:
        with (
            listening(body=prometheus_vector(1)) as thief,
            listening(body=prometheus_vector(1)) as owners,
        ):
            platform_token = f"platform-{uuid.uuid4().hex}"
            c.apply(secret(platform, "prom", {"token": platform_token}, allowed=owners.url))
            c.apply(template(platform, "shared", owners.url, "prom"))

            db_password = f"db-{uuid.uuid4().hex}"
            c.apply(secret(ns, "db", {"username": "app", "password": db_password}))
            c.apply(template(ns, "steal-db", thief.url, "db"))
            sa_token = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": "sa-token",
                    "namespace": ns,
                    "annotations": {"kubernetes.io/service-account.name": "default"},
                },
                "type": "kubernetes.io/service-account-token",
            }
            c.apply(sa_token)
            c.apply(template(ns, "steal-sa", thief.url, "sa-token"))
            tenant_token = f"tenant-{uuid.uuid4().hex}"
            c.apply(secret(ns, "mine", {"token": tenant_token}, allowed=owners.url))
            c.apply(template(ns, "no-address", "", "mine"))
            c.apply(template(ns, "owned", owners.url, "mine"))

            with bed.agent(tmp_path / "agent.log", *allow(thief, owners)):
                # Refused from the spec alone: Valid=False, nothing created, nothing sent.
                c.apply(deployment(ns, "cross", tagged("1.1.1")))
                c.apply(
                    checked_canary(
                        ns,
                        "cross",
                        template_ref={"name": "shared", "namespace": platform},
                        metrics_server=thief.url,
                    )
                )
                wait_invalid(c, ns, "cross", "ClusterMetricTemplate")
                c.apply(deployment(ns, "no-address", tagged("1.1.1")))
                c.apply(
                    checked_canary(
                        ns,
                        "no-address",
                        template_ref={"name": "no-address"},
                        metrics_server=thief.url,
                    )
                )
                wait_invalid(c, ns, "no-address", "address")

                # Refused when the check runs: the Secret is not for that address.
                for name, ref in (("steal-db", "steal-db"), ("steal-sa", "steal-sa")):
                    start_release(c, ns, name, checked_canary(ns, name, template_ref={"name": ref}))
                wait_event(c, ns, "steal-db", "db")
                wait_event(c, ns, "steal-sa", "sa-token")

                # The owner's own arrangement works: its token goes to its address only.
                start_release(
                    c, ns, "owned", checked_canary(ns, "owned", template_ref={"name": "owned"})
                )
                c.wait_phase(ns, "owned", "Succeeded", 120, 0.5)

            stolen = thief.everything_received()
            assert thief.requests == [], f"the tenant's listener was called: {stolen[:300]}"
            sa = c.get("v1", "Secret", ns, "sa-token") or {}
            sa_jwt = base64.b64decode((sa.get("data") or {}).get("token", "")).decode()
            for value in (platform_token, db_password, tenant_token, sa_jwt):
                assert not value or value not in stolen
            received = owners.everything_received()
            assert f"Bearer {tenant_token}" in received
            assert platform_token not in received  # "shared" was refused before any query
            for name in ("cross", "no-address", "steal-db", "steal-sa", "owned"):
                written = messages(c, ns, name)
                for value in (platform_token, db_password, tenant_token):
                    assert value not in written
    finally:
        bed.drop_namespace(platform)


# ----- egress: internal URLs are never fetched -----

REFUSAL_WORDS = ("denied", "userinfo", "fragment")


def wait_refused(c: ClusterView, ns: str, name: str) -> str:
    """The Canary says its URL was refused: in its Valid condition (refused by the spec check)
    or in a Warning event (refused when the call was due)."""

    def said() -> str:
        valid = condition(c, ns, name, "Valid")
        texts = [str(valid.get("message", ""))] if valid.get("status") == "False" else []
        texts += [
            str(e.get("message", "")) for e in c.events(ns, name) if e.get("type") == "Warning"
        ]
        return next((t for t in texts if any(w in t.lower() for w in REFUSAL_WORDS)), "")

    return str(wait_for(f"{ns}/{name} to report its URL refused", said, 90, 0.5))


@pytest.mark.timeout(300)
def test_internal_urls_are_never_fetched(bed: Bed, ns: str, tmp_path: Path) -> None:
    """A tenant's metrics server, template address and webhooks pointing at internal
    addresses (loopback, the cloud metadata address, a `#` that would cut the appended query
    path off, userinfo): no connection is ever made, and each Canary says why."""
    c = bed.view()
    with listening(body=b"INTERNAL-SECRET") as internal:
        c.apply(template(ns, "internal", f"{internal.url}/admin"))
        c.apply(template(ns, "tenant-server", ""))
        canaries = {
            "tmpl": checked_canary(ns, "tmpl", template_ref={"name": "internal"}),
            "fragment": checked_canary(
                ns,
                "fragment",
                template_ref={"name": "tenant-server"},
                metrics_server=f"{internal.url}/admin#",
            ),
        }
        hooks = {
            "hook-loopback": f"{internal.url}/hook",
            "hook-metadata": "http://169.254.169.254/latest/meta-data/iam/",
            "hook-userinfo": f"http://user:pw@127.0.0.1:{internal.port}/",
        }
        for name, url in hooks.items():
            hook = {"name": "gate", "type": "pre-rollout", "url": url, "timeout": "5s"}
            canaries[name] = checked_canary(ns, name, webhooks=[hook])
        with bed.agent(tmp_path / "agent.log"):
            for name, canary in canaries.items():
                c.apply(deployment(ns, name, tagged("1.1.1")))
                c.apply(canary)
            wait_for(
                "every Canary initialised or refused",
                lambda: all(
                    c.phase(ns, n) == "Initialized"
                    or condition(c, ns, n, "Valid").get("status") == "False"
                    for n in canaries
                ),
                90,
                0.5,
            )
            for name in canaries:
                if c.phase(ns, name) == "Initialized":
                    c.set_image(ns, name, tagged("1.1.2"))
            said = {name: wait_refused(c, ns, name) for name in canaries}
        assert internal.connections == 0, internal.everything_received()
        for name in canaries:
            assert "INTERNAL-SECRET" not in messages(c, ns, name), said[name]


# ----- reply bodies are never reflected -----


@pytest.mark.timeout(300)
def test_reply_bodies_never_reach_status_events_or_logs(bed: Bed, ns: str, tmp_path: Path) -> None:
    """An allowed metrics server and webhook answering errors whose bodies carry a marker (what
    an internal service's page would be): the checks fail, and the marker is in no status, no
    Event and no line of the agent's log."""
    marker = f"BODY-{uuid.uuid4().hex}"
    c = bed.view()
    with (
        listening(status=500, body=marker.encode()) as failing,
        listening(status=200, body=f"<html>{marker}</html>".encode()) as html,
    ):
        c.apply(template(ns, "html", html.url))
        hook = {"name": "gate", "type": "pre-rollout", "url": failing.url, "timeout": "5s"}
        log = tmp_path / "agent.log"
        with bed.agent(log, *allow(failing, html)):
            start_release(c, ns, "hook", checked_canary(ns, "hook", webhooks=[hook]))
            start_release(
                c, ns, "metric", checked_canary(ns, "metric", template_ref={"name": "html"})
            )
            wait_event(c, ns, "hook", "gate", "500")
            wait_event(c, ns, "metric", "non-JSON")
        assert failing.requests and html.requests  # the calls were made: allowed on purpose
        for name in ("hook", "metric"):
            assert marker not in messages(c, ns, name)
        assert marker not in log.read_text()


# ----- every call bounded -----


@pytest.mark.timeout(300)
def test_a_huge_reply_keeps_the_agent_memory_bounded(bed: Bed, ns: str, tmp_path: Path) -> None:
    """A 200 MiB answer from an (allowed) metrics server and webhook: the agent stops reading
    at its limit, says so, and its memory barely moves (reading it whole cost ~600 MiB)."""
    c = bed.view()
    size = 200 << 20
    with listening("huge", size=size) as huge:
        c.apply(template(ns, "huge", huge.url))
        hook = {"name": "gate", "type": "pre-rollout", "url": huge.url, "timeout": "20s"}
        with bed.agent(tmp_path / "agent.log", *allow(huge)) as agent:
            c.apply(deployment(ns, "metric", tagged("1.1.1")))
            c.apply(deployment(ns, "hook", tagged("1.1.1")))
            c.apply(checked_canary(ns, "metric", template_ref={"name": "huge"}))
            c.apply(checked_canary(ns, "hook", webhooks=[hook]))
            c.wait_phase(ns, "metric", "Initialized", 90, 0.5)
            c.wait_phase(ns, "hook", "Initialized", 90, 0.5)
            before = rss_bytes(agent)
            peak = before
            c.set_image(ns, "metric", tagged("1.1.2"))
            c.set_image(ns, "hook", tagged("1.1.2"))

            def both_refused() -> bool:
                nonlocal peak
                peak = max(peak, rss_bytes(agent))
                return all("larger than" in messages(c, ns, n) for n in ("metric", "hook"))

            wait_for("both answers cut at the limit", both_refused, 120, 0.2)
        grown = peak - before
        print(f"agent RSS {before >> 20} MiB before, peak {peak >> 20} MiB (+{grown >> 20} MiB)")
        assert len(huge.requests) >= 2
        assert grown < 64 << 20, (
            f"the agent grew by {grown >> 20} MiB reading a {size >> 20} MiB reply"
        )


@pytest.mark.timeout(420)
def test_many_secrets_do_not_grow_the_agent(bed: Bed, ns: str, tmp_path: Path) -> None:
    """Secrets are read by name only when needed, never listed or cached: 96 Secrets of
    512 KiB (48 MiB) appearing in a watched namespace leave the agent's memory where it was
    (a cache of them cost more than their size)."""
    c = bed.view()
    blob = base64.b64encode(b"s" * (512 << 10)).decode()
    with bed.agent(tmp_path / "agent.log") as agent:
        c.apply(deployment(ns, "app", tagged("1.1.1")))
        c.apply(plain_canary(ns, "app"))
        c.wait_phase(ns, "app", "Initialized", 90, 0.5)
        time.sleep(2)
        before = rss_bytes(agent)
        for batch in range(12):
            items = [
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": f"bulk-{batch}-{i}", "namespace": ns},
                    "data": {"blob": blob},
                }
                for i in range(8)
            ]
            # create, not apply: apply's last-applied annotation would repeat the 512 KiB.
            bed.kubectl(
                "create",
                "-f",
                "-",
                input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
            )
        time.sleep(5)  # a watch would have delivered them all by now
        after = rss_bytes(agent)
        # The agent still works.
        c.set_image(ns, "app", tagged("1.1.2"))
        c.wait_phase(ns, "app", "Succeeded", 120, 0.5)
    grown = after - before
    print(f"agent RSS {before >> 20} MiB before 48 MiB of Secrets, {after >> 20} MiB after")
    assert grown < 16 << 20, f"the agent grew by {grown >> 20} MiB with 48 MiB of Secrets"


# ----- fairness: one tenant's slow calls do not stall another's canary -----


@pytest.mark.timeout(420)
def test_hung_webhooks_in_one_namespace_do_not_stall_another(
    bed: Bed, ns: str, tmp_path: Path
) -> None:
    """Four canaries whose confirm-rollout gate hangs (40 s timeout each call) hold every
    worker of the old fixed pool; the other namespace's release must go through meanwhile:
    it promotes long before the hung calls time out."""
    c = bed.view()
    other = bed.namespace("abuse-other")
    hung_timeout = 40.0
    try:
        with listening("hang") as hang:
            gate = {"name": "gate", "type": "confirm-rollout", "url": hang.url, "timeout": "40s"}
            with bed.agent(tmp_path / "agent.log", *allow(hang)):
                names = [f"slow-{i}" for i in range(4)]
                for name in names:
                    c.apply(deployment(ns, name, tagged("1.1.1")))
                    c.apply(checked_canary(ns, name, webhooks=[gate]))
                c.apply(deployment(other, "steady", tagged("1.1.1")))
                c.apply(plain_canary(other, "steady"))
                for name in names:
                    c.wait_phase(ns, name, "Initialized", 90, 0.5)
                c.wait_phase(other, "steady", "Initialized", 90, 0.5)
                for name in names:
                    c.set_image(ns, name, tagged("1.1.2"))
                wait_for("the hung gates called", lambda: len(hang.requests) >= 2, 60, 0.2)
                began = time.monotonic()
                c.set_image(other, "steady", tagged("1.1.2"))
                c.wait_phase(other, "steady", "Succeeded", 120, 0.5)
                took = time.monotonic() - began
                print(f"the other namespace's release took {took:.1f}s beside 4 hung gates")
                assert took < hung_timeout, (
                    f"{other}/steady waited {took:.0f}s: it was stuck behind the hung webhooks"
                )
                assert all(
                    c.phase(ns, n) in ("Initialized", "Waiting", "Progressing") for n in names
                )
    finally:
        bed.drop_namespace(other)


# ----- PromQL template variables -----


@pytest.mark.timeout(300)
def test_template_variables_cannot_break_out_of_the_query(
    bed: Bed, ns: str, tmp_path: Path
) -> None:
    """A templateVariables value that closes the quoted label value and appends its own
    selector is refused with a clear condition; no query is ever sent. A plain value works."""
    c = bed.view()
    with listening(body=prometheus_vector(1)) as prom:
        scoped = template(ns, "scoped", prom.url)
        scoped["spec"]["query"] = (
            'sum(rate(http_requests_total{namespace="{{ namespace }}",'
            'status=~"{{ variables.codes }}"}[{{ interval }}]))'
        )
        c.apply(scoped)
        evil = {"codes": '5.."}) or sum(rate(http_requests_total{namespace=~".+'}
        with bed.agent(tmp_path / "agent.log", *allow(prom)):
            c.apply(deployment(ns, "evil", tagged("1.1.1")))
            c.apply(checked_canary(ns, "evil", template_ref={"name": "scoped"}, variables=evil))
            wait_invalid(c, ns, "evil", "codes")
            assert prom.requests == []
            good = {"codes": "5.."}
            start_release(
                c,
                ns,
                "good",
                checked_canary(ns, "good", template_ref={"name": "scoped"}, variables=good),
            )
            c.wait_phase(ns, "good", "Succeeded", 120, 0.5)
        queries = [r.path for r in prom.requests]
        assert queries and all(f"namespace%3D%22{ns}%22" in q for q in queries), queries[:2]


# ----- tenant routing fields -----


def istio_canary(ns: str, name: str, service: dict[str, Any]) -> dict[str, Any]:
    canary = plain_canary(ns, name)
    canary["spec"]["provider"] = "istio"
    canary["spec"]["service"].update(service)
    return canary


@pytest.mark.timeout(300)
def test_tenant_routing_fields_follow_the_operators_policy(
    bed: Bed, ns: str, tmp_path: Path
) -> None:
    """Binding another namespace's gateway, claiming a wildcard host or turning TLS off is
    refused (Valid=False, no VirtualService written); a gateway the operator allowed works."""
    c = bed.view()
    refused = {
        "gw": {"gateways": ["istio-system/public-gateway"]},
        "wild": {"hosts": ["*"]},
        "notls": {"trafficPolicy": {"tls": {"mode": "DISABLE"}}},
    }
    words = {"gw": "istio-system/public-gateway", "wild": "*", "notls": "DISABLE"}
    allowed = "--allow-gateway=istio-system/shared-gateway"
    with bed.agent(tmp_path / "agent.log", allowed, provider="istio"):
        for name, service in refused.items():
            c.apply(deployment(ns, name, tagged("1.1.1")))
            c.apply(istio_canary(ns, name, service))
        c.apply(deployment(ns, "ok", tagged("1.1.1")))
        c.apply(istio_canary(ns, "ok", {"gateways": ["istio-system/shared-gateway", "mesh"]}))
        for name in refused:
            wait_invalid(c, ns, name, words[name])
        c.wait_phase(ns, "ok", "Initialized", 90, 0.5)
    for name in refused:
        assert c.get("networking.istio.io/v1beta1", "VirtualService", ns, name) is None
    vs = c.get("networking.istio.io/v1beta1", "VirtualService", ns, "ok")
    assert vs is not None and "istio-system/shared-gateway" in vs["spec"]["gateways"]
