"""Online/offline and last-seen of endpoints, from their heartbeats.

One sorted set scored by the last heartbeat's epoch seconds: recording is one
ZADD, and "who is online" is one range query, whatever the fleet size. A page
of endpoints or one meeting's participants read only their own scores (ZMSCORE)
rather than the whole set.
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

    async def last_seen_of(self, endpoint_id: str) -> float | None:
        return await self.redis.zscore(keys.PRESENCE, endpoint_id)

    async def last_seen_of_many(self, endpoint_ids: list[str]) -> dict[str, float | None]:
        if not endpoint_ids:
            return {}
        return dict(zip(endpoint_ids, await self.redis.zmscore(keys.PRESENCE, endpoint_ids), strict=True))

    async def online_among(self, endpoint_ids: list[str], now: float) -> set[str]:
        seen = await self.last_seen_of_many(endpoint_ids)
        return {e for e, at in seen.items() if self.is_online(at, now)}

    def is_online(self, last_seen: float | None, now: float) -> bool:
        return last_seen is not None and now - last_seen <= self.timeout
