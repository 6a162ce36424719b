"""The router against a real Redis: one liveness rule, placement read back, the selector's order."""

import time

from vcs.routing import NodeInfo, NodeRouter, node_ttl


def node(node_id: str, *, role: str = "origin", capacity: int = 100, load: int = 0, draining: bool = False, heartbeat: float | None = None) -> NodeInfo:
    beat = time.time() if heartbeat is None else heartbeat
    return NodeInfo(node_id, f"http://{node_id}:8090", role, capacity, load, draining, heartbeat=beat, ttl=node_ttl(5))


async def test_a_node_is_alive_for_three_heartbeats(redis):
    router = NodeRouter(redis)
    now = time.time()
    await router.register_node(node("a", heartbeat=now))
    assert [n.id for n in await router.live_nodes(now + 15)] == ["a"]
    assert await router.live_nodes(now + 15.01) == []  # three missed heartbeats of 5 s
    assert 0 < await redis.ttl("vcs:sfu:node:a") <= 15  # and its record goes with it


async def test_origins_first_then_the_most_spare_and_never_a_draining_node(redis):
    router = NodeRouter(redis)
    for info in (node("relay", role="relay", capacity=1000), node("busy", load=90), node("free", load=10), node("leaving", draining=True)):
        await router.register_node(info)
    assert [n.id for n in await router.live_nodes()] == ["free", "busy", "relay"]
    assert {n.id for n in await router.nodes()} == {"free", "busy", "relay", "leaving"}


async def test_a_room_goes_where_it_already_lives(redis):
    router = NodeRouter(redis)
    await router.register_node(node("free", load=0))
    await router.register_node(node("busy", load=90), rooms=["r1"])
    assert (await router.node_for_room("r1")).id == "busy"
    assert (await router.select_node("r1")).id == "busy"
    assert (await router.select_node("r2")).id == "free"
    await router.clear_room("r1")
    assert await router.node_for_room("r1") is None
    await router.unregister_node("busy")
    await router.set_node_for_room("r3", "busy", 15)
    assert await router.node_for_room("r3") is None  # placed on a node that is gone: no answer


async def test_origin_and_relay_each_report_their_own_media_for_one_room(redis):
    router = NodeRouter(redis)
    now = time.time()
    assert await router.room_media("r1") is None  # no node reports the room: the agents' word stands
    await router.register_node(node("origin"), rooms=["r1"], media_heard={"r1": {"studio": now, "c1": now - 30}})
    await router.register_node(node("relay", role="relay"), media_heard={"r1": {"c1": now - 1, "c2": now - 2}})
    # the relay's record did not replace the origin's: one view of the room, the newest report winning
    assert await router.room_media("r1") == {"studio": now, "c1": now - 1, "c2": now - 2}
    assert await redis.get("vcs:sfu:room:r1") == "origin"  # the room stays placed on its origin
    # the origin's next heartbeat rewrites only its own record: c2 (on the relay) stays, c1 is still heard there
    await router.register_node(node("origin"), rooms=["r1"], media_heard={"r1": {"studio": now + 5}})
    assert await router.room_media("r1") == {"studio": now + 5, "c1": now - 1, "c2": now - 2}
    # c2 leaves the relay: gone from the room's view
    await router.register_node(node("relay", role="relay"), media_heard={"r1": {"c1": now + 4}})
    assert await router.room_media("r1") == {"studio": now + 5, "c1": now + 4}
    # a room with nobody connected is still reported (empty), and clearing the room removes every record
    await router.register_node(node("relay", role="relay"), media_heard={"r2": {}})
    assert await router.room_media("r2") == {}
    await router.clear_room("r1")
    assert await router.room_media("r1") is None
    assert await redis.keys("vcs:sfu:room-media*r1*") == []
