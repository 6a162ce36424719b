"""WHIP/WHEP against a small real aiortc peer: real ICE, DTLS and SRTP over loopback."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from rtc.aiortc_adapter import decoder_thread
from rtc.rtp_stats import RtpCounter, StatsWindow, vp8_keyframe_size
from rtc.synthetic_media import AudioPattern, VideoPattern
from rtc.whip_client import MediaError, publish, subscribe
from tests.conftest import TEST_SECRET, free_port
from tests.fake_sfu import FakeSfu
from tests.waiting import eventually
from vcs.media_tokens import mint_media_token


@pytest.fixture
def fake_sfu(sfu) -> tuple[FakeSfu, str]:
    return sfu


def token(role: str, room: str = "r1", identity: str = "00070", host: bool = False) -> str:
    return mint_media_token(TEST_SECRET, room=room, identity=identity, role=role, ttl=600, host=host)


async def test_whep_receives_and_counts_without_decoding(fake_sfu):
    sfu, url = fake_sfu
    async with httpx.AsyncClient(timeout=10) as http:
        session = await subscribe(http, f"{url}/sfu/whep/r1", token("subscribe"), max_tier="180p")
        try:
            await asyncio.wait_for(session.first_media.wait(), 15)
            video, audio = session.counters["video"], session.counters["audio"]
            await eventually(lambda: video.packets > 20 and audio.packets > 20 and video.height)
            assert session.tier == "180p" and (video.width, video.height) == (320, 180)
            assert video.lost == 0 and video.bytes > 1000
            assert sfu.of("whep")[0].params == {"max_tier": "180p"}
            # the receiver decodes nothing: its decoder thread is gone and the track has ended
            for transceiver in session.pc.getTransceivers():
                assert decoder_thread(transceiver.receiver) is None
                assert transceiver.receiver.track.readyState == "ended"
            assert session.pc.connectionState == "connected"
        finally:
            await session.close()
            await session.close()  # safe twice
        resource = sfu.of("whep")[0]
        assert resource.deleted
        assert session.dropped.is_set()


async def test_a_decoding_subscriber_gets_frames_and_still_counts(fake_sfu):
    sfu, url = fake_sfu
    async with httpx.AsyncClient(timeout=10) as http:
        session = await subscribe(http, f"{url}/sfu/whep/r1", token("subscribe"), source="00071", kinds=("video",), decode=True)
        try:
            [track] = session.tracks
            frame = await asyncio.wait_for(track.recv(), 15)
            assert (frame.width, frame.height) == (320, 180)
            assert session.counters["video"].packets > 0 and "audio" not in session.counters
            assert session.tier == "180p"
            assert sfu.of("whep")[0].params == {"source": "00071"}
        finally:
            await session.close()
        assert sfu.of("whep")[0].deleted


async def test_whip_publishes_shared_packets_that_decode(fake_sfu):
    sfu, url = fake_sfu
    video, audio = VideoPattern.for_tier("180p"), AudioPattern()
    await video.start()
    await audio.start()
    async with httpx.AsyncClient(timeout=10) as http:
        sessions = [await publish(http, f"{url}/sfu/whip/r1", token("publish", identity=f"e{i}"), [video.track(), audio.track()]) for i in range(2)]
        try:
            for session in sessions:
                await asyncio.wait_for(session.first_media.wait(), 15)
            await eventually(lambda: len(sfu.of("whip")) == 2 and all(r.frames >= 10 for r in sfu.of("whip")))
            assert {r.frame_size for r in sfu.of("whip")} == {(320, 180)}
            assert {r.identity for r in sfu.of("whip")} == {"e0", "e1"}
            assert video.frames_encoded < 60  # one encoder for both publishers, not one each
        finally:
            for session in sessions:
                await session.close()
    assert video.broadcast.readers == 0 and audio.broadcast.readers == 0  # tracks stopped with their sessions
    await video.stop()
    await audio.stop()


async def test_refusals_raise_media_error(fake_sfu):
    sfu, url = fake_sfu
    async with httpx.AsyncClient(timeout=10) as http:
        with pytest.raises(MediaError) as refused:
            await subscribe(http, f"{url}/sfu/whep/r1", token("subscribe", room="other"))
        assert refused.value.status == 403
        sfu.refuse_with = 503
        with pytest.raises(MediaError) as busy:
            await subscribe(http, f"{url}/sfu/whep/r1", token("subscribe"))
        assert busy.value.status == 503 and busy.value.retry_after == 1.0
        with pytest.raises(MediaError) as unreachable:
            await subscribe(http, f"http://127.0.0.1:{free_port()}/sfu/whep/r1", token("subscribe"))
        assert unreachable.value.status is None


def _vp8(descriptor: bytes, keyframe: bool = True, width: int = 640, height: int = 360) -> bytes:
    tag = bytes([0x00 if keyframe else 0x01, 0x00, 0x00])
    return descriptor + tag + b"\x9d\x01\x2a" + width.to_bytes(2, "little") + height.to_bytes(2, "little")


def test_vp8_keyframe_size_parses_descriptor_variants():
    assert vp8_keyframe_size(_vp8(b"\x10")) == (640, 360)  # minimal descriptor
    assert vp8_keyframe_size(_vp8(b"\x90\x80\x05")) == (640, 360)  # 7-bit picture id
    assert vp8_keyframe_size(_vp8(b"\x90\x80\x81\x23")) == (640, 360)  # 15-bit picture id
    assert vp8_keyframe_size(_vp8(b"\x90\xe0\x05\x01\x20")) == (640, 360)  # picture id, TL0PICIDX, TID
    assert vp8_keyframe_size(_vp8(b"\x00")) is None  # not the start of a partition
    assert vp8_keyframe_size(_vp8(b"\x10", keyframe=False)) is None
    assert vp8_keyframe_size(_vp8(b"\x10")[:8]) is None
    assert vp8_keyframe_size(b"\x90") is None


async def test_vp8_keyframe_size_of_aiortc_packetized_pattern():
    from aiortc.codecs.vpx import Vp8Encoder

    video = VideoPattern.for_tier("180p")
    track = video.track()
    await video.start()
    try:
        packet = await asyncio.wait_for(track.recv(), 5)
        while not packet.is_keyframe:
            packet = await asyncio.wait_for(track.recv(), 5)
        payloads, _ = Vp8Encoder().pack(packet)
        assert vp8_keyframe_size(payloads[0]) == (320, 180)
        assert all(vp8_keyframe_size(p) is None for p in payloads[1:])
    finally:
        track.stop()
        await video.stop()


class _Packet:
    def __init__(self, seq: int, ssrc: int = 1, payload_type: int = 96, payload: bytes = b"x" * 88, marker: int = 0) -> None:
        self.sequence_number, self.ssrc, self.payload_type, self.payload = seq, ssrc, payload_type, payload
        self.marker = marker


def test_rtp_counter_loss_across_wrap_and_rtx():
    counter = RtpCounter("audio")
    counter.rtx_types = {97}
    for seq in [65533, 65534, 65535, 1, 2, 4]:  # 0 and 3 lost, across the wrap
        counter.add(_Packet(seq))
    counter.add(_Packet(3, ssrc=2, payload_type=97))  # a retransmission is counted as bytes, not as media
    assert counter.expected == 8 and counter.media_packets == 6 and counter.lost == 2
    assert counter.packets == 7 and counter.bytes == 7 * 100
    counter.add(_Packet(2))  # late duplicate: no new span
    assert counter.expected == 8


def test_rtp_counter_counts_video_frames_by_their_marker_bit():
    counter = RtpCounter("video")
    counter.rtx_types = {97}
    for seq, marker in enumerate([0, 0, 1, 1, 0, 1]):  # frames of 3, 1 and 2 packets
        counter.add(_Packet(seq, marker=marker))
    counter.add(_Packet(2, payload_type=97, marker=1))  # a retransmitted last packet ends no new frame
    assert counter.frames == 3


def test_stats_window_bitrate_and_loss():
    counter, window = RtpCounter("audio"), StatsWindow()
    assert window.sample([counter], at=0.0) == (0.0, 0.0)
    for seq in range(100):
        if seq % 10:
            counter.add(_Packet(seq))
    kbps, loss = window.sample([counter], at=2.0)
    assert kbps == pytest.approx(90 * 100 * 8 / 2 / 1000, abs=0.1)
    assert loss == pytest.approx(9 / 99 * 100, abs=0.01)  # the span starts at the first packet received (seq 1)


async def test_interoperates_with_the_sfu_node(loopback_ice):
    """The project's own SFU node (sfu.node) answers this client's WHIP and WHEP offers."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from sfu.app import create_sfu_app
    from sfu.config import SfuConfig
    from sfu.node import SfuNode
    from vcs.tiers import parse_tiers

    port = free_port()
    config = SfuConfig(
        public_url=f"http://127.0.0.1:{port}", node_id="interop", tiers=parse_tiers("360p:320x180@600,180p:160x90@150,audio"),
        ice_host_addresses=("127.0.0.1",), ice_allowed_networks=("127.0.0.0/8",), drain_timeout_s=0.0,
    )  # fmt: skip
    node = SfuNode(config, secret=TEST_SECRET)
    await node.start()
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Mount("/sfu", app=create_sfu_app(node))]), host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve())
    video, audio = VideoPattern.for_tier("180p"), AudioPattern()
    await video.start()
    await audio.start()
    base = f"http://127.0.0.1:{port}/sfu"
    try:
        await eventually(lambda: server.started)
        async with httpx.AsyncClient(timeout=10) as http:
            host = await publish(http, f"{base}/whip/r1", token("publish", identity="central", host=True), [video.track(), audio.track(muted=False)])
            commune = await subscribe(http, f"{base}/whep/r1", token("subscribe"), max_tier="180p")
            try:
                await asyncio.wait_for(commune.first_media.wait(), 15)
                await eventually(lambda: commune.counters["video"].packets > 20 and commune.counters["audio"].packets > 20)
                assert commune.tier in ("180p", "90p")  # the SFU's ladder here is 180p -> 160x90
                assert commune.pc.connectionState == "connected" and host.pc.connectionState == "connected"
            finally:
                await commune.close()
                await host.close()
            await eventually(lambda: not node.resources)  # both DELETEs were accepted
    finally:
        await video.stop()
        await audio.stop()
        await node.stop()
        server.should_exit = True
        await serving
