import asyncio

from vcs.redis_server import EmbeddedRedis, connected


def test_data_survives_a_restart_of_the_embedded_server(tmp_path):
    server = EmbeddedRedis(tmp_path)
    server.start()

    async def write():
        async with connected(server.url) as redis:
            await redis.hset("vcs:test", mapping={"a": "1", "b": "2"})

    async def read():
        async with connected(server.url) as redis:
            return await redis.hgetall("vcs:test")

    asyncio.run(write())
    server.stop()
    assert not server.running
    server.start()
    try:
        assert asyncio.run(read()) == {"a": "1", "b": "2"}
    finally:
        server.stop()
    config = (tmp_path / "redis" / "server.conf").read_text()
    assert "appendonly yes" in config and "appendfsync everysec" in config and "port 0" in config


def test_stop_is_safe_twice(tmp_path):
    server = EmbeddedRedis(tmp_path)
    server.start()
    server.stop()
    server.stop()
    assert not server.running
