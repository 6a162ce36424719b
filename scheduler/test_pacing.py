"""Pacing of media tests: at most K rooms testing at once on a node, the rest waiting their turn in order.

A drill of 50 rooms all testing at once loads the node (and, on one machine,
everything else) so much that the tests measure the node, not the links
(docs/readiness.md, Figures). So a test order goes to an agent only when
its node has a free slot. Per node, in Redis:

- a queue (sorted set scored by arrival, ``<subject key> <endpoint id>``): rooms waiting;
- slots (sorted set scored by the lease's end): rooms testing now.

A slot is freed by the room's result, or when its lease runs out (an agent
that went away). Taking slots is one Lua script, so several web processes
pumping the same node never hand out more than K. Any process may pump;
the agent hubs do it on every result and every few seconds.
"""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from vcs import keys

__all__ = ["TestPacer"]

_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
local free = tonumber(ARGV[2]) - redis.call('ZCARD', KEYS[2])
if free <= 0 then return {} end
local taken = redis.call('ZPOPMIN', KEYS[1], free)
local members = {}
for i = 1, #taken, 2 do
  redis.call('ZADD', KEYS[2], ARGV[3], taken[i])
  members[#members + 1] = taken[i]
end
if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('SREM', KEYS[3], ARGV[4]) end
return members
"""


class TestPacer:
    __test__ = False  # not a pytest class

    def __init__(self, redis: aioredis.Redis, concurrency: int, lease_seconds: float) -> None:
        self.redis = redis
        self.concurrency = max(1, concurrency)
        self.lease_seconds = lease_seconds
        self._take = redis.register_script(_TAKE)

    async def enqueue(self, node_url: str, subject_key: str, endpoint_ids: list[str]) -> None:
        """Put rooms at the end of the node's queue (a room already waiting keeps its place)."""
        if not endpoint_ids:
            return
        now = time.time()
        members = {f"{subject_key} {e}": now + i * 1e-6 for i, e in enumerate(endpoint_ids)}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(keys.test_queue(node_url), members, nx=True)
            pipe.sadd(keys.TEST_QUEUED_NODES, node_url)
            await pipe.execute()

    async def take(self, node_url: str) -> list[tuple[str, str]]:
        """The (subject key, endpoint id) pairs that may test now: as many as the node has free slots, in order."""
        now = time.time()
        qkeys = [keys.test_queue(node_url), keys.test_slots(node_url), keys.TEST_QUEUED_NODES]
        taken = await self._take(keys=qkeys, args=[now, self.concurrency, now + self.lease_seconds, node_url])
        return [tuple(m.split(" ", 1)) for m in taken]  # type: ignore[misc]

    async def done(self, node_url: str, subject_key: str, endpoint_id: str) -> None:
        await self.redis.zrem(keys.test_slots(node_url), f"{subject_key} {endpoint_id}")

    async def waiting_nodes(self) -> list[str]:
        return sorted(await self.redis.smembers(keys.TEST_QUEUED_NODES))

    async def waiting(self, node_url: str, subject_key: str) -> int:
        """Rooms of a subject still queued on a node."""
        members = await self.redis.zrange(keys.test_queue(node_url), 0, -1)
        return sum(m.startswith(subject_key + " ") for m in members)

    async def pending(self, node_url: str, subject_key: str) -> int:
        """Rooms of a subject queued or testing (lease not run out) on a node."""
        testing = await self.redis.zrangebyscore(keys.test_slots(node_url), time.time(), "+inf")
        return await self.waiting(node_url, subject_key) + sum(m.startswith(subject_key + " ") for m in testing)
