"""What one transport-cc feedback packet costs the node: ``vcs bench feedback``.

Every real subscriber (Chromium, the project's agents) sends transport-cc
feedback about every 100 ms; the sinks of ``vcs bench sfu`` send none
(``docs/fanout.md``), so its cost is measured here on its own. A
``Subscriber`` as the node makes it has its send history filled as the
compiled fan-out fills it, and gets the feedback a receiver on a clean link
writes for each 100 ms of a tier, handled as the node handles an RTCP
datagram (``split_compound``, then ``Subscriber._on_transport_feedback``:
the history lookups, the delay and loss estimators, the allocation). The
subscriber's clock is the bench's, moved 100 ms per feedback, so a run of
minutes takes a second.

The yardstick, in the same run: libsrtp's SRTCP unprotect of the same
datagrams (AES-GCM, as negotiated), which the node pays for each one before
this code sees it and which this code does not change.

The last line: ``us_per_feedback=X us_per_subscriber_second=Y yardstick_us=Z ratio=R``
for the first tier (the one ``vcs bench sfu`` sends).
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass

from aiortc import RTCPeerConnection
from pylibsrtp import Policy, Session

from rtc.transport_cc import build_feedback, split_compound

from .allocator import TierAllocation
from .config import SfuConfig
from .subscriber import Subscriber

__all__ = ["FeedbackCase", "CASES", "run_feedback_bench"]

FEEDBACK_S = 0.1
SENDER_SSRC, MEDIA_SSRC = 0x51, 0x52


@dataclass(frozen=True)
class FeedbackCase:
    """100 ms of a tier as sent: video frames of so many packets, and audio packets of 20 ms."""

    name: str
    frames: int
    packets_per_frame: int
    video_bytes: int = 1200
    audio_packets: int = 5
    audio_bytes: int = 160


CASES = (
    FeedbackCase("360p, 500 kbps (the bench's tier)", frames=3, packets_per_frame=2),
    FeedbackCase("720p, 2.5 Mbps", frames=3, packets_per_frame=9),
)


def _traffic(case: FeedbackCase, count: int, seed: int = 7) -> list[tuple[list[tuple[float, int]], bytes]]:
    """``count`` rounds of (packets sent: time into the round and size; the feedback datagram for them)."""
    rng = random.Random(seed)
    rounds = []
    seq = 1
    sends = [(f * FEEDBACK_S / case.frames + p * 0.0005, case.video_bytes) for f in range(case.frames) for p in range(case.packets_per_frame)]
    sends += [(a * 0.02 + 0.003, case.audio_bytes) for a in range(case.audio_packets)]
    sends.sort()
    for k in range(count):
        start = k * FEEDBACK_S  # the receiver's clock
        arrivals = [start + offset + 0.030 + rng.random() * 0.002 for offset, _ in sends]  # 30 ms away, 2 ms of jitter
        rounds.append((sends, build_feedback(SENDER_SSRC, MEDIA_SSRC, seq, arrivals, count=k & 0xFF)))
        seq = (seq + len(sends)) & 0xFFFF
    return rounds


async def _feedback_seconds(case: FeedbackCase, rounds: list) -> float:
    """CPU seconds the node's handling of every round's feedback took (the sends are not timed)."""
    now = [1000.0]
    pc = RTCPeerConnection()
    allocation = TierAllocation(SfuConfig(public_url="http://bench"), None, now[0])
    sub = Subscriber("bench", "commune-0", pc, allocation, source=None, on_ready=lambda s: None,
                     on_tier=lambda s, t: None, monotonic=lambda: now[0])  # fmt: skip
    sub.cc.enable(3)
    take = sub.cc.take
    spent = 0.0
    for sends, datagram in rounds:
        base = now[0]
        for offset, size in sends:
            take(base + offset, size)
        now[0] = base + FEEDBACK_S
        start = time.process_time()
        feedback, _, _ = split_compound(datagram)
        for packet in feedback:
            sub._on_transport_feedback(packet)
        spent += time.process_time() - start
    await pc.close()
    if sub.feedback_packets != len(rounds) or sub.feedback_errors:
        raise RuntimeError(f"{case.name}: {sub.feedback_packets} of {len(rounds)} feedback packets taken, {sub.feedback_errors} errors")
    return spent


def _unprotect_seconds(rounds: list) -> float:
    key = os.urandom(44)
    tx = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=Policy.SRTP_PROFILE_AEAD_AES_256_GCM))
    rx = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND, srtp_profile=Policy.SRTP_PROFILE_AEAD_AES_256_GCM))
    protected = [tx.protect_rtcp(datagram) for _, datagram in rounds]
    start = time.process_time()
    for data in protected:
        rx.unprotect_rtcp(data)
    return time.process_time() - start


async def run_feedback_bench(count: int = 3000, passes: int = 3, out=print) -> dict[str, tuple[float, float]]:  # type: ignore[no-untyped-def]
    """Per case: (us per feedback packet, yardstick us), best of ``passes``."""
    results: dict[str, tuple[float, float]] = {}
    for case in CASES:
        rounds = _traffic(case, count)
        feedback = min([await _feedback_seconds(case, rounds) for _ in range(passes)]) / count * 1e6
        yardstick = min(_unprotect_seconds(rounds) for _ in range(passes)) / count * 1e6
        packets = len(rounds[0][0])
        out(f"{case.name}: {packets} packets per feedback, {feedback:.1f} us per feedback packet, "
            f"{feedback / FEEDBACK_S:.0f} us per subscriber-second; SRTCP unprotect {yardstick:.1f} us")  # fmt: skip
        results[case.name] = (feedback, yardstick)
    feedback, yardstick = results[CASES[0].name]
    out(f"us_per_feedback={feedback:.1f} us_per_subscriber_second={feedback / FEEDBACK_S:.0f} "
        f"yardstick_us={yardstick:.1f} ratio={feedback / yardstick:.1f}")  # fmt: skip
    return results
