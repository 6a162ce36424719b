"""The send-side estimator, fed synthetic transport-cc results on a fake clock."""

import random

import pytest

from sfu.bandwidth_estimator import MAX_BPS, MIN_BPS, BandwidthEstimator

SIZE = 1200  # bytes per packet


class Link:
    """A bottleneck of ``capacity_bps`` with a FIFO queue and an optional loss pattern."""

    def __init__(self, capacity_bps: float, delay_s: float = 0.02) -> None:
        self.capacity_bps = capacity_bps
        self.delay_s = delay_s
        self.free_at = 0.0

    def arrival(self, sent: float) -> float:
        start = max(sent, self.free_at)
        self.free_at = start + SIZE * 8 / self.capacity_bps
        return self.free_at + self.delay_s


def run(est: BandwidthEstimator, link: Link, rate_bps: float, start: float, seconds: float, lose_every: int = 0):
    """Send ``rate_bps`` for ``seconds`` from ``start``; feed feedback every 100 ms; return the estimates seen."""
    interval = SIZE * 8 / rate_bps
    t = start
    batch = []
    seen = []
    n = 0
    next_feedback = start + 0.1
    while t < start + seconds:
        n += 1
        lost = lose_every and n % lose_every == 0
        arrival = link.arrival(t)
        batch.append((t, SIZE, None if lost else arrival))
        t += interval
        if t >= next_feedback:
            est.on_packets(batch, now=t + link.delay_s)
            seen.append(est.estimate_bps)
            batch = []
            next_feedback += 0.1
    return seen


def test_a_growing_queue_is_overuse_and_the_estimate_drops_below_the_link():
    est = BandwidthEstimator(3_000_000, now=0)
    link = Link(1_000_000)
    seen = run(est, link, 2_500_000, 0, 3)
    assert est.detector.state == "overuse" or est.overuses > 0
    assert seen[-1] < 1_000_000  # at most what got through, backed off
    assert seen[-1] > 500_000  # not collapsed


def test_no_overuse_on_a_link_with_room():
    est = BandwidthEstimator(1_000_000, now=0)
    run(est, Link(5_000_000), 800_000, 0, 5)
    assert est.overuses == 0
    assert est.estimate_bps >= 1_000_000  # it grew (up to 1.5 times what was acknowledged)
    assert est.estimate_bps <= 1.5 * 800_000 * 1.1 + 10_000


class BusyHost:
    """A link with room whose packets now and then wait 20 to 120 ms on a busy host (FIFO)."""

    def __init__(self, seed: int, delay_s: float = 0.02) -> None:
        self.delay_s = delay_s
        self.rng = random.Random(seed)
        self.last = 0.0
        self.stall_until = 0.0

    def arrival(self, sent: float) -> float:
        if sent > self.stall_until and self.rng.random() < 0.01:
            self.stall_until = sent + self.rng.uniform(0.02, 0.12)
        waited = self.stall_until if sent < self.stall_until else sent
        self.last = max(self.last, waited + self.delay_s)
        return self.last


@pytest.mark.parametrize("seed", range(4))
def test_delay_that_only_jitters_is_no_overuse(seed):
    est = BandwidthEstimator(1_000_000, now=0)
    run(est, BusyHost(seed), 800_000, 0, 20)
    assert est.overuses == 0
    assert est.estimate_bps >= 1_000_000  # never cut below what the link carries


@pytest.mark.parametrize("overload", [1.05, 1.2])
def test_a_slowly_growing_queue_is_overuse(overload):
    est = BandwidthEstimator(1_000_000, now=0)
    run(est, Link(800_000), 800_000 * overload, 0, 5)
    assert est.overuses > 0
    assert est.estimate_bps < 800_000


def test_a_loss_burst_cuts_the_loss_based_rate_and_recovery_grows_it_back():
    est = BandwidthEstimator(2_000_000, now=0)
    link = Link(10_000_000)
    run(est, link, 1_500_000, 0, 2)
    before = est.estimate_bps
    run(est, link, 1_500_000, 2, 2, lose_every=4)  # 25% loss
    assert est.loss == pytest.approx(0.25, abs=0.05)
    cut = est.estimate_bps
    assert cut < before and cut < 1_500_000
    assert est.decreased_for is not None and est.decreased_for <= 4
    run(est, link, 1_500_000, 4, 6)  # clean again
    assert est.loss < 0.02
    assert est.estimate_bps > cut * 1.3


def test_a_probe_raises_the_estimate_to_what_it_delivered():
    est = BandwidthEstimator(1_000_000, now=0)
    run(est, Link(5_000_000), 800_000, 0, 3)
    est.on_probe(3_000_000, now=3)
    assert est.estimate_bps >= 3_000_000


def test_remb_only_receivers_use_remb_bounded_by_loss():
    est = BandwidthEstimator(2_000_000, now=0)
    est.on_remb(900_000, now=0)
    assert est.estimate_bps == 900_000
    est.on_receiver_loss(0.3, 800_000, now=1)  # heavy loss while sending 800 kbps
    assert est.estimate_bps < 800_000


def test_estimates_are_clamped():
    est = BandwidthEstimator(2_000_000, now=0)
    est.on_remb(2**70, now=0)
    assert est.remb_bps == MAX_BPS
    assert est.estimate_bps == 2_000_000  # still bounded by the loss-based rate
    est.on_remb(-1, now=0)
    assert est.estimate_bps == MIN_BPS
    est.on_remb(float("nan"), now=0)
    assert MIN_BPS <= est.estimate_bps <= MAX_BPS
    assert BandwidthEstimator(float("inf"), now=0).estimate_bps == MAX_BPS
