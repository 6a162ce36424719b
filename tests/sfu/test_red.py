"""RED (RFC 2198) for the program audio on long links."""

from __future__ import annotations

import itertools
import re
import struct

from aiortc import RTCSessionDescription

from rtc.aiortc_adapter import replace_rtp_data_handler
from rtc.whip_client import peer_connection
from sfu.red import RedEncoder, red_payload
from tests.waiting import eventually, stays

from .conftest import publish_scene, small_config

RED_PT = 63


def test_a_red_payload_carries_the_previous_block_then_the_primary():
    payload = red_payload(111, b"now", (960, b"before"))
    # F=1 | PT 111, timestamp offset 960 (14 bits) and length 6 (10 bits), then F=0 | PT 111
    assert payload[:5] == bytes([0x80 | 111]) + struct.pack("!I", (960 << 10) | 6)[1:] + bytes([111])
    assert payload[5:] == b"before" + b"now"
    assert red_payload(111, b"now", None) == bytes([111]) + b"now"
    assert red_payload(111, b"now", (1 << 14, b"x")) == bytes([111]) + b"now"  # offset too large to say
    assert red_payload(111, b"now", (960, b"x" * 1024)) == bytes([111]) + b"now"  # block too long to say


def test_the_encoder_repeats_each_packet_in_the_next():
    red = RedEncoder(111)
    first = red.packet(b"a", 1, 1000, False)
    second = red.packet(b"b", 2, 1960, False)
    assert first[20:] == bytes([111]) + b"a"
    assert second[20:] == bytes([0xEF]) + struct.pack("!I", (960 << 10) | 1)[1:] + bytes([111]) + b"a" + b"b"


def offer_red(sdp: str) -> str:
    """Add RED over Opus to an aiortc offer, as Chromium offers it."""
    opus = re.search(r"a=rtpmap:(\d+) opus/48000", sdp).group(1)
    out = []
    for line in sdp.split("\r\n"):
        if line.startswith("m=audio"):
            line += f" {RED_PT}"
        out.append(line)
        if line.startswith(f"a=rtpmap:{opus} "):
            out += [f"a=rtpmap:{RED_PT} red/48000/2", f"a=fmtp:{RED_PT} {opus}/{opus}"]
    return "\r\n".join(out)


async def test_a_receiver_that_offered_red_gets_red_audio_when_its_rtt_is_long(node_factory):
    # a threshold of 0 ms: every measured RTT is "long"
    sfu = await node_factory(small_config(red_rtt_ms=0.0))
    pub = await publish_scene(sfu)
    pc = peer_connection()
    for kind in ("audio", "video"):
        pc.addTransceiver(kind, direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    response = await sfu.http.post(
        f"{sfu.base}/whep/r1",
        content=offer_red(pc.localDescription.sdp),
        headers={"Content-Type": "application/sdp", **sfu.auth("r1", "c1", "subscribe")},
    )
    assert response.status_code == 201, response.text
    answer = response.text
    audio = answer.split("m=audio", 1)[1].split("m=video", 1)[0]
    assert f"a=rtpmap:{RED_PT} red/48000/2" in audio
    opus = int(re.search(r"a=rtpmap:(\d+) opus/48000", audio).group(1))
    audio_ssrc = int(re.search(r"a=ssrc:(\d+)", audio).group(1))
    packets: list[bytes] = []

    def capture(handle):  # type: ignore[no-untyped-def]
        async def handle_rtp_data(data: bytes, arrival_time_ms: int) -> None:
            if int.from_bytes(data[8:12], "big") == audio_ssrc:
                packets.append(data)
            await handle(data, arrival_time_ms)

        return handle_rtp_data

    replace_rtp_data_handler(pc.getTransceivers()[0].receiver.transport, capture)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    try:
        # plain Opus until the first RTT is measured, then RED
        await eventually(lambda: sum(1 for p in packets if p[1] & 0x7F == RED_PT) >= 10, timeout=15, what="RED audio")
        [state] = sfu.node.room("r1").subscribers.values()
        assert state.stats()["audio_red"]
        seqs = [struct.unpack_from("!H", p, 2)[0] for p in packets]
        assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))  # one numbering across the switch
        red = [p for p in packets if p[1] & 0x7F == RED_PT]
        primaries = []
        for packet in red:
            body = packet[20:]
            if body[0] & 0x80:  # a redundant block, then the primary
                offset_len = int.from_bytes(body[1:4], "big")
                length = offset_len & 0x3FF
                assert body[0] & 0x7F == opus and body[4] == opus
                assert offset_len >> 10 == 960  # 20 ms of Opus
                primaries.append((body[5 : 5 + length], body[5 + length :]))
            else:
                assert body[0] == opus
                primaries.append((None, body[1:]))
        # each packet repeats the one before it
        assert all(redundant == previous for (_, previous), (redundant, _) in itertools.pairwise(primaries))
    finally:
        await pc.close()
        await pub.close()


async def test_without_red_offered_the_audio_stays_plain(node_factory):
    sfu = await node_factory(small_config(red_rtt_ms=0.0))
    pub = await publish_scene(sfu)
    pc = peer_connection()
    for kind in ("audio", "video"):
        pc.addTransceiver(kind, direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    response = await sfu.http.post(
        f"{sfu.base}/whep/r1",
        content=pc.localDescription.sdp,
        headers={"Content-Type": "application/sdp", **sfu.auth("r1", "c1", "subscribe")},
    )
    await pc.setRemoteDescription(RTCSessionDescription(sdp=response.text, type="answer"))
    try:
        assert "red/48000" not in response.text
        [state] = sfu.node.room("r1").subscribers.values()
        await eventually(lambda: state.rtt_ms is not None, timeout=10, what="an RTT")
        await stays(lambda: not state.stats()["audio_red"], 2.0, what="plain audio")
    finally:
        await pc.close()
        await pub.close()


async def test_without_red_a_long_link_gets_each_audio_packet_twice(node_factory):
    sfu = await node_factory(small_config(red_rtt_ms=0.0))
    pub = await publish_scene(sfu)
    pc = peer_connection()
    for kind in ("audio", "video"):
        pc.addTransceiver(kind, direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    response = await sfu.http.post(
        f"{sfu.base}/whep/r1",
        content=pc.localDescription.sdp,
        headers={"Content-Type": "application/sdp", **sfu.auth("r1", "c1", "subscribe")},
    )
    assert response.status_code == 201, response.text
    audio = response.text.split("m=audio", 1)[1].split("m=video", 1)[0]
    audio_ssrc = int(re.search(r"a=ssrc:(\d+)", audio).group(1))
    packets: list[bytes] = []

    def capture(handle):  # type: ignore[no-untyped-def]
        async def handle_rtp_data(data: bytes, arrival_time_ms: int) -> None:
            if int.from_bytes(data[8:12], "big") == audio_ssrc:
                packets.append(data)
            await handle(data, arrival_time_ms)

        return handle_rtp_data

    replace_rtp_data_handler(pc.getTransceivers()[0].receiver.transport, capture)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=response.text, type="answer"))
    try:
        [state] = sfu.node.room("r1").subscribers.values()
        await eventually(lambda: state.stats()["audio_repeat"], timeout=15, what="repeated audio")
        room = sfu.node.room("r1")
        [plain, repeat] = [room.audio, *[s for s in room.audio_streams if s.repeat]]
        assert state.audio.stream is repeat
        sent, pushed, start = repeat.packets, plain.packets, len(packets)
        await eventually(lambda: len(packets) >= start + 20, timeout=10, what="audio packets")
        # each packet goes out twice (the copy beside the next packet) ...
        assert repeat.packets - sent >= 2 * (plain.packets - pushed) - 2
        assert repeat.send_errors == 0  # SRTP lets the node send an index twice
        # ... under one numbering: SRTP's replay check keeps the first copy that arrives
        seqs = [struct.unpack_from("!H", p, 2)[0] for p in packets[start:]]
        assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
        assert not state.stats()["audio_red"]
    finally:
        await pc.close()
        await pub.close()
