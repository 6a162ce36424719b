"""Where media lives: the SFU node registry and which node serves a room.

LiveKit's shape (`pkg/routing`): one `NodeRouter` holds node registration
(`register_node`, `unregister_node`, `live_nodes`) and room placement
(`node_for_room`, `set_node_for_room`), and a `NodeSelector` picks the node
for a room not yet placed. The SFU registers through it and the scheduler
places occurrences through it, so both read the same records (keys in
`vcs.keys`: `SFU_NODES`, `sfu_node`, `sfu_room`).

Liveness is defined once: a node is alive while its last heartbeat is at most
`ttl` seconds old, `ttl` being `HEARTBEATS_TO_LIVE` of its heartbeat
intervals; its records expire after the same time, so a crashed node
disappears. Roles are "origin" (encodes the tiers) and "relay" (will take the
tiers from an origin); the default selector prefers origins.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from vcs import keys

__all__ = [
    "DEFAULT_NODE_TTL",
    "HEARTBEATS_TO_LIVE",
    "ROLES",
    "MostSpareSelector",
    "NodeInfo",
    "NodeRouter",
    "NodeSelector",
    "node_ttl",
]

ROLES = ("origin", "relay")
HEARTBEATS_TO_LIVE = 3  # missed heartbeats before a node counts as gone
DEFAULT_NODE_TTL = 15  # seconds: three heartbeats of the default 5 s, for a record that does not say
# a room's media record outlives a crashed node: its stale times then say "dropped", which is true
MEDIA_RECORD_TTL_S = 3600


def node_ttl(heartbeat_interval_s: float) -> int:
    return max(1, int(heartbeat_interval_s * HEARTBEATS_TO_LIVE))


@dataclass(frozen=True)
class NodeInfo:
    id: str
    url: str
    role: str = "origin"
    capacity: int = 0  # subscribers
    load: int = 0
    draining: bool = False
    rooms: int = 0
    started: int = 0
    heartbeat: float = 0.0  # unix seconds
    ttl: int = DEFAULT_NODE_TTL

    @property
    def spare(self) -> int:
        return max(0, self.capacity - self.load)

    def alive_at(self, now: float) -> bool:
        return now - self.heartbeat <= self.ttl

    def to_hash(self) -> dict[str, str]:
        return {
            "id": self.id, "url": self.url, "role": self.role, "capacity": str(self.capacity), "load": str(self.load),
            "rooms": str(self.rooms), "draining": str(int(self.draining)), "started": str(self.started),
            "heartbeat": f"{self.heartbeat:.3f}", "ttl": str(self.ttl),
        }  # fmt: skip

    @classmethod
    def from_hash(cls, row: dict[str, str], heartbeat: float) -> NodeInfo:
        return cls(
            id=row["id"],
            url=row.get("url", ""),
            role=row.get("role", "origin"),
            capacity=int(row.get("capacity", 0)),
            load=int(row.get("load", 0)),
            draining=row.get("draining") == "1",
            rooms=int(row.get("rooms", 0)),
            started=int(row.get("started", 0)),
            heartbeat=heartbeat,
            ttl=int(row.get("ttl", DEFAULT_NODE_TTL)),
        )


class NodeSelector(Protocol):
    def order(self, nodes: Sequence[NodeInfo]) -> list[NodeInfo]:
        """Live, non-draining `nodes` ranked for a new room, best first."""
        ...


class MostSpareSelector:
    """Origins before relays, then the most spare subscribers (then the id, for a stable choice)."""

    def order(self, nodes: Sequence[NodeInfo]) -> list[NodeInfo]:
        return sorted(nodes, key=lambda n: (n.role != "origin", -n.spare, n.id))


class NodeRouter:
    """Node registration and room placement over one Redis connection."""

    def __init__(self, redis: Any, selector: NodeSelector | None = None) -> None:
        self.redis = redis
        self.selector = selector or MostSpareSelector()

    # nodes -------------------------------------------------------------------

    async def register_node(
        self, node: NodeInfo, rooms: Iterable[str] = (), media_heard: Mapping[str, Mapping[str, float]] | None = None
    ) -> None:
        """Write (or refresh) the node's record, the placement of `rooms` (an origin's; a relay passes none)
        and, per room, when it last saw media from each identity connected to it (`media_heard`:
        room => identity => unix seconds; every node of the room, origin or relay, writes its own)."""
        key = keys.sfu_node(node.id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=node.to_hash())
            pipe.expire(key, node.ttl)
            pipe.zadd(keys.SFU_NODES, {node.id: node.heartbeat})
            for room in rooms:
                pipe.set(keys.sfu_room(room), node.id, ex=node.ttl)
            for room, heard in (media_heard or {}).items():
                media = keys.sfu_room_media(room, node.id)
                pipe.delete(media)  # this node's record rewritten whole: a peer that left it is gone from it
                pipe.hset(media, mapping={keys.SFU_MEDIA_NODE: node.id, **{k: str(v) for k, v in heard.items()}})
                pipe.expire(media, MEDIA_RECORD_TTL_S)
                pipe.sadd(keys.sfu_room_media_nodes(room), node.id)
                pipe.expire(keys.sfu_room_media_nodes(room), MEDIA_RECORD_TTL_S)
            await pipe.execute()

    async def unregister_node(self, node_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.sfu_node(node_id))
            pipe.zrem(keys.SFU_NODES, node_id)
            await pipe.execute()

    async def nodes(self, now: float | None = None) -> list[NodeInfo]:
        """Every live node, draining or not.

        Ids of dead nodes (record expired, or no heartbeat for their ttl) leave
        the set as it is read; a node that comes back adds itself again with
        its next heartbeat.
        """
        current = time.time() if now is None else now
        scored = await self.redis.zrange(keys.SFU_NODES, 0, -1, withscores=True)
        if not scored:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for node_id, _ in scored:
                pipe.hgetall(keys.sfu_node(node_id))
            rows = await pipe.execute()
        alive, dead = [], []
        for (node_id, score), row in zip(scored, rows, strict=True):
            node = NodeInfo.from_hash(row, score) if row else None
            if node is not None and node.alive_at(current):
                alive.append(node)
            else:
                dead.append(node_id)
        if dead:
            await self.redis.zrem(keys.SFU_NODES, *dead)
        return alive

    async def live_nodes(self, now: float | None = None) -> list[NodeInfo]:
        """Live nodes taking new rooms, in the selector's order of preference."""
        return self.selector.order([n for n in await self.nodes(now) if not n.draining])

    # rooms -------------------------------------------------------------------

    async def node_for_room(self, room: str, now: float | None = None) -> NodeInfo | None:
        """The live node serving `room` now, if any."""
        node_id = await self.redis.get(keys.sfu_room(room))
        if node_id is None:
            return None
        return next((n for n in await self.nodes(now) if n.id == node_id), None)

    async def set_node_for_room(self, room: str, node_id: str, ttl: int) -> None:
        await self.redis.set(keys.sfu_room(room), node_id, ex=ttl)

    async def clear_room(self, room: str) -> None:
        nodes = await self.redis.smembers(keys.sfu_room_media_nodes(room))
        media = [keys.sfu_room_media(room, node_id) for node_id in nodes]
        await self.redis.delete(keys.sfu_room(room), keys.sfu_room_media_nodes(room), *media)

    async def room_media(self, room: str) -> dict[str, float] | None:
        """When any node of the room (its origin, its relays) last saw media from each identity, the
        newest report winning; None when no node reports the room."""
        nodes = await self.redis.smembers(keys.sfu_room_media_nodes(room))
        if not nodes:
            return None
        async with self.redis.pipeline(transaction=False) as pipe:
            for node_id in sorted(nodes):
                pipe.hgetall(keys.sfu_room_media(room, node_id))
            records = [r for r in await pipe.execute() if keys.SFU_MEDIA_NODE in r]
        if not records:
            return None
        merged: dict[str, float] = {}
        for record in records:
            for identity, at in record.items():
                if identity != keys.SFU_MEDIA_NODE:
                    merged[identity] = max(merged.get(identity, 0.0), float(at))
        return merged

    async def select_node(self, room: str) -> NodeInfo | None:
        """Where `room` should live: the node already serving it, else the selector's choice."""
        serving = await self.node_for_room(room)
        if serving is not None:
            return serving
        ranked = await self.live_nodes()
        return ranked[0] if ranked else None
