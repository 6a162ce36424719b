"""A receiver without transport-cc is fitted from its NACKs: real SRTP and UDP on loopback, the real clock."""

from __future__ import annotations

import asyncio
import os
import time

import pytest
from aiortc import RTCPeerConnection
from aiortc.rtp import RTCP_RTPFB_NACK, RtcpRtpfbPacket

from sfu.allocator import LinkInfo, TierAllocation
from sfu.config import SfuConfig
from sfu.packet_stream import PacketStream
from sfu.subscriber import NACK_WINDOW_S, Subscriber
from tests.sfu.test_packet_stream import Receiver, wired_downtrack
from tests.sfu.test_video_repeat import repeating_downtrack


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


async def nacks_over_a_window(receiver: Receiver, rounds: list[list[int]]) -> list[str]:
    """NACKs for ``rounds`` of packet numbers, the last a window later, while 100 packets go to an unknown link (720p)."""
    moves: list[str] = []
    pc = RTCPeerConnection()
    allocation = TierAllocation(SfuConfig(public_url="http://x"), None, time.monotonic())
    sub = Subscriber("r", "c", pc, allocation, source=None, on_ready=lambda s: None, on_tier=lambda s, t: moves.append(t.name))
    try:
        stream = PacketStream("video", "t/720p", clock_rate=90000)
        sub.video = dt = wired_downtrack(receiver, gso=False)
        stream.attach(dt, at_keyframe=False)
        first = dt.next_seq
        for n, lost in enumerate(rounds):
            if n == len(rounds) - 1:
                await asyncio.sleep(NACK_WINDOW_S)  # the window closes at the next NACK after it
            nack = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=dt.ssrc, lost=[(first + i) & 0xFFFF for i in lost])
            sub._on_rtcp(dt, nack)
            if n == 0:  # the window opened: the stream goes on
                for i in range(100):
                    stream.push_frame([os.urandom(1000)], i, 3000 * i, keyframe=i == 0)
    finally:
        await pc.close()
    return moves


async def test_a_burst_of_nacks_moves_down_before_the_next_report(receiver):
    # 30 of 100 packets asked for again within the window: the link carries about two thirds
    moves = await nacks_over_a_window(receiver, [list(range(0, 30, 2)), list(range(1, 30, 2)), [99]])
    assert moves and moves[0] != "720p"


async def test_a_receiver_asking_again_for_the_same_packets_counts_them_once(receiver):
    # aiortc repeats its whole list of missing packets with each NACK: 5 packets, not 50
    moves = await nacks_over_a_window(receiver, [list(range(5))] * 10 + [list(range(5))])
    assert moves == []


async def test_retransmissions_stay_a_share_of_the_tier_without_an_estimate(receiver):
    """A fibre profile and no estimate (no transport-cc, no REMB): a link that just dropped NACKs
    hundreds of packets, and resending them all would refill it."""
    pc = RTCPeerConnection()
    fibre = LinkInfo(downlink_kbps=100_000, uplink_kbps=50_000)
    allocation = TierAllocation(SfuConfig(public_url="http://x"), fibre, time.monotonic())
    sub = Subscriber("r", "c", pc, allocation, source=None, on_ready=lambda s: None, on_tier=lambda s, t: None)
    try:
        stream = PacketStream("video", "t/720p", clock_rate=90000)
        sub.video = dt = repeating_downtrack(receiver)  # a retransmission protects an index again
        stream.attach(dt, at_keyframe=False)
        first = dt.next_seq
        for i in range(300):
            stream.push_frame([os.urandom(1000)], i, 3000 * i, keyframe=i == 0)
        sub._on_rtcp(dt, RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=dt.ssrc,
                                         lost=[(first + i) & 0xFFFF for i in range(300)]))  # fmt: skip
        # a quarter of 720p's 2.5 Mbps, half a second of it saved up: about 33 packets of 1,200 bytes
        assert 0 < dt.retransmits <= 40 and dt.repairs_refused == 300 - dt.retransmits and dt.send_errors == 0
    finally:
        await pc.close()
