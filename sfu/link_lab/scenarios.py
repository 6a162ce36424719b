"""The lab's four links, as schedules of downlink rates over a run.

Delay is given as a round trip and split evenly between the two directions;
loss applies to each direction (so RTCP is lost too, as on a real link).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FIBRE_KBPS", "SCENARIOS", "Scenario"]

FIBRE_KBPS = 100_000  # what a fibre profile in the registry says


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    profile_kbps: int  # the commune's link profile as the node looks it up
    link_kbps: int | None  # the real downlink (None: unshaped) outside the drop
    rtt_ms: float = 0.0
    loss: float = 0.0  # probability each way
    drop_kbps: int | None = None  # the link narrows to this mid-meeting ...
    drop_share: float = 0.0  # ... at this share of the run ...
    drop_seconds: float = 0.0  # ... for this long (scaled down in short runs)
    default_seconds: float = 120.0

    def schedule(self, seconds: float) -> list[tuple[float, int | None]]:
        """(seconds into the run, downlink kbps or None for unshaped), in order; the first at 0."""
        events: list[tuple[float, int | None]] = [(0.0, self.link_kbps)]
        if self.drop_kbps is not None:
            drop_at = round(seconds * self.drop_share, 1)
            lift_at = round(drop_at + min(self.drop_seconds, seconds * 0.5), 1)
            events += [(drop_at, self.drop_kbps), (lift_at, self.link_kbps)]
        return events

    def shaped_window(self, seconds: float) -> tuple[float, float, int] | None:
        """(from, to, kbps): the first stretch of the run on a shaped link (the drop, or all of it)."""
        events = self.schedule(seconds)
        for i, (at, kbps) in enumerate(events):
            if kbps is not None:
                end = events[i + 1][0] if i + 1 < len(events) else seconds
                return at, end, kbps
        return None

    def widens_at(self, seconds: float) -> float | None:
        """When the link widens again after the drop (scenario b), else None."""
        window = self.shaped_window(seconds)
        return window[1] if window and self.drop_kbps is not None and window[1] < seconds else None

    def link_at(self, t: float, seconds: float) -> int | None:
        kbps = None
        for at, value in self.schedule(seconds):
            if at <= t:
                kbps = value
        return kbps


SCENARIOS: dict[str, Scenario] = {
    s.key: s
    for s in (
        Scenario("a", "profile says fibre, the link is 1 Mbps", profile_kbps=FIBRE_KBPS, link_kbps=1000),
        Scenario(
            "b",
            "unshaped, 1 Mbps mid-meeting, lifted 60 s later",
            profile_kbps=FIBRE_KBPS,
            link_kbps=None,
            drop_kbps=1000,
            drop_share=2 / 15,
            drop_seconds=60.0,
            default_seconds=150.0,
        ),
        Scenario("c", "4G: 10 Mbps, 40 ms, 0.5 % loss", profile_kbps=10_000, link_kbps=10_000, rtt_ms=40, loss=0.005),
        Scenario("d", "satellite: 2 Mbps, 600 ms RTT, 2 % loss", profile_kbps=2000, link_kbps=2000, rtt_ms=600, loss=0.02),
    )
}
