"""Send-side bandwidth estimation for one subscriber.

Pure and clock-injected: every call takes ``now`` (seconds, monotonic) and
the tests drive it with synthetic feedback. Modelled on libwebrtc's GoogCC
(``trendline_estimator.cc``, ``aimd_rate_control.cc``,
``loss_based_bandwidth_estimation.cc``), small enough to read in one go:

- delay-based: packets are grouped by send time (5 ms bursts); each group's
  inter-arrival delay variation (arrival delta minus send delta) is
  accumulated, smoothed, and a least-squares slope over the last 20 groups
  is the delay trend. The trend, scaled, against an adaptive threshold says
  *overuse* (the queue is growing), *underuse* or *normal*. Overuse counts
  only while the link is behind: the packets of the last half second arrived
  much slower than they were sent, or even the least of their delays is well
  above the least of the last 10 s. A queue that grows does either; delay that
  only jitters (a busy receiver, a loaded host) does neither, and with whole
  tiers one false cut costs a tier. AIMD: on overuse the rate drops to 85% of the rate the receiver acknowledged; otherwise it
  grows 8% a second, never beyond 1.5 times what was acknowledged (a probe
  is how it learns more);
- loss-based: over the last second of reported packets (since the last cut),
  loss above 10% cuts the rate to ``acknowledged * (1 - loss / 2)``, under 2%
  lets it grow;
- REMB-only receivers: their REMB, bounded by the loss-based rate; receivers
  with neither: the loss of their receiver reports.

The estimate is clamped to ``[MIN_BPS, MAX_BPS]`` whatever the input.
"""

from __future__ import annotations

import math
from collections import deque

__all__ = ["MAX_BPS", "MIN_BPS", "BandwidthEstimator", "TrendlineDetector"]

MIN_BPS = 30_000
MAX_BPS = 100_000_000
BURST_S = 0.005
WINDOW = 20
SMOOTHING = 0.9
THRESHOLD_GAIN = 4.0
K_UP = 0.0087
K_DOWN = 0.039
OVERUSE_TIME_S = 0.010
DECREASE = 0.85
BEHIND = 0.8  # a link delivering less than this share of what was sent is behind
STANDING_S = 0.04  # ... and so is one whose delay stayed this much above its least for half a second
BASE_S = 10  # the least delay is kept for this many seconds
INCREASE_PER_S = 1.08
ACKED_WINDOW_S = 0.5
LOSS_WINDOW_S = 1.0
LOSS_HIGH = 0.10
LOSS_LOW = 0.02

NORMAL, OVERUSE, UNDERUSE = "normal", "overuse", "underuse"


def clamp(bps: float) -> float:
    if not math.isfinite(bps):
        return MAX_BPS if bps > 0 else MIN_BPS
    return min(MAX_BPS, max(MIN_BPS, bps))


class TrendlineDetector:
    """Delay trend of packet groups and the overuse decision on it."""

    def __init__(self) -> None:
        self.state = NORMAL
        self.threshold_ms = 12.5
        self._group: list[float] | None = None  # [first send, last send, last arrival]
        self._prev: tuple[float, float] | None = None  # previous group's (send, arrival)
        self._first_arrival: float | None = None
        self._accumulated = 0.0
        self._smoothed = 0.0
        self._points: deque[tuple[float, float]] = deque(maxlen=WINDOW)
        self._deltas = 0
        self._trend = 0.0
        self._previous_trend = 0.0
        self._over_s = 0.0
        self._over_count = 0
        self._last_update: float | None = None

    def packet(self, sent: float, arrival: float) -> None:
        """One received packet, in send order."""
        group = self._group
        if group is None:
            self._group = [sent, sent, arrival]
            return
        if sent - group[0] <= BURST_S or arrival < group[2]:
            group[1] = max(group[1], sent)
            group[2] = max(group[2], arrival)
            return
        self._complete(group[1], group[2])
        self._group = [sent, sent, arrival]

    def _complete(self, sent: float, arrival: float) -> None:
        prev = self._prev
        self._prev = (sent, arrival)
        if prev is None:
            self._first_arrival = arrival
            return
        send_delta = sent - prev[0]
        arrival_delta = arrival - prev[1]
        if send_delta < 0 or arrival_delta > 3.0:  # reordered, or a gap too long to mean anything
            return
        variation_ms = (arrival_delta - send_delta) * 1000
        self._deltas = min(self._deltas + 1, 1000)
        self._accumulated += variation_ms
        self._smoothed = SMOOTHING * self._smoothed + (1 - SMOOTHING) * self._accumulated
        self._points.append(((arrival - (self._first_arrival or arrival)) * 1000, self._smoothed))
        if len(self._points) == WINDOW:
            self._trend = _slope(self._points)
        self._detect(send_delta * 1000, arrival)

    def _detect(self, send_delta_ms: float, now: float) -> None:
        modified = min(self._deltas, 60) * self._trend * THRESHOLD_GAIN
        previous_trend = self._previous_trend
        if modified > self.threshold_ms:
            self._over_s += send_delta_ms / 1000
            self._over_count += 1
            if self._over_s > OVERUSE_TIME_S and self._over_count > 1 and self._trend >= previous_trend:
                self._over_s = 0.0
                self._over_count = 0
                self.state = OVERUSE
        elif modified < -self.threshold_ms:
            self._over_s = 0.0
            self._over_count = 0
            self.state = UNDERUSE
        else:
            self._over_s = 0.0
            self._over_count = 0
            self.state = NORMAL
        self._previous_trend = self._trend
        self._adapt(modified, now)

    def _adapt(self, modified: float, now: float) -> None:
        last = self._last_update
        self._last_update = now
        if last is None or abs(modified) > self.threshold_ms + 15:
            return  # a spike says nothing about the threshold
        k = K_DOWN if abs(modified) < self.threshold_ms else K_UP
        elapsed_ms = min((now - last) * 1000, 100.0)
        self.threshold_ms += k * (abs(modified) - self.threshold_ms) * elapsed_ms
        self.threshold_ms = min(600.0, max(6.0, self.threshold_ms))


def _slope(points) -> float:
    """Least-squares slope of ``points``, in one pass: it runs for each packet group of every subscriber."""
    sx = sy = sxx = sxy = 0.0
    for x, y in points:
        sx += x
        sy += y
        sxx += x * x
        sxy += x * y
    n = len(points)
    den = n * sxx - sx * sx
    return (n * sxy - sx * sy) / den if den else 0.0


class BandwidthEstimator:
    """The estimate for one subscriber's downlink, from whatever feedback it sends."""

    def __init__(self, start_bps: float, now: float) -> None:
        self.detector = TrendlineDetector()
        self.delay_bps = clamp(start_bps)
        self.loss_bps = clamp(start_bps)
        self.remb_bps: float | None = None
        self.acked_bps: float | None = None
        self.loss = 0.0
        self.overuses = 0
        self.last_decrease: float | None = None
        self.decreased_for: float | None = None  # send time of the newest packet behind the last decrease
        self.sent_bps: float | None = None  # the same packets' rate by their send times
        self._acked: deque[tuple[float, int, float]] = deque()  # (arrival, size, sent)
        self._acked_sent: deque[float] = deque()  # their send times, for min and max at C speed
        self._acked_bytes = 0  # their sizes' sum
        self._base: deque[tuple[int, float]] = deque()  # (second of arrival, least one-way delay in it)
        self._losses: deque[tuple[float, int, int]] = deque()  # (now, lost, reported)
        self._last_increase = now
        self._last_loss_update = now
        self.rtt_s = 0.1

    @property
    def estimate_bps(self) -> float:
        if self.remb_bps is not None:  # a REMB-only receiver: its own estimate, bounded by loss
            return clamp(min(self.remb_bps, self.loss_bps))
        return clamp(min(self.delay_bps, self.loss_bps))

    # transport-cc ----------------------------------------------------------

    def on_packets(self, results: list[tuple[float, int, float | None]], now: float) -> None:
        """One feedback packet's results, each (send time, size, arrival or None), in sequence order."""
        lost = 0
        newest_sent = None
        acked = self._acked
        acked_sent = self._acked_sent
        for sent, size, arrival in results:
            if arrival is None:
                lost += 1
                continue
            self.detector.packet(sent, arrival)
            acked.append((arrival, size, sent))
            acked_sent.append(sent)
            self._acked_bytes += size
            self._note_delay(arrival, arrival - sent)
            newest_sent = sent if newest_sent is None else max(newest_sent, sent)
        if acked:
            latest = acked[-1][0]
            while acked and (acked[0][0] < latest - ACKED_WINDOW_S or acked[0][0] > latest + 1.0):
                self._acked_bytes -= acked.popleft()[1]
                acked_sent.popleft()
            span = acked[-1][0] - acked[0][0]
            if span >= 0.1:
                bits = self._acked_bytes * 8
                self.acked_bps = bits / span
                sent_span = max(acked_sent) - min(acked_sent)
                self.sent_bps = bits / sent_span if sent_span >= 0.1 else None
        self._losses.append((now, lost, len(results)))
        self._update_delay(now, newest_sent)
        self._update_loss(now, newest_sent)

    def _update_delay(self, now: float, newest_sent: float | None) -> None:
        state = self.detector.state
        acked = self.acked_bps
        if state == OVERUSE and self._behind():
            if self.last_decrease is None or now - self.last_decrease > max(0.2, self.rtt_s):
                base = acked if acked is not None else self.delay_bps
                self.delay_bps = clamp(min(self.delay_bps, DECREASE * base))
                self._decreased(now, newest_sent)
                self.overuses += 1
        elif state == NORMAL:
            self._grow("delay_bps", now)
        self._last_increase = now

    def _note_delay(self, arrival: float, delay: float) -> None:
        second = int(arrival)
        base = self._base
        if base and base[-1][0] == second:
            if delay < base[-1][1]:
                base[-1] = (second, delay)
        elif not base or second > base[-1][0]:
            base.append((second, delay))
        while base and base[0][0] <= second - BASE_S:
            base.popleft()

    def _behind(self) -> bool:
        """Is a queue growing on the link? It delivers less than was sent, or even the
        least delay of the last half second is well above the link's least. Delay that
        only jitters (a busy receiver or host) delivers all that was sent, and some of
        its packets still arrive on time."""
        acked = self._acked
        if self.acked_bps is None or self.sent_bps is None or not self._base:
            return True
        if self.acked_bps < BEHIND * self.sent_bps:
            return True
        recent = min(arrival - sent for arrival, _, sent in acked)
        return recent - min(d for _, d in self._base) > STANDING_S

    def _grow(self, name: str, now: float) -> None:
        elapsed = min(1.0, max(0.0, now - self._last_increase))
        rate = getattr(self, name) * INCREASE_PER_S**elapsed
        if self.acked_bps is not None:
            rate = min(rate, max(getattr(self, name), 1.5 * self.acked_bps + 10_000))
        setattr(self, name, clamp(rate))

    def _decreased(self, now: float, newest_sent: float | None) -> None:
        self.last_decrease = now
        if newest_sent is not None:
            self.decreased_for = newest_sent
        # the loss that caused this cut is spent: judge what is reported from here on afresh
        self._losses.clear()

    def _update_loss(self, now: float, newest_sent: float | None) -> None:
        losses = self._losses
        while losses and losses[0][0] < now - LOSS_WINDOW_S:
            losses.popleft()
        reported = sum(r for _, _, r in losses)
        if reported < 20:
            return
        self.loss = sum(lost for _, lost, _ in losses) / reported
        self._loss_step(now, newest_sent)

    def _loss_step(self, now: float, newest_sent: float | None) -> None:
        elapsed = now - self._last_loss_update
        if self.loss > LOSS_HIGH:
            if elapsed >= max(0.3, self.rtt_s):
                base = self.acked_bps if self.acked_bps is not None else self.loss_bps
                self.loss_bps = clamp(min(self.loss_bps, base * (1 - self.loss / 2)))
                self._last_loss_update = now
                self._decreased(now, newest_sent)
        elif self.loss < LOSS_LOW:
            saved = self._last_increase
            self._last_increase = self._last_loss_update
            self._grow("loss_bps", now)
            self._last_increase = saved
            self._last_loss_update = now
        else:
            self._last_loss_update = now

    # other feedback ----------------------------------------------------------

    def on_remb(self, bitrate_bps: float, now: float) -> None:
        self.remb_bps = clamp(bitrate_bps)

    def on_receiver_loss(self, fraction_lost: float, sent_bps: float, now: float) -> None:
        """A receiver report's loss, for receivers without transport-cc; ``sent_bps`` is what we sent it."""
        self.loss = min(1.0, max(0.0, fraction_lost))
        if sent_bps > 0:
            self.acked_bps = sent_bps * (1 - self.loss)
        self._loss_step(now, None)

    def on_probe(self, delivered_bps: float, now: float) -> None:
        """A probe got ``delivered_bps`` through: the rates may start from there."""
        self.delay_bps = clamp(max(self.delay_bps, delivered_bps))
        self.loss_bps = clamp(max(self.loss_bps, delivered_bps))
        self._last_increase = now
