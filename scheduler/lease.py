"""The scheduler leader's lease in Redis, with a fencing token.

Only the holder runs lifecycle jobs. The lease is a key with a short TTL that
the holder renews; a standby takes it within `ttl` seconds of the holder's
death. Every acquisition hands out a larger fencing token, written with each
lifecycle step, so a paused ex-leader that wakes up cannot act twice.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from vcs import keys

__all__ = ["Lease"]

# KEYS: lease, fence counter. ARGV: holder, ttl ms. Returns the new fence, or nil if held by another.
_ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return nil end
local fence = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. fence, 'PX', ARGV[2])
return fence
"""
# KEYS: lease. ARGV: expected value, ttl ms. Extends only our own lease.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Lease:
    def __init__(self, redis: aioredis.Redis, holder: str, ttl: float = 5.0) -> None:
        self.redis = redis
        self.holder = holder
        self.ttl_ms = int(ttl * 1000)
        self.fence: int | None = None

    @property
    def value(self) -> str:
        return f"{self.holder}:{self.fence}"

    async def acquire(self) -> bool:
        fence = await self.redis.eval(_ACQUIRE, 2, keys.SCHEDULER_LEASE, keys.SCHEDULER_FENCE, self.holder, self.ttl_ms)
        self.fence = int(fence) if fence is not None else None
        return self.fence is not None

    async def renew(self) -> bool:
        if self.fence is None:
            return False
        if await self.redis.eval(_RENEW, 1, keys.SCHEDULER_LEASE, self.value, self.ttl_ms):
            return True
        self.fence = None
        return False

    async def still_held(self) -> bool:
        return self.fence is not None and await self.redis.get(keys.SCHEDULER_LEASE) == self.value

    async def release(self) -> None:
        if self.fence is not None:
            await self.redis.eval(_RELEASE, 1, keys.SCHEDULER_LEASE, self.value)
            self.fence = None
