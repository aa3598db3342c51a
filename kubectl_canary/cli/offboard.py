"""`kubectl canary offboard NAME`: hand the app back to a plain Deployment, with no downtime.

The order is what keeps the apex Service serving throughout:
  1. suspend the Canary, so the agent stops acting (it would scale the target back to zero);
  2. restore the target from the primary (the last good template and its replica count) and
     wait until every replica is ready;
  3. point the apex Service at the target's pods (or restore the Service we took over), and
     check it has ready endpoints, switching back at once if not;
  4. route all traffic through the apex Service (restore a taken-over routing object, rewrite
     one serving a gateway, delete a mesh-internal one we created);
  5. delete what the agent generated (primary Deployment and its -primary ConfigMap/Secret
     copies, -primary/-canary Services, DestinationRules, the HPA copy), only objects
     labelled as ours;
  6. drop our finalizer and delete the Canary (nothing it owns is left to garbage-collect).
Each step checks whether it is already done, so after a failure the same command continues.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from kubectl_canary.api.config_refs import (
    PRIMARY_COPY_SUFFIX,
    handed_back_template,
    referenced_configs,
)
from kubectl_canary.api.model import (
    API_VERSION,
    FINALIZER,
    GROUP,
    MANAGED_BY_LABEL,
    ORIGINAL_SPEC_ANNOTATION,
    Canary,
)
from kubectl_canary.cli.errors import CliError
from kubectl_canary.cli.options import Session, kube_options, name_argument, timeout_option
from kubectl_canary.cli.reads import GATEWAY_API, ISTIO_API, get_canary, parse, service_name
from kubectl_canary.kube import Kube
from kubectl_canary.resources import KubeError, ResourceTypeMissingError

Obj = dict[str, Any]

POLL_SECONDS = 1.0
SUSPEND_WAIT_SECONDS = 30.0
HPA_API = "autoscaling/v2"


class StepFailed(CliError):
    pass


@dataclass
class Step:
    title: str
    done: Callable[[], str | None]  # why it is already done, or None
    run: Callable[[], None]  # act, then verify; raises StepFailed


class Offboarding:
    """The six steps for one canary, bound to its live objects."""

    def __init__(self, session: Session, name: str, timeout: float) -> None:
        self.session = session
        self.kube: Kube = session.kube
        self.ns = session.namespace
        self.name = name
        self.timeout = timeout
        self.obj = get_canary(self.kube, self.ns, name)
        self.canary: Canary = parse(self.obj)
        self.target = self.canary.spec.target_ref.name
        self.primary = f"{self.target}-primary"
        self.svc = service_name(self.canary)

    # --- reads ---

    def get(self, api_version: str, kind: str, name: str) -> Obj | None:
        try:
            return self.kube.get(api_version, kind, self.ns, name)
        except ResourceTypeMissingError:
            return None

    def ours(self, obj: Obj | None) -> bool:
        labels = (obj or {}).get("metadata", {}).get("labels") or {}
        return labels.get(MANAGED_BY_LABEL) == self.name

    def wait(self, what: str, check: Callable[[], str | None]) -> None:
        self.wait_bounded(self.timeout, what, check)

    def wait_bounded(self, timeout: float, what: str, check: Callable[[], str | None]) -> None:
        """Poll `check` (None when satisfied, else what is missing) for at most `timeout`."""
        runtime = self.session.runtime
        start = runtime.monotonic()
        while True:
            missing = check()
            if missing is None:
                return
            if runtime.monotonic() - start >= timeout:
                raise StepFailed(f"timed out after {timeout:g}s waiting for {what}: {missing}")
            runtime.sleep(POLL_SECONDS)

    # --- 1. suspend ---

    def suspended(self) -> str | None:
        return "already suspended" if self.obj.get("spec", {}).get("suspend") else None

    def suspend(self) -> None:
        patched = self.kube.patch_merge(
            API_VERSION, "Canary", self.ns, self.name, {"spec": {"suspend": True}}
        )
        generation = int(patched["metadata"].get("generation", 0))

        def observed() -> str | None:
            obj = get_canary(self.kube, self.ns, self.name)
            seen = int((obj.get("status") or {}).get("observedGeneration", 0))
            return None if seen >= generation else "the agent has not seen it yet"

        try:
            self.wait_bounded(SUSPEND_WAIT_SECONDS, "the agent to see the suspension", observed)
        except StepFailed:
            # No running agent acknowledges anything, and none will act either: carry on.
            click.echo(
                "  warning: the agent did not confirm the suspension (is it running?); continuing",
                err=True,
            )

    # --- 2. restore the target ---

    def target_restored(self) -> str | None:
        primary = self.get("apps/v1", "Deployment", self.primary)
        target = self.get("apps/v1", "Deployment", self.target)
        if target is None:
            raise StepFailed(f"deployment {self.target} does not exist: nothing to hand back to")
        if primary is None:
            return "the primary is gone; the target serves" if self.target_ready() is None else None
        same = target["spec"]["template"] == handed_back_template(primary, target)
        replicas = target["spec"].get("replicas") == primary["spec"].get("replicas")
        return "already restored" if same and replicas and self.target_ready() is None else None

    def target_ready(self) -> str | None:
        d = self.get("apps/v1", "Deployment", self.target)
        if d is None:
            return "deployment missing"
        want = int(d["spec"].get("replicas", 1))
        st = d.get("status") or {}
        observed = int(st.get("observedGeneration", 0)) >= int(d["metadata"].get("generation", 0))
        updated, ready = int(st.get("updatedReplicas", 0)), int(st.get("readyReplicas", 0))
        if want == 0:
            return "0 replicas wanted"
        if observed and updated >= want and ready >= want:
            return None
        return f"{ready}/{want} replicas ready, {updated} updated"

    def restore_target(self) -> None:
        primary = self.get("apps/v1", "Deployment", self.primary)
        target = self.get("apps/v1", "Deployment", self.target)
        if primary is not None and target is not None:
            new = copy.deepcopy(target)
            new["spec"]["template"] = handed_back_template(primary, target)
            new["spec"]["replicas"] = int(primary["spec"].get("replicas", 1)) or 1
            self.kube.replace(new)
        self.wait(f"deployment {self.target} to be ready", self.target_ready)

    # --- 3. the apex Service ---

    def target_selector(self) -> dict[str, str]:
        target = self.get("apps/v1", "Deployment", self.target) or {}
        return dict(target.get("spec", {}).get("selector", {}).get("matchLabels", {}))

    def service_handed_back(self) -> str | None:
        svc = self.get("v1", "Service", self.svc)
        if svc is None:
            return None  # create it pointing at the target
        meta = svc["metadata"]
        selects_target = svc["spec"].get("selector") == self.target_selector()
        free = not meta.get("ownerReferences") and ORIGINAL_SPEC_ANNOTATION not in (
            meta.get("annotations") or {}
        )
        return "already selects the target's pods" if selects_target and free else None

    def ready_endpoints(self) -> str | None:
        """Ready endpoints, all of them pods the Service selects now.

        Right after a selector change the Endpoints still list the old pods (the primary's)
        until the endpoints controller catches up, which takes seconds on a busy cluster.
        Counting those would pass this check at once and let step 5 delete the primary while
        the Service still routes to its pods only; so addresses naming a pod the current
        selector does not choose mean "not switched yet".
        """
        ep = self.get("v1", "Endpoints", self.svc)
        addresses = [a for s in (ep or {}).get("subsets") or [] for a in s.get("addresses") or []]
        if not addresses:
            return "no ready endpoints"
        refs = [a.get("targetRef") or {} for a in addresses]
        pods = {r["name"] for r in refs if r.get("kind") == "Pod" and r.get("name")}
        if not pods:
            return None  # endpoints maintained by hand: nothing to compare with the selector
        selector = ((self.get("v1", "Service", self.svc) or {}).get("spec") or {}).get(
            "selector"
        ) or {}
        selected = {
            p["metadata"]["name"]
            for p in self.kube.list("v1", "Pod", self.ns)[0]
            if selector
            and all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())
        }
        stale = pods - selected
        if stale:
            return (
                f"{len(stale)} of {len(pods)} ready endpoints are still pods the new selector "
                "does not choose (the endpoints controller has not caught up)"
            )
        return None

    def repoint_service(self) -> None:
        svc = self.get("v1", "Service", self.svc)
        if svc is None:
            raise StepFailed(f"service {self.svc} does not exist")
        before = copy.deepcopy(svc)
        new = free_of_canary(svc, self.name)
        original = (svc["metadata"].get("annotations") or {}).get(ORIGINAL_SPEC_ANNOTATION)
        if original:
            saved = json.loads(original)
            saved_spec = saved.get("spec", saved)
            for key in ("selector", "ports", "type"):
                if key in saved_spec:
                    new["spec"][key] = saved_spec[key]
        else:
            new["spec"]["selector"] = self.target_selector()
        self.kube.replace(new)
        try:
            self.wait(f"service {self.svc} to have ready endpoints", self.ready_endpoints)
        except StepFailed:
            live = self.get("v1", "Service", self.svc)
            if live is not None:  # switch back: the primary still serves
                live["spec"]["selector"] = before["spec"].get("selector")
                self.kube.replace(live)
            raise

    # --- 4. routing ---

    def routing_object(self) -> tuple[str, str] | None:
        provider = self.canary.spec.provider
        if provider == "istio":
            return ISTIO_API, "VirtualService"
        if provider == "gatewayapi":
            return GATEWAY_API, "HTTPRoute"
        return None

    def routing_handed_back(self) -> str | None:
        kind = self.routing_object()
        if kind is None:
            return "the kubernetes provider routes through the apex Service alone"
        obj = self.get(*kind, self.svc)
        if obj is None:
            return f"no {kind[1]} {self.svc}"
        meta = obj["metadata"]
        if self.ours(obj) or meta.get("ownerReferences"):
            return None
        if ORIGINAL_SPEC_ANNOTATION in (meta.get("annotations") or {}):
            return None
        return f"{kind[1]} {self.svc} no longer belongs to the canary"

    def hand_back_routing(self) -> None:
        kind = self.routing_object()
        assert kind is not None
        obj = self.get(*kind, self.svc)
        if obj is None:
            return
        original = (obj["metadata"].get("annotations") or {}).get(ORIGINAL_SPEC_ANNOTATION)
        new = free_of_canary(obj, self.name)
        if original:
            saved = json.loads(original)
            new["spec"] = saved.get("spec", saved)
            self.kube.replace(new)
            return
        port = self.canary.spec.service.port
        if kind[1] == "VirtualService":
            # "mesh" is Istio's name for the sidecars, not an ingress gateway.
            if not [g for g in obj["spec"].get("gateways") or [] if g != "mesh"]:
                # Mesh-internal and ours: without it, callers reach the apex Service directly.
                self.kube.delete(*kind, self.ns, self.svc)
                return
            for http in new["spec"].get("http") or []:
                http["route"] = [
                    {"destination": {"host": self.svc, "port": {"number": port}}, "weight": 100}
                ]
        else:
            for rule in new["spec"].get("rules") or []:
                rule["backendRefs"] = [{"name": self.svc, "port": port, "weight": 1}]
        self.kube.replace(new)

    # --- 5. generated objects ---

    def config_copies(self) -> list[tuple[str, str, str]]:
        """The primary's ConfigMap/Secret copies, found through its template's references."""
        primary = self.get("apps/v1", "Deployment", self.primary)
        if primary is None:
            return []
        refs = referenced_configs(primary["spec"]["template"])
        return [("v1", kind, name) for kind, name in refs if name.endswith(PRIMARY_COPY_SUFFIX)]

    def generated(self) -> list[tuple[str, str, str]]:
        # The copies before the Deployment: once it is deleted, nothing names them any more.
        objs = self.config_copies() + [
            ("apps/v1", "Deployment", self.primary),
            ("v1", "Service", f"{self.svc}-primary"),
            ("v1", "Service", f"{self.svc}-canary"),
        ]
        if self.canary.spec.provider == "istio":
            objs += [
                (ISTIO_API, "DestinationRule", f"{self.svc}-primary"),
                (ISTIO_API, "DestinationRule", f"{self.svc}-canary"),
            ]
        if self.canary.spec.autoscaler_ref is not None:
            hpa = f"{self.canary.spec.autoscaler_ref.name}-primary"
            objs.append((HPA_API, "HorizontalPodAutoscaler", hpa))
        return objs

    def generated_left(self) -> list[tuple[str, str, str]]:
        left = []
        for api_version, kind, name in self.generated():
            try:
                obj = self.get(api_version, kind, name)
            except KubeError:  # e.g. the mesh CRD is not installed: nothing of that kind
                continue
            if obj is not None and self.ours(obj):
                left.append((api_version, kind, name))
        return left

    def generated_removed(self) -> str | None:
        return None if self.generated_left() else "nothing left"

    def remove_generated(self) -> None:
        for api_version, kind, name in self.generated_left():
            self.kube.delete(api_version, kind, self.ns, name)

        def gone() -> str | None:
            left = self.generated_left()
            return None if not left else "still there: " + ", ".join(n for _, _, n in left)

        self.wait("generated objects to be deleted", gone)

    # --- 6. the Canary ---

    def delete_canary(self) -> None:
        target = self.get("apps/v1", "Deployment", self.target)
        if target is not None and target["metadata"].get("ownerReferences"):
            # Deleting the Canary must never garbage-collect the app itself.
            self.kube.replace(free_of_canary(target, self.name))
        obj = get_canary(self.kube, self.ns, self.name)
        finalizers = obj["metadata"].get("finalizers") or []
        if FINALIZER in finalizers:
            rest = [f for f in finalizers if f != FINALIZER]
            self.kube.patch_merge(
                API_VERSION,
                "Canary",
                self.ns,
                self.name,
                {"metadata": {"finalizers": rest or None}},
            )
        self.kube.delete(API_VERSION, "Canary", self.ns, self.name)

        def gone() -> str | None:
            return "still there" if self.get(API_VERSION, "Canary", self.name) else None

        self.wait(f"canary {self.name} to be deleted", gone)

    def steps(self) -> list[Step]:
        images = ",".join(
            c.get("image", "")
            for c in (self.get("apps/v1", "Deployment", self.primary) or {})
            .get("spec", {})
            .get("template", {})
            .get("spec", {})
            .get("containers", [])
        )
        generated = ", ".join(f"{k.lower()}/{n}" for _, k, n in self.generated())
        kind = self.routing_object()
        return [
            Step(
                f"suspend canary {self.name} so the agent stops acting on it",
                self.suspended,
                self.suspend,
            ),
            Step(
                f"restore deployment {self.target} from {self.primary} "
                f"({images or 'primary missing'}) and wait until it is ready",
                self.target_restored,
                self.restore_target,
            ),
            Step(
                f"point service {self.svc} at the pods of {self.target} "
                "and check it has ready endpoints",
                self.service_handed_back,
                self.repoint_service,
            ),
            Step(
                f"hand {kind[1] if kind else 'routing'} {self.svc} back: all traffic "
                f"through service {self.svc}",
                self.routing_handed_back,
                self.hand_back_routing,
            ),
            Step(
                f"delete generated objects: {generated}",
                self.generated_removed,
                self.remove_generated,
            ),
            Step(
                f"remove the finalizer and delete canary {self.name}",
                lambda: None,
                self.delete_canary,
            ),
        ]


def free_of_canary(obj: Obj, canary: str) -> Obj:
    """A copy without the Canary's ownership: ownerReferences to it, our label, our annotations."""
    new = copy.deepcopy(obj)
    meta = new["metadata"]
    meta["ownerReferences"] = [
        r
        for r in meta.get("ownerReferences") or []
        if not (r.get("kind") == "Canary" and r.get("name") == canary)
    ] or None
    if meta["ownerReferences"] is None:
        del meta["ownerReferences"]
    labels = meta.get("labels") or {}
    labels.pop(MANAGED_BY_LABEL, None)
    annotations = meta.get("annotations") or {}
    for key in [k for k in annotations if k.startswith(GROUP + "/")]:
        del annotations[key]
    return new


@click.command(
    "offboard",
    epilog="""\b
Examples:
  kubectl canary offboard mhs --dry-run   # show the plan
  kubectl canary offboard mhs             # do it; re-run to continue after a failure
""",
)
@name_argument()
@kube_options()
@click.option("--dry-run", is_flag=True, help="Show the steps; change nothing.")
@timeout_option(300, "each step (e.g. the Deployment to be ready)")
def offboard(session: Session, name: str, dry_run: bool, timeout: float) -> None:
    """Hand the app back to a plain Deployment with no downtime, and delete the Canary."""
    job = Offboarding(session, name, timeout)
    steps = job.steps()
    if dry_run:
        click.echo(f"Offboarding canary {name} in namespace {job.ns} would:")
        for i, step in enumerate(steps, 1):
            try:
                done = step.done()
            except (StepFailed, KubeError) as e:
                done = f"cannot run: {e}"
            click.echo(f"  {i}. {step.title}" + (f" (skipped: {done})" if done else ""))
        return
    for i, step in enumerate(steps, 1):
        prefix = f"[{i}/{len(steps)}] {step.title}"
        try:
            done = step.done()
            if done:
                click.echo(f"{prefix}: skipped ({done})")
                continue
            click.echo(f"{prefix} ...")
            step.run()
        except (StepFailed, KubeError) as e:
            raise CliError(
                f"step {i} failed: {e}. Later steps were not run, so traffic is served as before "
                f"this step; fix the cause and run `kubectl canary offboard {name} -n {job.ns}` "
                "again to continue"
            ) from None
        click.echo("      done")
    click.echo(f"canary {name} offboarded: deployment {job.target} serves service {job.svc}")
