"""The SFU nodes alive now, as the orchestrator sees them in Redis."""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis.asyncio as aioredis

from vcs import keys

__all__ = ["NodeInfo", "live_nodes"]

NODE_TTL = 15.0  # seconds without a heartbeat before a node counts as gone


@dataclass(frozen=True)
class NodeInfo:
    id: str
    url: str
    role: str
    capacity: int
    load: int
    draining: bool

    @property
    def spare(self) -> int:
        return max(0, self.capacity - self.load)


async def live_nodes(redis: aioredis.Redis, now: float | None = None) -> list[NodeInfo]:
    """Live, non-draining nodes first by spare capacity (origin nodes before relays).

    Ids of dead nodes (no heartbeat for `NODE_TTL`) are removed from the set as it is read;
    a node that comes back adds itself again with its next heartbeat.
    """
    current = time.time() if now is None else now
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zremrangebyscore(keys.SFU_NODES, "-inf", f"({current - NODE_TTL}")
        pipe.zrangebyscore(keys.SFU_NODES, current - NODE_TTL, "+inf")
        _, ids = await pipe.execute()
    if not ids:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for node_id in ids:
            pipe.hgetall(keys.sfu_node(node_id))
        rows = await pipe.execute()
    nodes = [
        NodeInfo(
            id=row["id"],
            url=row.get("url", ""),
            role=row.get("role", "origin"),
            capacity=int(row.get("capacity", 0)),
            load=int(row.get("load", 0)),
            draining=row.get("draining") == "1",
        )
        for row in rows
        if row
    ]
    nodes = [n for n in nodes if not n.draining]
    nodes.sort(key=lambda n: (n.role != "origin", -n.spare, n.id))
    return nodes
