"""Which shard a canary belongs to (`canary-agent --shards N`), shared by the agent, which
ticks only its shards' canaries, and the plugin, which finds the replica holding a canary
(`logs`, `doctor`)."""

from __future__ import annotations

import hashlib

SHARD_LEASE_PREFIX = "kubectl-canary-agent-shard-"


def shard_lease_name(shard: int) -> str:
    return f"{SHARD_LEASE_PREFIX}{shard}"


def shard_of(key: str, shards: int) -> int:
    """The shard of `key` ("namespace/name"): sha256, not hash(), which changes per process."""
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards
