"""`kubectl canary offboard NAME`: hand the app back to a plain Deployment, with no downtime.

The order is what keeps the apex Service serving throughout:
  1. suspend the Canary, so the agent stops acting (it would scale the target back to zero);
  2. restore the target from the primary (the last good template, and the primary's replica
     count if it has none) and wait until every replica is ready;
  3. point the apex Service at the target's pods (or restore the Service we took over), and
     wait until its ready endpoints are the target's pods, switching back at once if not;
  4. give the routing back (restore a taken-over routing object, hand over one serving a
     gateway with all traffic to the apex Service, delete a mesh-internal one we created);
  5. delete what the agent generated (primary Deployment and its ConfigMap/Secret copies, the
     primary and canary Services, DestinationRules, the HPA copy), only objects owned by
     this Canary;
  6. delete the Canary, then drop our finalizer (nothing it owns is left to garbage-collect).
Steps 2 to 5 are the hand-back the agent runs when a Canary is deleted
(kubectl_canary/objects/handback.py; docs/release-semantics.md): both leave the same objects.
Each step checks whether it is already done, so after a failure the same command continues.
`hand_back` runs the steps for one Canary; `kubectl canary uninstall --force` uses it too.
Only objects carrying this Canary's marks are changed or deleted (`metadata.is_ours`,
`is_owned_by`): anything else named like ours is left alone.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from kubectl_canary.api.config_refs import handed_back_template
from kubectl_canary.api.model import API_VERSION, FINALIZER, Canary
from kubectl_canary.cli.errors import CliError
from kubectl_canary.cli.options import Session, kube_options, name_argument, timeout_option
from kubectl_canary.cli.reads import get_canary, parse
from kubectl_canary.kube import Kube
from kubectl_canary.objects import apex, handback
from kubectl_canary.objects.metadata import is_ours
from kubectl_canary.objects.names import primary_name, service_name
from kubectl_canary.resources import KubeError, NotFoundError, ResourceTypeMissingError

Obj = dict[str, Any]

POLL_SECONDS = 1.0
SUSPEND_WAIT_SECONDS = 30.0


class StepFailed(CliError):
    pass


class HandBackFailed(CliError):
    """Step `step` of `total` failed: the later ones were not run, traffic is served as before
    that step."""

    def __init__(self, step: int, total: int, reason: str) -> None:
        super().__init__(f"step {step} failed: {reason}")
        self.step, self.total, self.reason = step, total, reason


@dataclass
class Step:
    title: str
    done: Callable[[], str | None]  # why it is already done, or None
    run: Callable[[], None]  # act, then verify; raises StepFailed


class Offboarding:
    """The six steps for one canary, bound to its live objects.

    `namespace` defaults to the session's; `agent_may_run=False` (the caller knows no agent
    holds the Lease) skips waiting for an agent to confirm the suspension."""

    def __init__(
        self,
        session: Session,
        name: str,
        timeout: float,
        namespace: str | None = None,
        agent_may_run: bool = True,
    ) -> None:
        self.session = session
        self.kube: Kube = session.kube
        self.ns = namespace or session.namespace
        self.name = name
        self.timeout = timeout
        self.agent_may_run = agent_may_run
        self.obj = get_canary(self.kube, self.ns, name)
        self.canary: Canary = parse(self.obj)
        self.target = self.canary.spec.target_ref.name
        self.primary = primary_name(self.canary)
        self.svc = service_name(self.canary)

    # --- reads ---

    def get(self, api_version: str, kind: str, name: str) -> Obj | None:
        try:
            return self.kube.get(api_version, kind, self.ns, name)
        except ResourceTypeMissingError:
            return None

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
        if not self.agent_may_run:
            return

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

    def live_target(self) -> Obj:
        target = self.get("apps/v1", "Deployment", self.target)
        if target is None:
            raise StepFailed(f"deployment {self.target} does not exist: nothing to hand back to")
        return target

    def target_restored(self) -> str | None:
        primary = self.get("apps/v1", "Deployment", self.primary)
        target = self.live_target()
        if primary is None:
            return "the primary is gone; the target serves" if self.target_ready() is None else None
        same = target["spec"]["template"] == handed_back_template(primary, target)
        scaled = int(target["spec"].get("replicas") or 0) > 0
        return "already restored" if same and scaled and self.target_ready() is None else None

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
        self.live_target()
        handback.restore_target(self.kube, self.canary)
        self.wait(f"deployment {self.target} to be ready", self.target_ready)

    # --- 3. the apex Service ---

    def service_handed_back(self) -> str | None:
        svc = self.get("v1", "Service", self.svc)
        if svc is None or is_ours(svc, self.canary):
            return None  # repoint_service says what is wrong with a missing one
        return "already handed back"

    def ready_endpoints(self) -> str | None:
        """Ready endpoints, all of them the target's pods.

        Right after a selector change the Endpoints still list the old pods (the primary's)
        until the endpoints controller catches up, which takes seconds on a busy cluster.
        Counting those would pass this check at once and let step 5 delete the primary while
        the Service still routes to its pods only.
        """
        target = self.live_target()
        if apex.apex_serves_target(self.kube, self.canary, target):
            return None
        return "its ready endpoints are not (yet) all pods of the target"

    def repoint_service(self) -> None:
        svc = self.get("v1", "Service", self.svc)
        if svc is None:
            raise StepFailed(f"service {self.svc} does not exist")
        apex.release_apex_service(self.kube, self.canary, self.live_target())
        try:
            self.wait(f"service {self.svc} to have ready endpoints", self.ready_endpoints)
        except StepFailed:
            self.switch_back(svc)
            raise

    def switch_back(self, before: Obj) -> None:
        """The Service as it was before step 3, our marks included: the primary still serves,
        and the next run repeats the step."""
        live = self.get("v1", "Service", self.svc)
        if live is None:
            return
        restored = copy.deepcopy(before)
        restored["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
        self.kube.replace(restored)

    # --- 4. routing ---

    def routing_handed_back(self) -> str | None:
        ref = handback.routing_object(self.canary)
        if ref is None:
            return "the kubernetes provider routes through the apex Service alone"
        if self.get(*ref) is None:
            return f"no {ref[1]} {self.svc}"
        if handback.routing_released(self.kube, self.canary):
            return f"{ref[1]} {self.svc} no longer belongs to the canary"
        return None

    def hand_back_routing(self) -> None:
        handback.release_routing(self.kube, self.canary)

    # --- 5. generated objects ---

    def generated_left(self) -> list[handback.Ref]:
        return handback.generated_left(self.kube, self.canary)

    def generated_removed(self) -> str | None:
        return None if self.generated_left() else "nothing left"

    def remove_generated(self) -> None:
        handback.remove_generated(self.kube, self.canary)

        def gone() -> str | None:
            left = self.generated_left()
            return None if not left else "still there: " + ", ".join(n for _, _, n in left)

        self.wait("generated objects to be deleted", gone)

    # --- 6. the Canary ---

    def delete_canary(self) -> None:
        # Deleting the Canary must never garbage-collect the app itself.
        handback.release_target(self.kube, self.canary)
        # Delete first: a running agent puts its finalizer back on a Canary that is not being
        # deleted, and the API server accepts no new finalizer once deletion has begun. The
        # agent's own hand-back then finds nothing of ours left and lets go too.
        self.kube.delete(API_VERSION, "Canary", self.ns, self.name)
        obj = self.get(API_VERSION, "Canary", self.name)
        finalizers = (obj or {}).get("metadata", {}).get("finalizers") or []
        if FINALIZER in finalizers:
            rest = [f for f in finalizers if f != FINALIZER]
            with contextlib.suppress(NotFoundError):  # the agent let go first
                self.kube.patch_merge(
                    API_VERSION,
                    "Canary",
                    self.ns,
                    self.name,
                    {"metadata": {"finalizers": rest or None}},
                )

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
        generated = ", ".join(
            f"{k.lower()}/{n}" for _, k, n in handback.generated_objects(self.kube, self.canary)
        )
        ref = handback.routing_object(self.canary)
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
                f"hand {ref[1] if ref else 'routing'} {self.svc} back: all traffic "
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
                f"delete canary {self.name} and remove the finalizer",
                lambda: None,
                self.delete_canary,
            ),
        ]


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
    try:
        hand_back(job, steps)
    except HandBackFailed as e:
        raise CliError(
            f"{e}. Later steps were not run, so traffic is served as before this step; fix "
            f"the cause and run `kubectl canary offboard {name} -n {job.ns}` again to continue"
        ) from None
    click.echo(f"canary {name} offboarded: deployment {job.target} serves service {job.svc}")


def hand_back(job: Offboarding, steps: list[Step] | None = None, prefix: str = "") -> None:
    """Run the steps of `job` in order, each skipped when already done, printing each (after
    `prefix`); HandBackFailed names the step that failed (the later ones were not run)."""
    steps = job.steps() if steps is None else steps
    for i, step in enumerate(steps, 1):
        line = f"{prefix}[{i}/{len(steps)}] {step.title}"
        try:
            done = step.done()
            if done:
                click.echo(f"{line}: skipped ({done})")
                continue
            click.echo(f"{line} ...")
            step.run()
        except (StepFailed, KubeError) as e:
            raise HandBackFailed(i, len(steps), str(e)) from None
        click.echo("      done")
