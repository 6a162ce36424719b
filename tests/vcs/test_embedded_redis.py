import asyncio
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from vcs.config import Settings
from vcs.redis_server import OWNER_WAIT, DataDirBusy, EmbeddedRedis, connected, open_redis


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


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def settings_for(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path, secret_key="x" * 40)


def ping(url: str) -> bool:
    async def run() -> bool:
        async with connected(url) as redis:
            return await redis.ping()

    return asyncio.run(run())


def test_one_owner_per_data_directory_and_commands_share_its_server(tmp_path):
    settings = settings_for(tmp_path)
    with open_redis(settings, "serve", owner=True) as url:
        server_pid = int((tmp_path / "redis" / "server.pid").read_text())
        with open_redis(settings) as shared:  # a data command: uses the owner's server
            assert shared == url and ping(shared)
        assert ping(url), "the command left the owner's server running"
        started = time.monotonic()
        with pytest.raises(DataDirBusy, match=r"in use by `vcs serve` \(pid \d+\)"):
            with open_redis(settings, "serve", owner=True):
                pass
        assert time.monotonic() - started < OWNER_WAIT, "a server owner is refused at once, not waited for"
        assert int((tmp_path / "redis" / "server.pid").read_text()) == server_pid
    assert not (tmp_path / "redis" / "server.pid").exists(), "the owner stopped its server on exit"
    with open_redis(settings, "serve", owner=True) as url:  # and the lock went with it
        assert ping(url)


def test_the_owner_starts_its_server_again_when_it_dies(tmp_path):
    server = EmbeddedRedis(tmp_path)
    server.start()
    server.supervise(every=0.1)
    try:
        first = server.pid
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 15
        while not (server.running and server.pid != first and ping(server.url)):
            assert time.monotonic() < deadline, "not started again"
            time.sleep(0.1)
    finally:
        server.stop()
    assert not server.running


def test_a_server_left_by_a_killed_owner_is_stopped_and_another_process_is_not(tmp_path):
    orphan = EmbeddedRedis(tmp_path)
    orphan.start()
    left = orphan.pid
    orphan._process = None  # forgotten, as by an owner that was killed
    server = EmbeddedRedis(tmp_path)
    assert server.orphan_pid() == left
    server.start()
    try:
        assert server.pid != left and ping(server.url)
        assert not running(left)
    finally:
        server.stop()
    (tmp_path / "redis" / "server.pid").write_text(str(os.getpid()))  # a pid reused by another program
    assert EmbeddedRedis(tmp_path).orphan_pid() is None


def test_a_server_waits_for_a_command_that_runs_the_redis_to_finish(tmp_path):
    settings = settings_for(tmp_path)
    command_pid: list[int] = []
    command_running = threading.Event()

    def command() -> None:
        with open_redis(settings) as url:  # nobody runs it: the command starts it for its duration
            assert ping(url)
            command_pid.append(int((tmp_path / "redis" / "server.pid").read_text()))
            command_running.set()
            time.sleep(0.5)

    worker = threading.Thread(target=command)
    worker.start()
    assert command_running.wait(15)
    with open_redis(settings, "serve", owner=True) as url:
        assert not running(command_pid[0]), "the server started only once the command had stopped its Redis"
        assert ping(url)
    worker.join()
