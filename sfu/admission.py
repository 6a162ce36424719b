"""Admission of new peers: handshake slots handed out first come, first served.

A join's ICE and DTLS cost the node CPU; too many at once and the peers it
already carries starve (late consent answers, late media). So at most
``allowed`` peers are in their handshake at once. A join beyond waits in a
FIFO queue and is woken when a slot frees (no polling); it is refused with
503 and a ``Retry-After`` when it has waited ``wait_s``, or at once when
the queue ahead is longer than the node can admit in ``wait_s`` at the rate
it completes handshakes (``allowed`` over the mean handshake time), so a
storm larger than capacity gets its answer now, not a timeout. The
Retry-After values handed out are spread at that rate, so the refused do not
all come back together.

Under CPU saturation (the event loop running late, `rtc.consent.LoopLag`)
``allowed`` halves each tick, down to one, and grows back by one a tick once
the loop keeps time: a busy node delays new joins and never drops the peers
it carries.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import time
from collections.abc import Callable

from .errors import Unavailable

__all__ = ["Admission", "Slot"]

logger = logging.getLogger(__name__)

INITIAL_HANDSHAKE_S = 0.1  # a handshake's expected duration until one is measured (60-80 ms on an idle node): a
# guess on the short side lets a first storm queue rather than be told to come back seconds later
HANDSHAKE_SMOOTHING = 0.2  # weight of the latest handshake in the running mean
MAX_RETRY_AFTER_S = 60
BUSY_LAG = 0.1  # seconds the loop ran late per second: fewer handshakes at once
CALM_LAG = 0.02  # below this the bound grows back


class Slot:
    """One admitted join's place among the handshakes; released once it connects, fails or closes (safe twice)."""

    def __init__(self, admission: Admission, started: float) -> None:
        self._admission = admission
        self.started = started
        self.released = False

    def release(self, connected: bool = False) -> None:
        if not self.released:
            self.released = True
            self._admission._release(self, connected)


class Admission:
    def __init__(self, limit: int, wait_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.allowed = limit  # the bound now: lower while the loop lags
        self.wait_s = wait_s
        self._clock = clock
        self.held = 0
        self._queue: collections.deque[asyncio.Future[Slot]] = collections.deque()
        self.handshake_s = INITIAL_HANDSHAKE_S
        self.connected = 0  # admitted joins that completed their handshake
        self.counts = {"waited": 0, "refused": 0}  # joins that waited for a slot, joins turned away (503)
        self._next_retry = 0.0  # when the latest refused join was told to come back

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def rate(self) -> float:
        """Handshakes the node completes a second at the current bound."""
        return self.allowed / self.handshake_s

    @property
    def queue_bound(self) -> int:
        """Joins that may wait: those the node can admit within ``wait_s``."""
        return max(1, math.floor(self.rate * self.wait_s))

    def check(self) -> None:
        """Refuse (503 with Retry-After) a join that would find the queue full: called before any work on its offer."""
        if (self.held >= self.allowed or self._queue) and len(self._queue) >= self.queue_bound:
            self._refuse("the queue of joins is full")

    async def enter(self) -> Slot:
        """A handshake slot: at once when one is free and nobody waits, else in turn; or 503 with Retry-After."""
        if self.held < self.allowed and not self._queue:
            return self._grant()
        self.check()
        turn: asyncio.Future[Slot] = asyncio.get_running_loop().create_future()
        self._queue.append(turn)
        self.counts["waited"] += 1
        try:
            await asyncio.wait_for(asyncio.shield(turn), self.wait_s)
        except TimeoutError:
            if not turn.done():  # a slot handed over in the same turn as the timeout is taken
                self._leave(turn)
                self._refuse("no handshake slot freed in time")
        except asyncio.CancelledError:  # the client went away
            if turn.done() and not turn.cancelled():
                turn.result().release()
            else:
                self._leave(turn)
            raise
        return turn.result()

    def adapt(self, lag_per_s: float) -> None:
        """Follow the loop's lag (seconds late per second of the last tick): fewer handshakes at once while it lags."""
        if lag_per_s > BUSY_LAG:
            self.allowed = max(1, self.allowed // 2)
        elif lag_per_s < CALM_LAG and self.allowed < self.limit:
            self.allowed += 1
            self._wake()

    def _grant(self) -> Slot:
        self.held += 1
        return Slot(self, self._clock())

    def _leave(self, turn: asyncio.Future[Slot]) -> None:
        turn.cancel()
        try:
            self._queue.remove(turn)
        except ValueError:
            pass

    def _refuse(self, why: str) -> None:
        self.counts["refused"] += 1
        now = self._clock()
        spacing = 1.0 / self.rate
        # after the joins queued now, and after every join refused before this one
        self._next_retry = max(self._next_retry, now + len(self._queue) * spacing) + spacing
        retry_after = min(MAX_RETRY_AFTER_S, max(1, math.ceil(self._next_retry - now)))
        logger.info("join deferred (%s): %d in their handshake (at most %d now), %d waiting; retry in %d s",
                    why, self.held, self.allowed, len(self._queue), retry_after)  # fmt: skip
        raise Unavailable(f"this node is busy connecting other peers ({why}); try again shortly",
                          headers={"Retry-After": str(retry_after)})  # fmt: skip

    def _release(self, slot: Slot, connected: bool) -> None:
        self.held -= 1
        if connected:
            self.connected += 1
            took = max(0.001, self._clock() - slot.started)
            self.handshake_s += HANDSHAKE_SMOOTHING * (took - self.handshake_s)
        self._wake()

    def _wake(self) -> None:
        """Hand free slots to the waiting joins, oldest first."""
        while self._queue and self.held < self.allowed:
            turn = self._queue.popleft()
            if not turn.done():
                turn.set_result(self._grant())
