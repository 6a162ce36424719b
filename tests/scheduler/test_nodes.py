import time

from scheduler.nodes import live_nodes
from vcs import keys
from vcs.routing import DEFAULT_NODE_TTL as NODE_TTL


async def register(redis, node_id: str, heartbeat: float, **fields: str) -> None:
    await redis.hset(keys.sfu_node(node_id), mapping={"id": node_id, "url": f"http://{node_id}", "capacity": "100", "load": "0", **fields})
    await redis.zadd(keys.SFU_NODES, {node_id: heartbeat})


async def test_dead_nodes_leave_the_node_set_when_it_is_read(redis):
    now = time.time()
    await register(redis, "alive", now - 1)
    await register(redis, "draining", now - 1, draining="1")
    await register(redis, "dead", now - NODE_TTL - 1)
    assert [n.id for n in await live_nodes(redis, now)] == ["alive"]
    assert set(await redis.zrange(keys.SFU_NODES, 0, -1)) == {"alive", "draining"}  # draining is alive: it stays
    await redis.zadd(keys.SFU_NODES, {"dead": now})  # a node that comes back registers again
    assert {n.id for n in await live_nodes(redis, now)} == {"alive", "dead"}
