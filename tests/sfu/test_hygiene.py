"""Peers are closed on DELETE, on ICE failure or consent loss, at room end;
sockets, threads, tasks and peer objects return to their baseline; hostile
packets from one peer hurt nobody."""

from __future__ import annotations

import asyncio
import gc
import os
import random
import threading

import aioice.ice
from aiortc import RTCPeerConnection

from rtc.aiortc_adapter import ice_connection, nominated_pair, tx_srtp
from rtc.whip_client import subscribe
from tests.waiting import eventually

from .conftest import ghost_whep, publish_scene, recv_frames, small_config, track_of


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def peer_objects() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, RTCPeerConnection))


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def one_cycle(sfu, i: int) -> None:
    pub = await publish_scene(sfu, room=f"h{i % 3}")
    watchers = [
        await subscribe(sfu.http, f"{sfu.base}/whep/h{i % 3}", sfu.token(f"h{i % 3}", f"c{i}-{k}", "subscribe"), decode=True)
        for k in range(2)
    ]
    await recv_frames(track_of(watchers[0], "video"), 3)
    await watchers[0].close()  # DELETE
    await watchers[1].pc.close()  # gone without DELETE: DTLS close_notify
    await pub.close()


async def quiet(sfu) -> None:
    await eventually(lambda: not sfu.node.resources and not sfu.node.rooms, timeout=30, what="every peer and room closes")


def usage() -> tuple[int, int, int, int, float]:
    return open_fds(), threading.active_count(), len(asyncio.all_tasks()), peer_objects(), rss_mb()


def above(base: tuple) -> list[str]:
    """What is still above the baseline (a little slack for pools and the allocator)."""
    limits = (base[0] + 2, base[1] + 1, base[2] + 1, base[3], base[4] + 60)
    names = ("fds", "threads", "tasks", "peers", "rss MB")
    return [f"{name} {now} > {limit}" for name, now, limit in zip(names, usage(), limits) if now > limit]


async def test_resources_return_to_baseline(node_factory, monkeypatch):
    # a DTLS close_notify lost on a busy machine is then caught by consent
    # checks in about a second instead of thirty
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.2)
    sfu = await node_factory(small_config(room_idle_timeout_s=0.5, connect_timeout_s=2.0))
    await one_cycle(sfu, 0)  # warm up pools and codecs
    await quiet(sfu)
    base = usage()

    for i in range(1, 10):
        await one_cycle(sfu, i)
    # a subscriber that offers and never connects is closed after the timeout
    assert (await ghost_whep(sfu, "h9", "ghost")).status_code == 201
    await quiet(sfu)
    # closing peers finish their tasks and sockets a moment after the node forgets them
    await eventually(lambda: not above(base), interval=0.5, what=lambda: f"back to the baseline {base}: {above(base)}")


async def test_consent_loss_closes_the_peer(sfu, monkeypatch):
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.2)
    pub = await publish_scene(sfu)
    sub = await subscribe(sfu.http, f"{sfu.base}/whep/r1", sfu.token("r1", "c1", "subscribe"), decode=True)
    other = await subscribe(sfu.http, f"{sfu.base}/whep/r1", sfu.token("r1", "c2", "subscribe"), decode=True)
    try:
        await recv_frames(track_of(sub, "video"), 3)
        # the commune's machine vanishes: its sockets close, nothing is said
        connection = ice_connection(sub.pc.getTransceivers()[0].receiver.transport)
        for protocol in connection._protocols:
            protocol.transport.abort()
        await eventually(lambda: len(sfu.node.room("r1").subscribers) == 1, timeout=10)
        # the others carry on
        await recv_frames(track_of(other, "video"), 10)
    finally:
        await sub.pc.close()
        await other.close()
        await pub.close()


def _garbage(rng: random.Random) -> list[bytes]:
    samples = [
        b"",
        b"\x00",
        bytes(rng.randrange(256) for _ in range(rng.randrange(1, 1400))),
        b"\x80" + bytes(rng.randrange(256) for _ in range(40)),  # RTP-looking, bad auth
        b"\x80\xc8" + bytes(rng.randrange(256) for _ in range(40)),  # SRTCP-looking
        b"\x16\xfe\xfd" + bytes(rng.randrange(256) for _ in range(60)),  # DTLS-looking
        b"\x00\x01\x00\x08" + bytes(20),  # STUN-looking
    ]
    return samples


async def test_hostile_packets_from_one_peer_hurt_nobody(sfu):
    pub = await publish_scene(sfu)
    bad = await subscribe(sfu.http, f"{sfu.base}/whep/r1", sfu.token("r1", "bad", "subscribe"), decode=True)
    good = await subscribe(sfu.http, f"{sfu.base}/whep/r1", sfu.token("r1", "good", "subscribe"), decode=True)
    try:
        await recv_frames(track_of(good, "video"), 3)
        rng = random.Random(7)
        for peer in (bad, pub):
            transport = peer.pc.getTransceivers()[0].receiver.transport
            pair = nominated_pair(transport)
            for _ in range(30):
                for data in _garbage(rng):
                    if data:
                        pair.protocol.transport.sendto(data, pair.remote_addr)
            # well-protected SRTP carrying garbage: bad RTP and RTCP payloads
            for _ in range(50):
                rtp = bytes([0x80, 97 | rng.choice((0, 0x80))]) + bytes(rng.randrange(256) for _ in range(10))
                rtp += bytes(rng.randrange(256) for _ in range(rng.randrange(0, 900)))
                pair.protocol.transport.sendto(tx_srtp(transport).protect(rtp), pair.remote_addr)
                rtcp = bytes([0x81, rng.choice((200, 201, 205, 206)), 0, 7]) + bytes(rng.randrange(256) for _ in range(28))
                pair.protocol.transport.sendto(tx_srtp(transport).protect_rtcp(rtcp), pair.remote_addr)
            await asyncio.sleep(0.2)
        # everyone is still connected and media still flows
        frames = await recv_frames(track_of(good, "video"), 20)
        assert frames
        assert good.pc.connectionState == "connected"
        assert len(sfu.node.room("r1").subscribers) == 2
        assert sfu.node.room("r1").publishers
    finally:
        await good.close()
        await bad.close()
        await pub.close()
