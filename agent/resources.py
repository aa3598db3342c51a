"""The agent's view of the shared resource protocol: `Resources` plus a read that skips caches.

Routers, workload builders and the runtime see plain dicts through this protocol; the one module
that talks to a client library (`agent/kube.py`) implements it, and `agent/cached_client.py`
serves its reads from the watch caches. The errors are the shared ones in
`kubectl_canary/resources.py`.
"""

from __future__ import annotations

from typing import Protocol

from kubectl_canary.resources import Obj, Resources


class ResourceClient(Resources, Protocol):
    def get_live(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        """A read from the API server itself, never a cache: what a write or a destructive
        step (delete, hand-back) is decided on."""
