"""Transport-cc end to end: what the answer advertises is what the packets carry, and feedback is read."""

from __future__ import annotations

import asyncio
import re
import struct
import time

from aiortc import RTCSessionDescription

from rtc.aiortc_adapter import replace_rtp_data_handler, send_rtcp_packet
from rtc.whip_client import peer_connection
from rtc.transport_cc import TWCC_URI, build_feedback
from tests.waiting import eventually

from .conftest import publish_scene, small_config

TWCC_ID = 5


def offer_transport_cc(sdp: str) -> str:
    """What Chromium's offer says: the extension, and transport-cc feedback for every codec."""
    out = []
    for line in sdp.split("\r\n"):
        out.append(line)
        if line.startswith("a=mid:"):
            out.append(f"a=extmap:{TWCC_ID} {TWCC_URI}")
        elif line.startswith("a=rtpmap:"):
            out.append(f"a=rtcp-fb:{line[9:].split()[0]} transport-cc")
    return "\r\n".join(out)


def extension_elements(data: bytes) -> list[tuple[int, bytes]]:
    """The one-byte header extension elements (RFC 8285) of a plain RTP packet; padding skipped."""
    if not data[0] & 0x10:
        return []
    pos = 12 + 4 * (data[0] & 0x0F)
    profile, words = struct.unpack_from("!HH", data, pos)
    assert profile == 0xBEDE
    block = data[pos + 4 : pos + 4 + 4 * words]
    elements = []
    i = 0
    while i < len(block):
        if block[i] == 0:
            i += 1
            continue
        ext_id, length = block[i] >> 4, (block[i] & 0x0F) + 1
        elements.append((ext_id, block[i + 1 : i + 1 + length]))
        i += 1 + length
    return elements


async def whep_capturing(sfu, identity: str, transport_cc: bool):
    pc = peer_connection()
    for kind in ("audio", "video"):
        pc.addTransceiver(kind, direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    offer = pc.localDescription.sdp
    if transport_cc:
        offer = offer_transport_cc(offer)
    response = await sfu.http.post(
        f"{sfu.base}/whep/r1", content=offer, headers={"Content-Type": "application/sdp", **sfu.auth("r1", identity, "subscribe")}
    )
    assert response.status_code == 201, response.text
    captured: list[tuple[int, list, float]] = []
    dtls = pc.getTransceivers()[0].receiver.transport

    def capture(handle):  # type: ignore[no-untyped-def]
        async def handle_rtp_data(data: bytes, arrival_time_ms: int) -> None:
            captured.append((int.from_bytes(data[8:12], "big"), extension_elements(data), time.monotonic()))
            await handle(data, arrival_time_ms)

        return handle_rtp_data

    replace_rtp_data_handler(dtls, capture)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=response.text, type="answer"))
    return pc, response.text, captured


def sections(sdp: str) -> dict[str, str]:
    return {m.split(" ", 1)[0]: m for m in sdp.split("m=")[1:]}


async def test_the_answer_advertises_transport_cc_and_every_packet_carries_it(sfu):
    pub = await publish_scene(sfu)
    pc, answer, captured = await whep_capturing(sfu, "c1", transport_cc=True)
    try:
        for kind, media in sections(answer).items():
            assert re.findall(r"a=extmap:\S+ (\S+)", media) == [TWCC_URI], kind
            assert f"a=extmap:{TWCC_ID} {TWCC_URI}" in media
            assert "abs-send-time" not in media and "sdes:mid" not in media
        vp8 = re.search(r"a=rtpmap:(\d+) VP8/90000", sections(answer)["video"]).group(1)
        assert f"a=rtcp-fb:{vp8} transport-cc" in answer
        ssrcs = {kind: int(re.search(r"a=ssrc:(\d+)", media).group(1)) for kind, media in sections(answer).items()}
        await eventually(lambda: {ssrc for ssrc, _, _ in captured} >= set(ssrcs.values()), what="audio and video arrive")
        ids = {ext_id for _, elements, _ in captured for ext_id, _ in elements}
        assert ids == {TWCC_ID}
        assert all(len(elements) == 1 and len(elements[0][1]) == 2 for _, elements, _ in captured)
        # one sequence space for the whole transport, audio and video interleaved, no gap and no repeat
        seqs = [int.from_bytes(elements[0][1], "big") for _, elements, _ in captured]
        assert len(set(seqs)) == len(seqs)
        assert max(seqs) - min(seqs) + 1 == len(seqs)

        # feedback for what arrived is read; a malformed one is counted and the peer goes on
        [state] = sfu.node.room("r1").subscribers.values()
        assert state.cc.enabled
        arrivals = [10.0 + i * 0.002 for i in range(len(seqs))]
        feedback = build_feedback(1, ssrcs["video"], min(seqs), arrivals)
        dtls = pc.getTransceivers()[0].receiver.transport
        await send_rtcp_packet(dtls, feedback)
        await eventually(lambda: state.feedback_packets == 1, what="the node reads the feedback")
        await send_rtcp_packet(dtls, feedback[:2] + struct.pack("!H", 40) + feedback[4:])
        await eventually(lambda: state.feedback_errors == 1, what="the malformed feedback is counted")
        before = len(captured)
        await eventually(lambda: len(captured) > before + 20, what="media still flows")
        assert state.stats()["feedback_errors"] == 1 and pc.connectionState == "connected"
    finally:
        await pc.close()
        await pub.close()


async def test_without_transport_cc_the_answer_advertises_no_extension_and_packets_carry_none(sfu):
    pub = await publish_scene(sfu)
    pc, answer, captured = await whep_capturing(sfu, "c1", transport_cc=False)
    try:
        assert "a=extmap" not in answer
        assert "transport-cc" not in answer
        await eventually(lambda: len({ssrc for ssrc, _, _ in captured}) >= 2, what="audio and video arrive")
        assert all(elements == [] for _, elements, _ in captured)  # the reserved bytes are padding
    finally:
        await pc.close()
        await pub.close()


FEEDBACK_INTERVAL_S = 0.1  # how often a browser sends transport-cc feedback


async def report_arrivals(pc, captured, video_ssrc: int, sent_at, lossy) -> None:
    """A receiver's transport-cc feedback every 100 ms on what arrived; ``lossy()``: report every other packet lost.

    The arrival times are those of an ideal link (``sent_at(seq)`` plus 10 ms):
    this process's own loop, busy with the node too, would stamp its lag.
    """
    dtls = pc.getTransceivers()[0].receiver.transport
    done = 0
    count = 0
    while True:
        await asyncio.sleep(FEEDBACK_INTERVAL_S)  # the emulated receiver's cadence, not a wait for an event
        batch = captured[done:]
        done += len(batch)
        arrived = {seq: sent_at(seq) + 0.010 for seq in (int.from_bytes(e[0][1], "big") for _, e, _ in batch if e)}
        if not arrived:
            continue
        base = min(arrived)
        span = (max(arrived) - base) & 0xFFFF
        arrivals = [arrived.get((base + i) & 0xFFFF) for i in range(span + 1)]
        if lossy():
            arrivals = [None if i % 2 else a for i, a in enumerate(arrivals)]
        count = (count + 1) & 0xFF
        await send_rtcp_packet(dtls, build_feedback(1, video_ssrc, base, arrivals, count=count))


async def test_a_transport_cc_receiver_drops_on_loss_then_climbs_back_after_a_probe(node_factory):
    sfu = await node_factory(small_config(upgrade_hold_s=2.0))
    pub = await publish_scene(sfu)
    pc, answer, captured = await whep_capturing(sfu, "c1", transport_cc=True)
    lossy = True
    video_ssrc = int(re.search(r"a=ssrc:(\d+)", sections(answer)["video"]).group(1))
    await eventually(lambda: sfu.node.room("r1").subscribers, what="the subscriber joins")
    [state] = sfu.node.room("r1").subscribers.values()
    reporter = asyncio.create_task(report_arrivals(pc, captured, video_ssrc, lambda seq: state.cc.lookup(seq)[0], lambda: lossy))
    try:
        assert state.allocation.tier.name == "360p"
        # half the packets reported lost: one step down to what fits, not a cascade
        await eventually(lambda: state.allocation.tier.name != "360p", timeout=10, what="a downgrade on reported loss")
        lossy = False
        assert state.allocation.tier.name == "180p"
        down = state.allocation.changes
        # clean reports again: after the hold, a probe (padding on RTX, numbered like any packet), then 360p
        await eventually(lambda: state.allocation.tier.name == "360p", timeout=20, what="the climb back")
        assert state.allocation.probes >= 1 and state.allocation.changes == down + 1
        assert state.feedback_errors == 0
        rtx_ssrc = int(re.findall(r"a=ssrc-group:FID \d+ (\d+)", answer)[0])
        assert any(ssrc == rtx_ssrc and elements for ssrc, elements, _ in captured)  # the probe's padding
        assert state.estimator.estimate_bps / 1000 >= state.allocation.cost_kbps(state.allocation.index)
        metrics = (await sfu.http.get(f"{sfu.base}/metrics", headers=sfu.auth("*", "ops", "control"))).text
        [estimate] = [line for line in metrics.splitlines() if line.startswith("vcs_sfu_subscriber_estimate_bps{")]
        assert float(estimate.rsplit(" ", 1)[1]) >= 600_000
        [probes] = [line for line in metrics.splitlines() if line.startswith("vcs_sfu_subscriber_probes_total{")]
        assert float(probes.rsplit(" ", 1)[1]) >= 1
    finally:
        reporter.cancel()
        await asyncio.gather(reporter, return_exceptions=True)
        await pc.close()
        await pub.close()
