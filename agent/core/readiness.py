"""Whether a Deployment is ready enough, and Flagger's words for why it is not."""

from __future__ import annotations

from agent.core.types import WorkloadObservation


def is_ready(workload: WorkloadObservation, threshold_percent: int) -> bool:
    """Ready when it exists, wants pods, and enough of them are ready (`*ReadyThreshold`)."""
    if not workload.exists or workload.replicas <= 0:
        return False
    return workload.ready_percent() >= threshold_percent


def waiting_reason(workload: WorkloadObservation, threshold_percent: int) -> str:
    """Why `workload` is not ready, in the wording of Flagger's rollout checks."""
    if not workload.exists:
        return "deployment not found"
    if workload.deadline_exceeded:
        return "deployment exceeded its progress deadline"
    if workload.replicas <= 0:
        return "waiting for rollout to finish: deployment is scaled to zero"
    return (
        f"waiting for rollout to finish: {workload.ready_replicas} of {workload.replicas} "
        f"(readyThreshold {threshold_percent}%) updated replicas are available"
    )
