"""Tier fit end to end: link profiles, REMB down fast and up slowly, stats."""

from __future__ import annotations

import asyncio
import time

from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, pack_remb_fci

from rtc.aiortc_adapter import send_rtcp_packet, sender_ssrcs
from rtc.whip_client import subscribe
from sfu.allocator import LinkInfo
from tests.waiting import eventually, scaled, stays

from .conftest import publish_scene, recv_frames, small_config, track_of

# test ladder: 360p = 320x180 @ 600 kbps, 180p = 160x90 @ 150 kbps, audio-only


async def send_remb(session, bitrate: int) -> None:
    """Send a real REMB over the subscriber's own SRTCP."""
    pc = session.pc
    video = next(t for t in pc.getTransceivers() if t.kind == "video")
    media = next(m for m in pc.remoteDescription.sdp.split("m=")[1:] if m.startswith("video"))
    ssrc = int(next(line for line in media.split("\r\n") if line.startswith("a=ssrc:")).split()[0][7:])
    packet = RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=sender_ssrcs(video.sender)[0], media_ssrc=0, fci=pack_remb_fci(bitrate, [ssrc]))
    await send_rtcp_packet(video.receiver.transport, bytes(packet))


async def frame_size(track) -> tuple[int, int]:
    frame = (await recv_frames(track, 1))[0]
    return frame.width, frame.height


async def until_size(track, size: tuple[int, int], timeout: float = 10.0) -> None:
    """Read frames (the queue may hold seconds of old ones) until ``size`` shows."""

    async def read() -> None:
        while await frame_size(track) != size:
            pass

    await asyncio.wait_for(read(), timeout)


async def test_a_1_mbps_commune_gets_a_tier_that_fits(sfu):
    sfu.links["commune-slow"] = LinkInfo(downlink_kbps=1000, uplink_kbps=512, rtt_ms=80, loss_pct=0.5)
    sfu.links["commune-fast"] = LinkInfo(downlink_kbps=200_000, uplink_kbps=100_000)
    pub = await publish_scene(sfu)
    slow = await subscribe(sfu.http, f"{sfu.base}/whep/r1", sfu.token("r1", "commune-slow", "subscribe"), decode=True)
    fast = await subscribe(sfu.http, f"{sfu.base}/whep/r1", sfu.token("r1", "commune-fast", "subscribe"), decode=True)
    try:
        frames = await recv_frames(track_of(slow, "video"), 45)
        assert (frames[-1].width, frames[-1].height) == (160, 90)
        assert (await frame_size(track_of(fast, "video"))) == (320, 180)
        room = sfu.node.room("r1")
        by_identity = {s["identity"]: s for s in room.stats()["subscribers"]}
        assert by_identity["commune-slow"]["tier"] == "180p"
        assert by_identity["commune-slow"]["cap_kbps"] == 500
        assert by_identity["commune-fast"]["tier"] == "360p"
        # what is actually sent stays within the slow link's share
        slow_stats = next(s for s in room.subscribers.values() if s.identity == "commune-slow")
        await eventually(lambda: slow_stats.bitrate_bps > 0, what="the slow link's bitrate is measured")
        assert slow_stats.bitrate_bps <= 500_000
        # and it shows in /metrics
        metrics = (await sfu.http.get(f"{sfu.base}/metrics", headers=sfu.auth("*", "ops", "control"))).text
        [info] = [line for line in metrics.splitlines() if line.startswith("vcs_sfu_subscriber_info") and "commune-slow" in line]
        assert 'tier="180p"' in info and info.endswith(" 1")
        assert "vcs_sfu_subscriber_bitrate_bps" in metrics
        assert 'vcs_sfu_tier_subscribers{room="r1",tier="180p"} 1' in metrics
        # without a control token: the node's totals, no room or endpoint names
        anonymous = (await sfu.http.get(f"{sfu.base}/metrics")).text
        assert "vcs_sfu_subscribers " in anonymous or "vcs_sfu_subscribers{" in anonymous
        assert "r1" not in anonymous and "commune-slow" not in anonymous
        other_room = (await sfu.http.get(f"{sfu.base}/metrics", headers=sfu.auth("r1", "ops", "control"))).text
        assert "commune-slow" not in other_room  # a control token for one room is not one for the node
    finally:
        for session in (slow, fast, pub):
            await session.close()


async def test_a_subscriber_may_ask_for_less_than_its_link(sfu):
    pub = await publish_scene(sfu)
    low = await subscribe(sfu.http, f"{sfu.base}/whep/r1", sfu.token("r1", "fleet-1", "subscribe"), max_tier="180p", decode=True)
    try:
        assert (await frame_size(track_of(low, "video"))) == (160, 90)
        [stats] = sfu.node.room("r1").stats()["subscribers"]
        assert stats["tier"] == "180p"
        offer_again = await sfu.http.post(
            f"{sfu.base}/whep/r1?max_tier=8k", content=b"v=0", headers={"Content-Type": "application/sdp", **sfu.auth("r1", "x", "subscribe")}
        )
        assert offer_again.status_code == 400 and "unknown tier" in offer_again.text
    finally:
        for session in (low, pub):
            await session.close()


async def test_remb_moves_down_fast_and_up_slowly(node_factory):
    sfu = await node_factory(small_config(upgrade_hold_s=3.0))
    pub = await publish_scene(sfu)
    sub = await subscribe(sfu.http, f"{sfu.base}/whep/r1", sfu.token("r1", "c1", "subscribe"), decode=True)
    try:
        video = track_of(sub, "video")
        await recv_frames(video, 10)
        assert (await frame_size(video)) == (320, 180)
        [state] = sfu.node.room("r1").subscribers.values()

        await send_remb(sub, 300_000)  # below 360p (640 kbps with audio)
        await eventually(lambda: state.allocation.tier.name == "180p", timeout=3)
        down_at = time.monotonic()
        await eventually(lambda: state.tier_name == "180p", timeout=3)
        await until_size(video, (160, 90))
        assert state.remb_bps == 300_000

        await send_remb(sub, 5_000_000)  # plenty again: only after the hold
        await stays(lambda: state.allocation.tier.name == "180p", 1.0, what="the tier is held down")
        await eventually(lambda: state.allocation.tier.name == "360p", timeout=6)
        assert time.monotonic() - down_at >= 3.0
        # up only after a probe that the receiver's reports showed carried
        assert state.allocation.probes == 1 and state.allocation.failed_probes == 0
        await until_size(video, (320, 180))

        await send_remb(sub, 20_000)  # nothing fits: audio only
        await eventually(lambda: state.tier_name == "audio", timeout=3)
        assert state.video.stream is None
        assert state.audio.stream is not None
    finally:
        await sub.close()
        await pub.close()


async def test_receiver_reports_give_rtt_and_loss(sfu):
    pub = await publish_scene(sfu)
    sub = await subscribe(sfu.http, f"{sfu.base}/whep/r1", sfu.token("r1", "c1", "subscribe"), decode=True)
    try:
        await recv_frames(track_of(sub, "video"), 5)
        [state] = sfu.node.room("r1").subscribers.values()
        # aiortc's receiver reports once a second; the node's SRs give the RTT
        await eventually(lambda: state.rtt_ms is not None, timeout=8)
        assert 0 <= state.rtt_ms < scaled(500)
        assert state.loss == 0
        await eventually(lambda: state.bitrate_bps > 0, timeout=4)
        assert state.stats()["packets_sent"] > 0
    finally:
        await sub.close()
        await pub.close()
