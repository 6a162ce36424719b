"""A node's bitrate in and out, from byte counters sampled at each heartbeat.

Nothing is counted per packet for this: each peer already keeps a running byte
count (aiortc's DTLS transport for what comes in, the downtracks for what the
fast path sends), so a sample sums those and divides the growth by the time
since the last sample. A peer that closed between samples takes its last
bytes with it; a counter that went back (a relay's upstream re-subscribed)
counts from its new value.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

__all__ = ["Traffic"]


class Traffic:
    def __init__(self) -> None:
        self._marks: dict[Hashable, tuple[int, int]] = {}
        self._at: float | None = None
        self.in_kbps = 0
        self.out_kbps = 0

    def sample(self, counters: Mapping[Hashable, tuple[int, int]], now: float) -> None:
        """`counters`: each live peer's (bytes in, bytes out) so far; `now`: a monotonic time."""
        grown_in = grown_out = 0
        for key, (rx, tx) in counters.items():
            last_rx, last_tx = self._marks.get(key, (0, 0))
            grown_in += rx - last_rx if rx >= last_rx else rx
            grown_out += tx - last_tx if tx >= last_tx else tx
        if self._at is not None and now > self._at:
            seconds = now - self._at
            self.in_kbps = round(grown_in * 8 / seconds / 1000)
            self.out_kbps = round(grown_out * 8 / seconds / 1000)
        self._marks = dict(counters)
        self._at = now
