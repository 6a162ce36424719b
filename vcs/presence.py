"""Online/offline and last-seen of endpoints, from their heartbeats.

One sorted set scored by the last heartbeat's epoch seconds: recording is one
ZADD, and "who is online" is one range query, whatever the fleet size.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from vcs import keys

__all__ = ["Presence"]


class Presence:
    def __init__(self, redis: aioredis.Redis, timeout: float) -> None:
        self.redis = redis
        self.timeout = timeout

    async def heartbeat(self, endpoint_id: str, now: float) -> None:
        await self.redis.zadd(keys.PRESENCE, {endpoint_id: now})

    async def online_ids(self, now: float) -> set[str]:
        return set(await self.redis.zrangebyscore(keys.PRESENCE, now - self.timeout, "+inf"))

    async def last_seen(self) -> dict[str, float]:
        return {member: score for member, score in await self.redis.zrange(keys.PRESENCE, 0, -1, withscores=True)}

    async def last_seen_of(self, endpoint_id: str) -> float | None:
        return await self.redis.zscore(keys.PRESENCE, endpoint_id)

    def is_online(self, last_seen: float | None, now: float) -> bool:
        return last_seen is not None and now - last_seen <= self.timeout
