"""DESIGN §1 told tick by tick: init; 1.1.2 promoted through 10..50; 1.1.3 rolled back."""

from __future__ import annotations

from agent.core.types import EmitEvent, PromoteTemplate, ScaleTarget, SetRoutes
from kubectl_canary.api.model import Phase
from tests.unit.core.builders import canary, events
from tests.unit.core.world import World


def test_the_story_of_design_section_1() -> None:
    world = World(canary(), success_rate={"1.1.3": 57.142857})
    timeline: list[tuple[Phase, list[str]]] = []

    def tick() -> None:
        decision = world.tick()
        timeline.append((decision.status.phase, events(decision)))

    # 2. The agent initialises; the first deployment is promoted without analysis.
    tick()  # creates mhs-primary, leaving the apex Service and the routing object alone
    assert world.primary_version == "1.1.1"
    assert world.routes is None
    tick()  # the primary serves: the routing object points at it
    assert world.routes is not None and world.target_replicas == 2
    tick()  # the apex Service's endpoints are the primary's pods: scale the target to 0
    assert world.target_replicas == 0
    tick()  # nothing to do
    # 3. 1.1.2: scaled up, then 10, 20, 30, 40, 50, promoted, routed back, scaled down.
    world.target_version = "1.1.2"
    for _ in range(9):
        tick()
    assert world.primary_version == "1.1.2"
    assert world.target_replicas == 0
    # 4. 1.1.3 fails half its requests: five failed checks, then the rollback.
    world.target_version = "1.1.3"
    for _ in range(7):
        tick()
    tick()  # Failed stays Failed: a failed revision never runs again on its own

    assert timeline == [
        (Phase.INITIALIZING, []),
        (Phase.INITIALIZING, []),
        (Phase.INITIALIZED, ["Initialization done! mhs.application"]),
        (Phase.INITIALIZED, []),
        (Phase.PROGRESSING, ["New revision detected! Scaling up mhs.application"]),
        (
            Phase.PROGRESSING,
            [
                "Starting canary analysis for mhs.application",
                "Advance mhs.application canary weight 10",
            ],
        ),
        (Phase.PROGRESSING, ["Advance mhs.application canary weight 20"]),
        (Phase.PROGRESSING, ["Advance mhs.application canary weight 30"]),
        (Phase.PROGRESSING, ["Advance mhs.application canary weight 40"]),
        (Phase.PROGRESSING, ["Advance mhs.application canary weight 50"]),
        (
            Phase.PROMOTING,
            ["Copying mhs.application template spec to mhs-primary.application"],
        ),
        (Phase.FINALISING, ["Routing all traffic to primary"]),
        (Phase.SUCCEEDED, ["Promotion completed! Scaling down mhs.application"]),
        (Phase.PROGRESSING, ["New revision detected! Scaling up mhs.application"]),
        (
            Phase.PROGRESSING,
            [
                "Starting canary analysis for mhs.application",
                "Advance mhs.application canary weight 10",
            ],
        ),
        (Phase.PROGRESSING, ["Halt mhs.application advancement success rate 57.14% < 99%"]),
        (Phase.PROGRESSING, ["Halt mhs.application advancement success rate 57.14% < 99%"]),
        (Phase.PROGRESSING, ["Halt mhs.application advancement success rate 57.14% < 99%"]),
        (Phase.PROGRESSING, ["Halt mhs.application advancement success rate 57.14% < 99%"]),
        (
            Phase.FAILED,
            [
                "Halt mhs.application advancement success rate 57.14% < 99%",
                "Rolling back mhs.application failed checks threshold reached 5",
                "Canary failed! Scaling down mhs.application",
            ],
        ),
        (Phase.FAILED, []),
    ]
    # 1.1.2 keeps serving, the canary is down, and all traffic is on the primary.
    assert world.primary_version == "1.1.2"
    assert world.target_replicas == 0
    assert world.routes is not None and (world.routes.primary, world.routes.canary) == (100, 0)
    status = world.canary.status
    assert (status.failed_checks, status.canary_weight) == (5, 0)
    assert status.last_promoted_spec == "1.1.2"
    assert status.last_failed_spec == "1.1.3"
    promoted = [c for c in status.conditions if c.type == "Promoted"]
    assert [(c.status, c.reason) for c in promoted] == [("False", "Failed")]


def test_story_routes_and_scaling_in_order() -> None:
    """The weights the router was given over the 1.1.2 release, and its scale calls."""
    world = World(canary())
    for _ in range(4):
        world.tick()
    world.target_version = "1.1.2"
    for _ in range(9):
        world.tick()
    routes = [
        (a.primary, a.canary)
        for d in world.decisions
        for a in d.actions
        if isinstance(a, SetRoutes)
    ]
    assert routes == [(90, 10), (80, 20), (70, 30), (60, 40), (50, 50), (100, 0)]
    scales = [a.replicas for d in world.decisions for a in d.actions if isinstance(a, ScaleTarget)]
    assert scales == [0, 2, 0]
    assert sum(isinstance(a, PromoteTemplate) for d in world.decisions for a in d.actions) == 1


def test_history_matches_the_events_exactly() -> None:
    """Status history and Events are the same list (type, reason, message)."""
    world = World(canary(), success_rate={"1.1.3": 50.0})
    for _ in range(3):
        world.tick()
    world.target_version = "1.1.2"
    for _ in range(9):
        world.tick()
    world.target_version = "1.1.3"
    for _ in range(7):
        world.tick()
    emitted = [
        (a.type, a.reason, a.message)
        for d in world.decisions
        for a in d.actions
        if isinstance(a, EmitEvent)
    ]
    recorded = [(h.type, h.reason, h.message) for h in world.canary.status.history]
    assert recorded == emitted
    assert all(h.time.endswith("Z") for h in world.canary.status.history)
