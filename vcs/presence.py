"""Online/offline and last-seen of endpoints, from their heartbeats.

One sorted set scored by the last heartbeat's epoch seconds: recording is one
ZADD, and "who is online" is one range query, whatever the fleet size. A page
of endpoints or one meeting's participants read only their own scores (ZMSCORE)
rather than the whole set.

Heartbeats over agents' sockets (one every 10 s from each of 3,321 agents) go
through `beat`, which gathers them for a fifth of a second and writes them in
one ZADD: a Redis round trip per heartbeat cost a fifth of the web process's
CPU. A batch that cannot be written is kept for the next one.
"""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from vcs import keys

__all__ = ["Presence"]

log = logging.getLogger(__name__)

BATCH_DELAY = 0.2  # seconds a heartbeat may wait for the others of its batch
RETRY_DELAY = 1.0  # seconds between attempts while Redis is unreachable


class Presence:
    def __init__(self, redis: aioredis.Redis, timeout: float) -> None:
        self.redis = redis
        self.timeout = timeout
        self._batch: dict[str, float] = {}
        self._writer: asyncio.Task | None = None

    async def heartbeat(self, endpoint_id: str, now: float) -> None:
        """Record a heartbeat now (a login, a connect: the caller may read it back at once)."""
        await self.redis.zadd(keys.PRESENCE, {endpoint_id: now})

    def beat(self, endpoint_id: str, now: float) -> None:
        """Record a heartbeat with the next batch, within `BATCH_DELAY` seconds."""
        if now > self._batch.get(endpoint_id, 0.0):
            self._batch[endpoint_id] = now
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write_batches(), name="presence-batches")

    async def flush(self) -> None:
        """Write what is waiting now (at shutdown)."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.cancel()
        batch, self._batch = self._batch, {}
        if batch:
            await self.redis.zadd(keys.PRESENCE, batch)

    async def _write_batches(self) -> None:
        delay = BATCH_DELAY
        try:
            while self._batch:
                await asyncio.sleep(delay)
                batch, self._batch = self._batch, {}
                try:
                    # GT: a batch retried late never moves a newer heartbeat back
                    await self.redis.zadd(keys.PRESENCE, batch, gt=True)
                    delay = BATCH_DELAY
                except (RedisError, OSError) as exc:
                    log.warning("heartbeats not recorded (%d kept for the next try): %s", len(batch), exc)
                    for endpoint_id, at in batch.items():
                        if at > self._batch.get(endpoint_id, 0.0):
                            self._batch[endpoint_id] = at
                    delay = RETRY_DELAY
        finally:
            if self._writer is asyncio.current_task():
                self._writer = None

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
