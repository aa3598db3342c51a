"""The sandbox's simulated cluster behaviour: controllers, mesh traffic and its metrics.

The API server calls `start(store, options)` once; the returned `Simulation` serves
`render_metrics()` at GET /sandbox/metrics and `answer_query(query)` at
/sandbox/prometheus/api/v1/query, and is stopped with `stop()`. This package uses only the
store (kubectl_canary.sandbox.store), never the product's code, so it cannot mirror its bugs.
See docs/sandbox-simulation.md.
"""

from __future__ import annotations

from typing import Any

from kubectl_canary.sandbox.simulation.runtime import Simulation, SimulationOptions

__all__ = ["Simulation", "SimulationOptions", "start"]


def start(store: Any, options: Any = None) -> Simulation:
    """Start simulating on `store`. `options`: SimulationOptions, or any object or dict with
    some of its fields (at least `speed` and `seed` are honoured)."""
    simulation = Simulation(store, SimulationOptions.coerce(options))
    simulation.start()
    return simulation
