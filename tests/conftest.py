"""Shared fixtures: a real embedded Redis for the session, a live HTTP server per test."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aioice.ice
import httpx
import pytest
import redis.asyncio as aioredis
import uvicorn

from rtc.consent import tolerate_load
from rtc.ice import restrict_host_addresses
from tests.fake_sfu import FakeSfu
from tests.waiting import SLOWDOWN
from vcs.config import Settings
from vcs.redis_server import EmbeddedRedis

TEST_SECRET = "test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"

# `vcs serve` processes the tests start record themselves here, not in the user's runtime directory,
# so that a command run by hand never finds a test's deployment
os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="vcs-tests-run-")

# every peer in the tests checks consent as the node and the agents do
tolerate_load()


def pytest_report_header(config: pytest.Config) -> str:
    how = "from VCS_TEST_SLOWDOWN" if os.environ.get("VCS_TEST_SLOWDOWN") else "measured"
    return f"deadlines x{SLOWDOWN:.1f} ({how}; tests/waiting.py)"


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
    """Start real servers of the web app (options as for `app.serve.build_app`); all stopped after the test."""
    from app.serve import build_app

    started: list[LiveServer] = []

    def start(*, sfu: bool = False, settings_changes: dict | None = None, **options) -> LiveServer:
        """`sfu=True` embeds an SFU node on loopback, as `vcs serve` does; `settings_changes` override the settings."""
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        changed = settings.with_overrides(port=port, public_url=url, **(settings_changes or {}))
        if sfu:
            options["sfu_config"] = loopback_sfu_config(url, recording_dir=changed.recording_dir)
        server = LiveServer(build_app(changed, **options), port)
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
async def client_at(live_server: LiveServer) -> AsyncIterator:
    """`client_at("127.0.0.2")`: an HTTP client to the live server whose requests come from that address.

    All of 127.0.0.0/8 is loopback on Linux, so each test caller can have an address of its own.
    """
    clients: list[httpx.AsyncClient] = []

    def make(address: str) -> httpx.AsyncClient:
        transport = httpx.AsyncHTTPTransport(local_address=address)
        client = httpx.AsyncClient(base_url=live_server.url, timeout=20, transport=transport)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
def mint_token(redis: aioredis.Redis):
    from vcs.api_tokens import ApiTokens

    async def mint(role: str, province: str | None = None) -> dict[str, str]:
        token = await ApiTokens(redis).create(role, province, name=f"test-{role}")
        return {"Authorization": f"Bearer {token}"}

    return mint


def loopback_sfu_config(public_url: str, **changes):
    """A small ladder on loopback: quick to encode on a busy two-core machine."""
    from sfu import SfuConfig
    from vcs.tiers import parse_tiers

    restrict_host_addresses(("127.0.0.1",))
    config = SfuConfig(
        public_url=public_url,
        node_id=f"sfu-test-{public_url.rsplit(':', 1)[-1]}",
        tiers=parse_tiers("360p:640x360@800,180p:320x180@250,audio"),
        ice_host_addresses=("127.0.0.1",),
        ice_allowed_networks=("127.0.0.0/8",),
        drain_timeout_s=0.0,
        heartbeat_interval_s=0.5,
    )
    return config.with_changes(**changes)


class RunningSfu:
    """A real SFU node on its own loopback port, registered in Redis like any node."""

    def __init__(self, node, url: str) -> None:
        self.node = node
        self.url = url  # base URL; WHIP/WHEP under {url}/sfu

    async def publish(self, room: str, identity: str):
        """Publish a synthetic camera and tone into `room` as `identity` (a commune's own camera)."""
        from rtc.synthetic_media import SyntheticAudioTrack, SyntheticVideoTrack
        from rtc.whip_client import publish
        from vcs.media_tokens import mint_media_token

        token = mint_media_token(TEST_SECRET, room=room, identity=identity, role="publish")
        http = httpx.AsyncClient(timeout=20)
        return await publish(http, f"{self.url}/sfu/whip/{room}", token, [SyntheticVideoTrack(320, 180, frames=30), SyntheticAudioTrack()])


@pytest.fixture
async def sfu_node(redis: aioredis.Redis) -> AsyncIterator[RunningSfu]:
    import asyncio

    from starlette.applications import Starlette
    from starlette.routing import Mount

    from sfu import SfuNode, create_sfu_app

    port = free_port()
    node = SfuNode(loopback_sfu_config(f"http://127.0.0.1:{port}"), secret=TEST_SECRET, redis=redis)
    await node.start()
    app = Starlette(routes=[Mount("/sfu", app=create_sfu_app(node))])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield RunningSfu(node, f"http://127.0.0.1:{port}")
    finally:
        await node.stop()
        server.should_exit = True
        await task


@pytest.fixture
def loopback_ice() -> Iterator[None]:
    """aioice never gathers on loopback by itself; this machine's peers talk over 127.0.0.1 only."""
    previous = aioice.ice.get_host_addresses  # another package's tests may have restricted it too: put it back as found
    restrict_host_addresses(["127.0.0.1"])
    yield
    aioice.ice.get_host_addresses = previous


@pytest.fixture
def sfu(loopback_ice) -> Iterator[tuple[FakeSfu, str]]:
    """A FakeSfu served on a loopback port (in a thread): (the fake, its base URL)."""
    fake = FakeSfu(TEST_SECRET)
    server = LiveServer(fake.app, free_port())
    server.start()
    yield fake, server.url
    server.stop()
