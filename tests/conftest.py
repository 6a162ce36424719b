"""Shared fixtures: a real embedded Redis for the session, a live HTTP server per test."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
import uvicorn

from vcs.config import Settings
from vcs.redis_server import EmbeddedRedis

TEST_SECRET = "test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server.url
    server.stop()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A client on a flushed server: every test starts from an empty store."""
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture
def settings(tmp_path: Path, redis_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "var", redis_url=redis_url, secret_key=TEST_SECRET, port=0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """A real uvicorn server on a loopback port, in a thread of this process."""

    def __init__(self, app, port: int) -> None:
        self.app = app
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", ws="websockets-sansio"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


@pytest.fixture
async def start_server(redis: aioredis.Redis, settings: Settings):
    """Start real servers of the web app (options as for `create_app`); all stopped after the test."""
    from web.app import create_app

    started: list[LiveServer] = []

    def start(**options) -> LiveServer:
        port = free_port()
        server = LiveServer(create_app(settings.with_overrides(port=port, public_url=f"http://127.0.0.1:{port}"), **options), port)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
async def live_server(start_server) -> LiveServer:
    return start_server()


@pytest.fixture
async def http(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=20) as client:
        yield client


@pytest.fixture
def mint_token(redis: aioredis.Redis):
    from vcs.api_tokens import ApiTokens

    async def mint(role: str, province: str | None = None) -> dict[str, str]:
        token = await ApiTokens(redis).create(role, province, name=f"test-{role}")
        return {"Authorization": f"Bearer {token}"}

    return mint
