"""Bandwidth fit: which tier a subscriber receives.

Pure logic, no I/O: every method takes ``now`` (seconds on any monotonic
clock), so the tests drive it with a fake clock.

- Start: where `vcs.tiers.Ladder.start` puts the commune's downlink (the
  booking preview and the agents' schedules use the same fit); a link too
  thin even for the lowest tier still gets the lowest, and an unknown link
  starts at the highest tier.
- A tier costs its video bitrate plus the audio actually forwarded
  (``audio_kbps``, measured by the subscriber; the ladder's audio budget until
  then).
- Down once: an estimate (the send-side estimator's, or a REMB) below the
  current tier's cost moves straight to the best tier that fits it; loss at
  or above ``downgrade_loss`` in a receiver report moves to the tier that
  fits what got through (at least one down). After a downgrade, reports
  about packets sent before it or within ``DRAIN_S`` of it (``sent_at``) no
  longer move the tier: the queue of the old tier is still draining.
- Up only after a probe: after ``upgrade_hold_s`` without loss above
  ``upgrade_loss`` since the last change (``CLIMB_HOLD_S`` when that change
  was a step up a probe proved), ``tick`` asks for a probe
  (``probe``: the next tier's cost for a short window); ``probe_result``
  moves one tier up on success, and a failure backs off 15 s, 30 s, 60 s ...
  up to 5 minutes, for that tier (a downgrade meanwhile leaves the tier
  below free to probe for), forgotten when an estimate shows clear headroom. A probe
  that failed *near* its target (the link delivered at least ``NEAR_SHARE``
  of it) is tried again after ``NEAR_RETRY_S`` without backing off further:
  it overshot the link by little for under a second, and a link that narrow
  may widen again at any time (the step up must follow within 15 s). While
  a tier is backed off, a receiver whose feedback times each packet
  (transport-cc, ``bursts_measured``) is asked every ``SCOUT_EVERY_S``
  whether its link widened, from ``SCOUT_EVERY_S`` after the failure on
  and without the hold (the probe's own overshoot was no loss of the
  link's): a *scout* (``Probe.scout``), a burst at the target rate short
  enough to fit a narrow link's queue. A scout the link carried forgets the
  back-off, and the full probe follows at once; if that probe then fails,
  scouts wait for the back-off to end (a link that passes the burst but not
  the probe is not asked every few seconds). A REMB
  (a receiver's own estimate) below the next tier's cost times
  ``upgrade_headroom`` holds the probe back (hysteresis) while it is fresh
  (``ESTIMATE_TTL_S``).
- Never above the link: the cap (share of the downlink) is a hard limit.
- Video sent twice on long lossy links (``protected``): with a round trip
  of ``red_rtt_ms`` or more a NACK's repair comes too late to be shown, so
  once loss is seen (``PROTECT_LOSS``, within the last ``PROTECT_MEMORY_S``,
  in a receiver report or, before any repair, in transport-cc feedback:
  ``on_link_loss``, or a NACK) the subscriber gets its tier's repeated variant
  (``sfu.video_repeat``): no round trip needed. Its video then costs twice,
  so the fit moves to the best tier that fits protected (a sharper picture
  that freezes is worse than a softer one that does not); protection is
  taken only when the link has room for at least the lowest video tier sent
  twice, and dropped when the RTT falls under 80 % of the threshold or the
  room is gone. Reports under protection count only the packets lost in
  both copies (NACKs still come, sent before the copy arrives), hence the
  long memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vcs.tiers import TierSpec

from .config import SfuConfig

__all__ = ["LinkInfo", "Probe", "TierAllocation"]

BACKOFF_S = (15.0, 30.0, 60.0, 120.0, 240.0, 300.0)
CLEAR_HEADROOM = 1.5  # an estimate this far above the next tier forgets failed probes
MAX_KBPS = 100_000.0
ESTIMATE_TTL_S = 10.0
NEAR_SHARE = 0.8  # a failed probe that delivered this share of its target was near
NEAR_RETRY_S = 8.0
DRAIN_S = 0.5  # after a downgrade: packets sent this soon after it still met the old tier's queue
CLIMB_HOLD_S = 2.0  # after a probe carried a step up: the next probe comes this soon, not after the full hold
SCOUT_EVERY_S = 5.0  # while the next tier is backed off: how often a scout asks whether the link widened
PROTECT_LOSS = 0.01  # this much loss (a receiver report's, or transport-cc's before repair) shows a lossy link
PROTECT_MEMORY_S = 120.0  # loss seen this recently keeps video protected
PROTECT_RTT_BACK = 0.8  # protection ends under this share of the RTT threshold (hysteresis)


@dataclass(frozen=True)
class LinkInfo:
    """A commune's link profile, as the registry knows it."""

    downlink_kbps: int
    uplink_kbps: int
    rtt_ms: int = 0
    loss_pct: float = 0.0


@dataclass(frozen=True)
class Probe:
    """A step up waiting on the link to show it carries ``target_kbps``."""

    index: int  # the tier it would step up to
    target_kbps: float
    started: float
    scout: bool = False  # only a short burst: does the link carry the target now? (a pass forgets the back-off)


class TierAllocation:
    """The tier decision for one subscriber."""

    def __init__(self, config: SfuConfig, link: LinkInfo | None, now: float, max_tier: str | None = None) -> None:
        self._config = config
        self._ladder = ladder = config.ladder
        self._tiers = ladder.tiers
        # the best tier this subscriber may get (a meeting's media profile, or a client asking for less)
        self.top = ladder.index(max_tier)
        self.cap_kbps: float | None = None
        self.index = self.top
        if link is not None and link.downlink_kbps > 0:
            self.cap_kbps = link.downlink_kbps * ladder.vcs_share
            start = ladder.start(link.downlink_kbps, max_tier=max_tier).tier
            self.index = self._tiers.index(start) if start else len(self._tiers) - 1
        self.audio_kbps: float = ladder.audio_kbps
        self.estimate_kbps: float | None = None
        self._estimate_bounds = False  # the estimate is the receiver's word on the link (REMB), not ours
        self._estimate_at = now
        self.loss = 0.0
        self.rtt_ms: float | None = None
        self._last_change = now
        self._last_down = float("-inf")
        self._calm_since = now
        self.changes = 0
        self.probe: Probe | None = None
        self.probes = 0
        self._backoff: dict[int, tuple[int, float]] = {}  # tier index -> (failed probes in a row, next try)
        self.bursts_measured = False  # the receiver times each packet (transport-cc): scouts can be judged
        self.scouts = 0
        self._scout_at: dict[int, float] = {}  # tier index -> when the next scout may go
        self._scouted: set[int] = set()  # tiers whose back-off a scout forgot; their probe is under way
        self._climbing = False  # the last change was a step up a probe proved
        self.protected = False  # video sent twice (long lossy link): each video tier costs its bitrate twice
        self._loss_seen_at = -math.inf
        self._lowest_video = max((i for i, t in enumerate(self._tiers) if not t.audio_only), default=None)

    @property
    def failed_probes(self) -> int:
        """Failed probes in a row for the next tier up; they set its back-off."""
        return self._backoff.get(self.index - 1, (0, 0.0))[0]

    @property
    def upgrade_loss(self) -> float:
        return self._config.upgrade_loss

    @property
    def downgrade_loss(self) -> float:
        return self._config.downgrade_loss

    @property
    def tier(self) -> TierSpec:
        return self._tiers[self.index]

    @property
    def budget_kbps(self) -> float | None:
        values = [v for v in (self.cap_kbps, self.estimate_kbps) if v is not None]
        return min(values) if values else None

    def cost_kbps(self, index: int, protected: bool | None = None) -> float:
        """Tier ``index``'s cost; its video counts twice when protected (by default: as now)."""
        repeats = 2 if (self.protected if protected is None else protected) else 1
        return self._tiers[index].video_kbps * repeats + self.audio_kbps

    def _fit(self, budget_kbps: float) -> int:
        """The best tier within budget; the lowest when none is."""
        for index in range(self.top, len(self._tiers)):
            if self.cost_kbps(index) <= budget_kbps:
                return index
        return len(self._tiers) - 1

    def _move(self, index: int, now: float) -> TierSpec | None:
        index = max(self.top, min(index, len(self._tiers) - 1))
        if index == self.index:
            return None
        if index > self.index:
            self._last_down = now
        self._climbing = index < self.index
        self.index = index
        self.probe = None
        self._last_change = now
        self._calm_since = now
        self.changes += 1
        return self.tier

    def _stale(self, sent_at: float | None) -> bool:
        """A report about packets sent before the last downgrade: the old tier's queue draining."""
        return sent_at is not None and sent_at < self._last_down + DRAIN_S

    # feedback --------------------------------------------------------------------

    def on_estimate(self, kbps: float, now: float, *, sent_at: float | None = None, bounds: bool = False) -> TierSpec | None:
        """A bandwidth estimate; ``bounds``: the receiver's own (REMB), which also holds back probes."""
        kbps = 0.0 if math.isnan(kbps) else min(MAX_KBPS, max(0.0, kbps))  # NaN reads as nothing
        self.estimate_kbps = kbps
        self._estimate_bounds = bounds
        self._estimate_at = now
        if self.index > self.top and kbps >= self.cost_kbps(self.index - 1) * CLEAR_HEADROOM:
            self._backoff.pop(self.index - 1, None)
        changed = self._reprotect(now)  # a lower estimate may leave no room for video twice
        budget = self.budget_kbps
        if budget is not None and self.cost_kbps(self.index) > budget and not self._stale(sent_at):
            return self._move(max(self.index, self._fit(budget)), now) or changed
        return changed or self.tick(now)

    def on_remb(self, bitrate_bps: float, now: float) -> TierSpec | None:
        """A receiver's estimate of its available bandwidth."""
        return self.on_estimate(bitrate_bps / 1000.0, now, bounds=True)

    def on_receiver_report(
        self, fraction_lost: float, rtt_ms: float | None, now: float, *, sent_at: float | None = None, moves: bool = True
    ) -> TierSpec | None:
        """``fraction_lost`` in 0..1 from an RTCP receiver report about packets sent from ``sent_at`` on.

        ``moves=False``: the estimator sees each packet's fate (transport-cc) and judges the loss
        itself, by send time; the report then only holds back step-ups."""
        self.loss = fraction_lost = min(1.0, max(0.0, fraction_lost))
        if rtt_ms is not None:
            self.rtt_ms = rtt_ms
        if fraction_lost >= PROTECT_LOSS:
            self._loss_seen_at = now
        if fraction_lost >= self._config.upgrade_loss:
            self._calm_since = now
            self._climbing = False
        if moves and fraction_lost >= self._config.downgrade_loss and not self._stale(sent_at):
            got_through = self.cost_kbps(self.index) * (1 - fraction_lost / 2)
            return self._move(max(self.index + 1, self._fit(got_through)), now) or self._reprotect(now)
        return self.tick(now)

    # protection ------------------------------------------------------------------------

    def on_link_loss(self, fraction_lost: float, now: float) -> None:
        """Loss of packets as sent, before any repair (transport-cc feedback): a receiver
        that repairs by NACK reports after the repair, and a repair a round trip late is a stall."""
        if fraction_lost >= PROTECT_LOSS:
            self._loss_seen_at = now

    def on_nack(self, now: float) -> None:
        """The receiver asked for a video packet again: the link lost it. Under protection its
        reports count only what both copies lost, but it asks as soon as it sees the gap, before
        the copy fills it, so NACKs keep telling of a lossy link."""
        self._loss_seen_at = now

    def _wants_protection(self, now: float) -> bool:
        rtt, lowest = self.rtt_ms, self._lowest_video
        if rtt is None or lowest is None or now - self._loss_seen_at > PROTECT_MEMORY_S:
            return False
        if rtt < self._config.red_rtt_ms * (PROTECT_RTT_BACK if self.protected else 1.0):
            return False
        budget = self.budget_kbps
        return budget is None or self.cost_kbps(lowest, protected=True) <= budget

    def _reprotect(self, now: float) -> TierSpec | None:
        """Start or stop sending video twice; returns the tier (maybe the same) when that changed."""
        if self._wants_protection(now) == self.protected:
            return None
        self.protected = not self.protected
        self.probe = None  # priced the other way
        budget = self.budget_kbps
        if budget is not None and self.cost_kbps(self.index) > budget and self._move(self._fit(budget), now) is not None:
            return self.tier
        self._last_change = self._calm_since = now
        self.changes += 1
        return self.tier

    # stepping up ---------------------------------------------------------------------

    def tick(self, now: float) -> TierSpec | None:
        """Consider protection, and a probe for one step up; call periodically.
        Returns a tier only when it (or its protection) changes."""
        changed = self._reprotect(now)
        if changed is not None:
            return changed
        if self.index <= self.top or self.probe is not None:
            return None
        hold = min(CLIMB_HOLD_S, self._config.upgrade_hold_s) if self._climbing else self._config.upgrade_hold_s
        candidate = self.index - 1
        if now - self._last_change < hold or now - self._calm_since < hold:
            return None
        scout = now < self._backoff.get(candidate, (0, -math.inf))[1]
        if scout and not (self.bursts_measured and now >= self._scout_at.get(candidate, -math.inf)):
            return None
        cost = self.cost_kbps(candidate)
        if self.cap_kbps is not None and cost > self.cap_kbps:
            return None
        target = cost * self._config.upgrade_headroom
        fresh = now - self._estimate_at < ESTIMATE_TTL_S  # a receiver that stopped sending REMB no longer holds us back
        if self._estimate_bounds and fresh and self.estimate_kbps is not None and target > self.estimate_kbps:
            return None
        self.probe = Probe(candidate, target, now, scout=scout)
        if scout:
            self.scouts += 1
        else:
            self.probes += 1
        return None

    def probe_result(self, ok: bool, now: float, *, delivered_kbps: float | None = None) -> TierSpec | None:
        """The link did (or did not) carry the probe (``delivered_kbps`` of it when
        measured): step up, or back off."""
        probe = self.probe
        if probe is None:
            return None
        self.probe = None
        index = probe.index
        failures, next_try = self._backoff.get(index, (0, 0.0))
        if probe.scout:
            self._scout_at[index] = now + SCOUT_EVERY_S
            if ok:  # the link widened: the full probe now, its failures still counted should it fail
                self._backoff[index] = (failures, now)
                self._scouted.add(index)
            return None
        scouted = index in self._scouted
        self._scouted.discard(index)
        if ok:
            self._backoff.pop(index, None)
            self._scout_at.pop(index, None)
            return self._move(index, now)
        if delivered_kbps is not None and delivered_kbps >= NEAR_SHARE * probe.target_kbps:
            next_try = now + NEAR_RETRY_S
        else:
            failures, next_try = failures + 1, now + BACKOFF_S[min(failures, len(BACKOFF_S) - 1)]
        self._backoff[index] = (failures, next_try)
        # the probe's own overshoot is no loss of the link's (the back-off spaces the probes); a scout may come
        # soon, unless the burst passed and the probe did not: then none before the back-off ends
        self._scout_at[index] = next_try if scouted else now + SCOUT_EVERY_S
        return None
