"""SFU fixtures: a real node behind a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount

from rtc.ice import restrict_host_addresses
from rtc.whip_client import peer_connection
from sfu.allocator import LinkInfo
from sfu.app import create_sfu_app
from sfu.config import SfuConfig
from sfu.node import SfuNode
from sfu.packet_stream import PacketStream
from tests.waiting import scaled
from vcs.media_tokens import mint_media_token
from vcs.tiers import parse_tiers

SECRET = "test-secret-" + "k" * 40
LOOPBACK = ("127.0.0.1",)

# every peer in the tests (node and clients share the process) uses loopback
restrict_host_addresses(LOOPBACK)

# the forwarding loop under test: VCS_SFU_FANOUT=python runs these tests on the Python loop
FANOUT = os.environ.get("VCS_SFU_FANOUT", "compiled")


@pytest.fixture(autouse=True)
def _fanout_under_test(monkeypatch):
    """Streams built by the tests themselves forward with ``FANOUT`` too."""
    monkeypatch.setitem(PacketStream.__init__.__kwdefaults__, "fanout", FANOUT)


def small_config(**changes: object) -> SfuConfig:
    base = SfuConfig(
        public_url="http://127.0.0.1",
        node_id="sfu-test",
        tiers=parse_tiers("360p:320x180@600,180p:160x90@150,audio"),
        keyframe_min_interval_s=0.3,
        ice_host_addresses=LOOPBACK,
        ice_allowed_networks=("127.0.0.0/8",),
        heartbeat_interval_s=0.5,
        drain_timeout_s=0.0,
        upgrade_hold_s=3.0,
        fanout=FANOUT,
    )
    return base.with_changes(**changes)


@dataclass
class RunningNode:
    node: SfuNode
    base: str  # http://127.0.0.1:PORT/sfu
    http: httpx.AsyncClient
    links: dict[str, LinkInfo] = field(default_factory=dict)

    def token(self, room: str, identity: str, role: str, **kwargs: object) -> str:
        return mint_media_token(SECRET, room=room, identity=identity, role=role, **kwargs)

    def auth(self, room: str, identity: str, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(room, identity, role)}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def serve(app: Starlette, port: int) -> tuple[uvicorn.Server, asyncio.Task]:
    # a request still open at the end of a test must not hold the teardown: cancelled after 5 s
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.02)
    return server, task


@pytest.fixture
async def node_factory() -> AsyncIterator[Callable[..., object]]:
    """Start nodes on demand; every one is stopped after the test."""
    started: list[tuple[SfuNode, uvicorn.Server, asyncio.Task, httpx.AsyncClient]] = []

    async def start(config: SfuConfig | None = None, redis: object = None) -> RunningNode:
        links: dict[str, LinkInfo] = {}

        async def link_lookup(identity: str) -> LinkInfo | None:
            return links.get(identity)

        port = free_port()
        config = (config or small_config()).with_changes(public_url=f"http://127.0.0.1:{port}")
        node = SfuNode(config, secret=SECRET, redis=redis, link_lookup=link_lookup)
        await node.start()
        app = Starlette(routes=[Mount("/sfu", app=create_sfu_app(node))])
        server, task = await serve(app, port)
        http = httpx.AsyncClient(timeout=20)
        started.append((node, server, task, http))
        return RunningNode(node, f"http://127.0.0.1:{port}/sfu", http, links)

    yield start
    for node, server, task, http in started:
        await http.aclose()
        await node.stop()
        server.should_exit = True
        await task


@pytest.fixture
async def sfu(node_factory) -> RunningNode:
    return await node_factory()


async def recv_frames(track, count: int, timeout: float = 15.0) -> list:
    """Receive ``count`` decoded frames from ``track``."""
    frames: list = []

    async def take() -> None:
        while len(frames) < count:
            frames.append(await track.recv())

    await asyncio.wait_for(take(), scaled(timeout))
    return frames


def track_of(session, kind: str):
    return next(t for t in session.tracks if t.kind == kind)


async def publish_scene(sfu: RunningNode, room: str = "r1", identity: str = "studio", video=None, audio=True):
    """The host publishes the programme: its token names it the room's host."""
    from rtc.synthetic_media import SyntheticAudioTrack, SyntheticVideoTrack
    from rtc.whip_client import publish

    tracks = [SyntheticAudioTrack()] if audio else []
    tracks.append(video or SyntheticVideoTrack(320, 180, frames=30))
    return await publish(sfu.http, f"{sfu.base}/whip/{room}", sfu.token(room, identity, "publish", host=True), tracks)


async def ghost_whep(sfu: RunningNode, room: str, identity: str, kind: str = "video", headers: dict | None = None) -> httpx.Response:
    """POST a receive-only WHEP offer from a peer closed at once: the node answers, then waits for a peer that never connects."""
    pc = peer_connection()
    pc.addTransceiver(kind, direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    await pc.close()
    headers = headers or {"Content-Type": "application/sdp", **sfu.auth(room, identity, "subscribe")}
    return await sfu.http.post(f"{sfu.base}/whep/{room}", content=pc.localDescription.sdp.encode(), headers=headers)
