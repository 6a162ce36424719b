"""Receiver reports that cover a probe, and feedback about a scout's burst, judge the probe, not the tier."""

import time
from types import SimpleNamespace

from aiortc import RTCPeerConnection

from rtc.transport_cc import Feedback
from sfu.allocator import LinkInfo, TierAllocation
from sfu.config import SfuConfig
from sfu.subscriber import Subscriber


def covers(window, since, now, rtt_ms=None):
    return Subscriber._covers_probe(SimpleNamespace(_probe_window=window, rtt_ms=rtt_ms), since, now)


def test_a_report_about_the_probes_packets_does_not_move_the_tier():
    window = (10.0, 10.8)
    assert covers(window, since=9.5, now=10.5)  # the padding was on the link during the interval
    assert covers(window, since=10.5, now=11.5)
    assert covers(window, since=11.0, now=12.0, rtt_ms=600)  # a long link: the padding arrived late
    assert not covers(window, since=11.0, now=12.0, rtt_ms=40)  # after the padding: the tier's own loss
    assert not covers(window, since=8.0, now=9.9)  # before the probe
    assert not covers(None, since=8.0, now=9.0)  # no probe yet


def queue_building_feedback(sub: Subscriber, start: float) -> Feedback:
    """80 packets sent over 160 ms from ``start`` that arrive four times slower: a queue filling."""
    base, arrivals = sub.cc.next, []
    for i in range(80):
        sub.cc.take(start + 0.002 * i, 1200)
        arrivals.append(200.0 + 0.008 * i)
    return Feedback(sender_ssrc=1, media_ssrc=2, base_seq=base, count=0, arrivals=arrivals)


async def test_the_queue_a_scout_builds_moves_no_tier_and_leaves_the_estimate_as_it_was():
    config = SfuConfig(public_url="http://x")
    for scouting in (False, True):
        pc = RTCPeerConnection()
        tiers: list = []
        now = time.monotonic()
        allocation = TierAllocation(config, LinkInfo(downlink_kbps=200_000, uplink_kbps=50_000), now)
        sub = Subscriber("r", "c", pc, allocation, source=None, on_ready=lambda s: None, on_tier=lambda s, t: tiers.append(t))
        sub.ready = True
        before = (sub.estimator.delay_bps, sub.estimator.loss_bps)
        if scouting:  # the burst went out from `now` on
            sub._scout = (now, now + 0.5, before)
        try:
            sub._on_transport_feedback(queue_building_feedback(sub, now))
            if scouting:
                assert (sub.estimator.delay_bps, sub.estimator.loss_bps) == before and not tiers
            else:  # the same feedback about media is news of the link: the estimate falls and the tier with it
                assert sub.estimator.delay_bps < before[0] and tiers
        finally:
            await pc.close()
