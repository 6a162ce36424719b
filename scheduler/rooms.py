"""Where an occurrence's SFU room lives, decided once and kept for its lifetime.

The first caller (the agent schedule or the warm-up job) asks the router
(`vcs.routing`) for the node: the one already serving the room, else the
selector's pick among live nodes; every later caller reads that same choice,
so an agent that cached its join info hours ago still goes to the right node.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import redis.asyncio as aioredis

from scheduler.meeting import format_utc
from vcs import keys
from vcs.routing import NodeRouter

__all__ = ["RoomAssignment", "assign_room", "room_name"]

KEEP_AFTER_END = 24 * 3600  # seconds the assignment outlives the occurrence, for the record


@dataclass(frozen=True)
class RoomAssignment:
    room: str
    node_url: str

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
            pipe.expireat(key, int(end.timestamp()) + KEEP_AFTER_END)
            pipe.hgetall(key)
            *_, stored = await pipe.execute()
    return RoomAssignment(stored["room"], stored["node_url"].rstrip("/"))
