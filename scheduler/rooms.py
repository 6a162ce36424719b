"""Where an occurrence's SFU room lives, decided once and kept for its lifetime.

The first caller (the agent schedule or the warm-up job) asks the router
(`vcs.routing`) for the origin node: the one already serving the room, else
the selector's pick among live nodes (origins first); every later caller reads
that same choice, so an agent that cached its join info hours ago still goes
to the right node. The host publishes there; which node each commune
subscribes on is the occurrence's placement (`scheduler.placement`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import redis.asyncio as aioredis

from scheduler.meeting import format_utc
from vcs import keys
from vcs.routing import NodeRouter

__all__ = ["RoomAssignment", "assign_room", "on_node", "room_name"]

KEEP_AFTER_END = 24 * 3600  # seconds the assignment outlives the occurrence, for the record


@dataclass(frozen=True)
class RoomAssignment:
    room: str
    node_url: str
    node_id: str | None = None  # None when no node was live (the fallback URL)

    @property
    def whip_url(self) -> str:
        return f"{self.node_url}/sfu/whip/{self.room}"

    @property
    def whep_url(self) -> str:
        return f"{self.node_url}/sfu/whep/{self.room}"


def room_name(meeting_id: str, occurrence: datetime) -> str:
    return f"{meeting_id}-{format_utc(occurrence).replace('-', '').replace(':', '')}"


async def assign_room(redis: aioredis.Redis, meeting_id: str, occurrence: datetime, end: datetime, fallback_url: str) -> RoomAssignment:
    key = keys.occurrence_room(meeting_id, format_utc(occurrence))
    stored = await redis.hgetall(key)
    if not stored:
        name = room_name(meeting_id, occurrence)
        node = await NodeRouter(redis).select_node(name)
        url = node.url if node else fallback_url
        async with redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(key, "node_url", url)
            pipe.hsetnx(key, "room", name)
            if node is not None:
                pipe.hsetnx(key, "node", node.id)
            pipe.expireat(key, int(end.timestamp()) + KEEP_AFTER_END)
            pipe.hgetall(key)
            *_, stored = await pipe.execute()
    return RoomAssignment(stored["room"], stored["node_url"].rstrip("/"), stored.get("node"))


def on_node(room: RoomAssignment, node_id: str | None, node_url: str) -> RoomAssignment:
    """The same room on another node (a relay's copy of it)."""
    return RoomAssignment(room.room, node_url.rstrip("/"), node_id)
