"""The lab's figures, as pure functions of what was sampled once a second.

``NodeSample``: what the node says about the subscriber (its tier and the
bitrate it sends, from ``GET /sfu/rooms/{room}``). ``ReceiverSample``: the
receiver's own counters (decoded frames, frozen seconds so far, audio
packets expected and never received, and, where the receiver says, audio
samples played and concealed). `FreezeMeter` counts frozen time
the way Chromium's ``totalFreezesDuration`` does, so aiortc and Chromium
receivers are measured alike.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from .scenarios import Scenario

__all__ = ["Figures", "FreezeMeter", "NodeSample", "ReceiverSample", "compute_figures"]

FIT_STEADY_S = 3  # fitted: this many consecutive seconds within the link


@dataclass(frozen=True)
class NodeSample:
    t: float  # seconds into the run
    tier: str | None
    bitrate_bps: float
    repeat: bool = False  # the tier's video sent twice (a long lossy link)


@dataclass(frozen=True)
class ReceiverSample:
    t: float
    frames: int  # video frames decoded so far
    frozen_s: float  # frozen seconds so far
    audio_expected: int  # audio packets the sender sent so far (from sequence numbers)
    audio_lost: int  # of those, never received (a packet RED rebuilt is still one never received)
    height: int = 0  # of the last decoded frame
    # audio as played (Chromium's getStats): samples played, and of those concealed (made up for missing sound)
    audio_samples: int | None = None
    audio_concealed: int | None = None


class FreezeMeter:
    """Frozen time from decoded-frame arrival times: a gap longer than
    max(3 x the mean gap, the mean gap + 150 ms) counts whole, as in Chromium."""

    def __init__(self, window: int = 30) -> None:
        self._gaps: deque[float] = deque(maxlen=window)
        self._last: float | None = None
        self.frozen_s = 0.0
        self.freezes = 0

    def _threshold(self) -> float:
        mean = sum(self._gaps) / len(self._gaps) if self._gaps else 1 / 30
        return max(3 * mean, mean + 0.150)

    def frame(self, now: float) -> None:
        if self._last is not None:
            gap = now - self._last
            if gap > self._threshold():
                self.frozen_s += gap
                self.freezes += 1
            else:
                self._gaps.append(gap)
        self._last = now

    def frozen_until(self, now: float) -> float:
        """Frozen seconds so far, the freeze still going on at ``now`` included."""
        if self._last is None:
            return 0.0
        gap = now - self._last
        return self.frozen_s + (gap if gap > self._threshold() else 0.0)


@dataclass(frozen=True)
class Figures:
    fit_s: float | None  # seconds from the start of the shaped stretch until the node keeps within it
    above_s_per_min: float | None  # seconds per minute above the link (bytes sent, or the tier's cost) after fitting
    top_s: float | None  # seconds from the link widening to the top tier again
    frozen_s_per_min: float
    audio_loss_pct: float  # audio packets never received, from sequence numbers
    audio_only_s_per_min: float = 0.0  # on the audio-only tier: no picture at all, though not a freeze
    frozen_before_drop_s_per_min: float | None = None  # on the unshaped link before the drop: what the machine itself costs
    never_fit: bool = False
    never_top: bool = False
    tiers: tuple[str, ...] = ()  # tiers the node sent, in order of first use
    # audio as heard: concealed samples of those played (None: the receiver does not say)
    audio_concealed_pct: float | None = None
    repeat_s_per_min: float = 0.0  # seconds per minute the video was sent twice

    @property
    def audio_after_repair_pct(self) -> float:
        """Audio lost as the listener hears it: concealed samples when the receiver counts them,
        else packets never received (repeated audio carries the same sequence number, so those count it)."""
        return self.audio_loss_pct if self.audio_concealed_pct is None else self.audio_concealed_pct

    def lines(self, scenario: Scenario, seconds: float) -> list[str]:
        def value(x: float | None, never: bool, unit: str = "s") -> str:
            if never:
                return f"never (> {seconds:.0f} s)" if unit == "s" else "never"
            return "n/a" if x is None else f"{x:.1f} {unit}"

        return [
            f"seconds to fit after a drop:            {value(self.fit_s, self.never_fit)}",
            f"seconds/min above the link after fit:   {value(self.above_s_per_min, False, 's/min')}",
            f"seconds to top tier after widening:     {value(self.top_s, self.never_top)}",
            f"frozen seconds per minute:              {self.frozen_s_per_min:.1f} s/min"
            + ("" if self.frozen_before_drop_s_per_min is None else f" ({self.frozen_before_drop_s_per_min:.1f} before the drop)"),
            f"audio only (no video sent):             {self.audio_only_s_per_min:.1f} s/min",
            f"video sent twice:                       {self.repeat_s_per_min:.1f} s/min",
            f"audio loss after repair:                {self.audio_after_repair_pct:.2f} %"
            + (" (packets never received)" if self.audio_concealed_pct is None else " (samples concealed)"),
            f"audio packets never received:           {self.audio_loss_pct:.2f} %"
            + ("" if self.audio_concealed_pct is None else " (before repair: a packet RED rebuilt counts)"),
            f"tier changes:                           {max(0, len(self.tiers) - 1)} ({_tier_path(self.tiers)})",
        ]


def _above(sample: NodeSample, kbps: int, costs: Mapping[str, float]) -> bool:
    """Whether the node sent more than the link carries in this second, or was on a tier that costs more.

    The tier counts too: a tier encoder may undershoot its bitrate for a while
    on a calm picture, and the next movement then bursts into the link.
    """
    return sample.bitrate_bps > kbps * 1000 or costs.get(sample.tier or "", 0.0) > kbps


def _fit_time(node: list[NodeSample], start: float, end: float, kbps: int, costs: Mapping[str, float]) -> float | None:
    """The first sample time in [start, end) from which FIT_STEADY_S samples in a row are within ``kbps``."""
    window = [s for s in node if start <= s.t < end]
    for i in range(len(window)):
        run = window[i : i + FIT_STEADY_S]
        if len(run) == FIT_STEADY_S and not any(_above(s, kbps, costs) for s in run):
            return window[i].t
    return None


def compute_figures(
    scenario: Scenario,
    seconds: float,
    node: list[NodeSample],
    receiver: list[ReceiverSample],
    top_tier: str,
    costs: Mapping[str, float],
    audio_tier: str | None = None,
) -> Figures:
    """``costs``: each tier's cost in kbps (video and audio, `vcs.tiers.Ladder.cost_kbps`);
    ``audio_tier``: the name of the ladder's audio-only tier."""
    fit_s = above = top_s = None
    never_fit = never_top = False
    window = scenario.shaped_window(seconds)
    if window is not None:
        start, end, kbps = window
        fitted_at = _fit_time(node, start, end, kbps, costs)
        if fitted_at is None:
            never_fit = True
        else:
            fit_s = fitted_at - start
            after = [s for s in node if fitted_at <= s.t < end]
            span = (after[-1].t - fitted_at + 1) if after else 0
            if span > 0:
                above = sum(1 for s in after if _above(s, kbps, costs)) * 60 / span
    widens = scenario.widens_at(seconds)
    if widens is not None:
        at = next((s.t for s in node if s.t >= widens and s.tier == top_tier), None)
        never_top = at is None
        top_s = None if at is None else at - widens
    frozen = audio = 0.0
    frozen_before = concealed = None
    if len(receiver) >= 2:
        first, last = receiver[0], receiver[-1]
        frozen = _frozen_per_min(first, last)
        if window is not None and window[0] > 0:
            before = [s for s in receiver if s.t <= window[0]]
            frozen_before = _frozen_per_min(before[0], before[-1]) if len(before) >= 2 else None
        expected = last.audio_expected - first.audio_expected
        audio = 100 * max(0, last.audio_lost - first.audio_lost) / expected if expected > 0 else 0.0
        concealed = _concealed_pct(first, last)
    tiers: list[str] = []
    for s in node:
        if s.tier and s.tier not in tiers[-1:]:
            tiers.append(s.tier)
    audio_only = repeat = 0.0
    if len(node) >= 2:
        span = node[-1].t - node[0].t + 1
        if audio_tier is not None:
            audio_only = sum(1 for s in node if s.tier == audio_tier) * 60 / span
        repeat = sum(1 for s in node if s.repeat) * 60 / span
    return Figures(
        fit_s, above, top_s, frozen, audio, audio_only, frozen_before, never_fit, never_top, tuple(tiers), concealed, repeat
    )


def _concealed_pct(first: ReceiverSample, last: ReceiverSample) -> float | None:
    if None in (first.audio_samples, first.audio_concealed, last.audio_samples, last.audio_concealed):
        return None
    played = last.audio_samples - first.audio_samples  # type: ignore[operator]
    made_up = last.audio_concealed - first.audio_concealed  # type: ignore[operator]
    return 100 * max(0, made_up) / played if played > 0 else None


def _frozen_per_min(first: ReceiverSample, last: ReceiverSample) -> float:
    span = last.t - first.t
    return (last.frozen_s - first.frozen_s) * 60 / span if span > 0 else 0.0


def _tier_path(tiers: tuple[str, ...], most: int = 12) -> str:
    if not tiers:
        return "none"
    shown = " -> ".join(tiers[:most])
    return shown + (" -> ..." if len(tiers) > most else "")
