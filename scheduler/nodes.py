"""The SFU nodes alive now, as the orchestrator sees them (through `vcs.routing`)."""

from __future__ import annotations

import redis.asyncio as aioredis

from vcs.routing import NodeInfo, NodeRouter

__all__ = ["NodeInfo", "live_nodes"]


async def live_nodes(redis: aioredis.Redis, now: float | None = None) -> list[NodeInfo]:
    """Live, non-draining nodes, best for a new room first (origin nodes before relays, most spare)."""
    return await NodeRouter(redis).live_nodes(now)
