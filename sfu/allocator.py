"""Bandwidth fit: which tier a subscriber receives.

Pure logic, no I/O: every method takes ``now`` (seconds on any monotonic
clock), so the tests drive it with a fake clock.

- Start: where `vcs.tiers.Ladder.start` puts the commune's downlink (the
  booking preview and the agents' schedules use the same fit); a link too
  thin even for the lowest tier still gets the lowest, and an unknown link
  starts at the highest tier.
- Down fast: a REMB estimate below the current tier's cost moves straight to
  the highest tier that fits it; loss at or above ``downgrade_loss`` in a
  receiver report moves one tier down at once.
- Up slowly, with hysteresis: one tier up only after ``upgrade_hold_s`` with
  loss under ``upgrade_loss`` since the last change or the last lossy report,
  and only if the next tier's cost times ``upgrade_headroom`` fits the latest
  REMB estimate.
- Never above the link: the cap (share of the downlink) is a hard limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from vcs.tiers import TierSpec

from .config import SfuConfig

__all__ = ["LinkInfo", "TierAllocation"]


@dataclass(frozen=True)
class LinkInfo:
    """A commune's link profile, as the registry knows it."""

    downlink_kbps: int
    uplink_kbps: int
    rtt_ms: int = 0
    loss_pct: float = 0.0


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
        self.estimate_kbps: float | None = None
        self.loss = 0.0
        self.rtt_ms: float | None = None
        self._last_change = now
        self._calm_since = now
        self.changes = 0

    @property
    def tier(self) -> TierSpec:
        return self._tiers[self.index]

    @property
    def budget_kbps(self) -> float | None:
        values = [v for v in (self.cap_kbps, self.estimate_kbps) if v is not None]
        return min(values) if values else None

    def _cost(self, index: int) -> int:
        return self._ladder.cost_kbps(self._tiers[index])

    def _fit(self, budget_kbps: float) -> int:
        """The best tier within budget; the lowest when none is."""
        index = self._ladder.best_within(budget_kbps, top=self.top)
        return len(self._tiers) - 1 if index is None else index

    def _move(self, index: int, now: float) -> TierSpec | None:
        index = max(self.top, min(index, len(self._tiers) - 1))
        if index == self.index:
            return None
        self.index = index
        self._last_change = now
        self._calm_since = now
        self.changes += 1
        return self.tier

    def on_remb(self, bitrate_bps: int, now: float) -> TierSpec | None:
        """A receiver's estimate of its available bandwidth."""
        self.estimate_kbps = max(0.0, bitrate_bps / 1000.0)
        budget = self.budget_kbps
        if budget is not None and self._cost(self.index) > budget:
            return self._move(max(self.index, self._fit(budget)), now)
        return self.tick(now)

    def on_receiver_report(self, fraction_lost: float, rtt_ms: float | None, now: float) -> TierSpec | None:
        """``fraction_lost`` in 0..1 from an RTCP receiver report."""
        self.loss = fraction_lost
        if rtt_ms is not None:
            self.rtt_ms = rtt_ms
        if fraction_lost >= self._config.upgrade_loss:
            self._calm_since = now
        if fraction_lost >= self._config.downgrade_loss:
            return self._move(self.index + 1, now)
        return self.tick(now)

    def tick(self, now: float) -> TierSpec | None:
        """Consider one step up; call periodically."""
        if self.index <= self.top:
            return None
        hold = self._config.upgrade_hold_s
        if now - self._last_change < hold or now - self._calm_since < hold:
            return None
        candidate = self.index - 1
        cost = self._cost(candidate)
        if self.cap_kbps is not None and cost > self.cap_kbps:
            return None
        if self.estimate_kbps is not None and cost * self._config.upgrade_headroom > self.estimate_kbps:
            return None
        return self._move(candidate, now)
