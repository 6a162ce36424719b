"""The node in Redis (a real server): register, heartbeat, drain, leave."""

from __future__ import annotations

from rtc.synthetic_media import SyntheticAudioTrack
from rtc.whip_client import publish, subscribe
from tests.waiting import eventually
from vcs import keys

from .conftest import small_config


async def test_register_heartbeat_drain_and_leave(node_factory, redis):
    sfu = await node_factory(small_config(node_id="sfu-a", capacity=321), redis=redis)
    node_key = keys.sfu_node("sfu-a")
    info = await redis.hgetall(node_key)
    assert info["id"] == "sfu-a"
    assert info["url"] == sfu.base.removesuffix("/sfu")
    assert info["capacity"] == "321"
    assert info["load"] == "0" and info["draining"] == "0"
    assert 0 < await redis.ttl(node_key) <= 3 * 1
    assert await redis.zscore(keys.SFU_NODES, "sfu-a") is not None

    pub = await publish(sfu.http, f"{sfu.base}/whip/r1", sfu.token("r1", "studio", "publish"), [SyntheticAudioTrack()])
    sub = await subscribe(sfu.http, f"{sfu.base}/whep/r1", sfu.token("r1", "c1", "subscribe"), kinds=("audio",), decode=True)
    try:
        assert await redis.get(keys.sfu_room("r1")) == "sfu-a"

        async def one_peer() -> bool:
            return (await redis.hgetall(node_key)).get("load") == "1"

        await eventually(one_peer, what="the heartbeat counts one peer")
        assert (await redis.hgetall(node_key))["rooms"] == "1"

        await sfu.node.drain(timeout=0)
        assert (await redis.hgetall(node_key))["draining"] == "1"
    finally:
        await sub.close()
        await pub.close()
    await sfu.node.stop()
    assert not await redis.exists(node_key)
    assert await redis.zscore(keys.SFU_NODES, "sfu-a") is None
    assert not await redis.exists(keys.sfu_room("r1"))
    await sfu.node.stop()  # twice is fine


async def test_a_redis_outage_does_not_stop_media(node_factory, redis):
    sfu = await node_factory(small_config(node_id="sfu-b"), redis=redis)
    await redis.connection_pool.disconnect()
    broken = redis.connection_pool.connection_kwargs
    broken["port"] = 1  # nothing listens there
    pub = await publish(sfu.http, f"{sfu.base}/whip/r1", sfu.token("r1", "studio", "publish"), [SyntheticAudioTrack()])
    try:
        await eventually(lambda: pub.pc.connectionState == "connected")
    finally:
        await pub.close()
