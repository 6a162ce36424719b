"""Presence on a real Redis: heartbeats batched into one write, kept through an outage."""

from __future__ import annotations

from tests.waiting import eventually
from vcs import keys
from vcs.presence import RETRY_DELAY, Presence
from vcs.redis_server import EmbeddedRedis, redis_client


async def zadd_calls(redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_zadd", {}).get("calls", 0))


async def test_heartbeats_from_many_agents_are_written_together(redis):
    presence = Presence(redis, timeout=30)
    before = await zadd_calls(redis)
    for n in range(500):
        presence.beat(f"commune-{n}", 1000.0 + n)
    presence.beat("commune-7", 900.0)  # older than the one already waiting: kept out
    await eventually(lambda: presence.last_seen_of("commune-499"), what="the batch is written")
    assert await zadd_calls(redis) - before == 1
    assert await presence.last_seen_of("commune-499") == 1499.0
    assert await presence.last_seen_of("commune-7") == 1007.0
    assert await presence.online_among(["commune-1", "commune-x"], now=1010.0) == {"commune-1"}


async def test_a_batch_waits_out_a_redis_outage(tmp_path, caplog):
    server = EmbeddedRedis(tmp_path)
    server.start()
    redis = redis_client(server.url)
    try:
        presence = Presence(redis, timeout=30)
        server.stop()
        presence.beat("commune-1", 2000.0)
        await eventually(lambda: "heartbeats not recorded" in caplog.text, what="the write failed: the heartbeat is kept")
        server.start()
        await eventually(lambda: _score(redis, "commune-1"), timeout=RETRY_DELAY * 10, what="the kept heartbeat reaches Redis")
        assert await _score(redis, "commune-1") == 2000.0
    finally:
        await redis.aclose()
        server.stop()


async def _score(redis, member: str) -> float | None:
    try:
        return await redis.zscore(keys.PRESENCE, member)
    except Exception:
        return None
