"""ICE that keeps its peers on a busy machine: consent freshness (RFC 7675) and prompt answers.

aioice checks consent every ``CONSENT_INTERVAL`` (5 s, ±20 %) with a single
request that times out after 0.5 s, and closes the connection after
``CONSENT_FAILURES`` (6) misses in a row. On a loaded machine an answer that
is merely late (our loop or the peer's lagged, the loopback RTT rose to
600 ms) counts as a miss, and thirty seconds of that closes a healthy peer:
"Consent to send expired", and the endpoint rejoins into the same load.

Worse, asyncio reads one datagram per socket per loop turn. When a loaded
loop turns slowly, a peer's socket fills with seconds of media and a STUN
check waits behind it (or is dropped with it): the answer comes long after the
asker gave up, on every check, and every peer of the process loses consent
together some forty seconds after joining.

``tolerate_load()`` makes two process-wide changes:

- UDP sockets are read in batches (``rtc.udp_reader``: up to ``READ_BATCH``
  datagrams a turn), so a check is answered within a turn or two, and media
  keeps up too;
- ``aioice.ice.Connection.query_consent`` is replaced with a check that
  retransmits each request (an answer to any copy counts), so it waits about
  3.5 s for one instead of 0.5 s (a satellite commune's 600 ms round trip
  makes every answer late for aioice alone: its peer is cut off after 30 s;
  here the first copy's answer is in time), and that expires consent only after
  ``CONSENT_INTERVAL * CONSENT_FAILURES`` seconds without an answer, not
  counting the time this process's event loop was late (``LoopLag``): a
  stalled loop is our problem, not the peer's.

A peer whose machine is gone still loses consent about thirty seconds after
its last answer. The patch is process-wide, like aioice's own settings, and
is applied by whoever owns the process: the SFU node on start, the agent and
the fleet on start, the tests. ``consent_counters()`` gives this loop's
figures (for metrics).
"""

from __future__ import annotations

import asyncio
import logging
import random
import weakref
from dataclasses import dataclass

import aioice.ice
from aioice import stun

from rtc import udp_reader

__all__ = ["ConsentCounters", "LoopLag", "consent_counters", "tolerate_load"]

log = logging.getLogger(__name__)

RETRANSMISSIONS = 2  # copies at 0, 0.5 and 1.5 s; given up after 3.5 s
LAG_SAMPLE_S = 0.25  # how often the loop's punctuality is sampled while consent is checked
LAG_SLACK_S = 0.05  # lateness below this is ordinary scheduling, not lag


@dataclass
class ConsentCounters:
    checks: int = 0
    unanswered: int = 0  # checks that got no answer in time
    expired: int = 0  # connections closed for lost consent
    loop_lag_s: float = 0.0  # seconds the loop was late while consent was being checked


class LoopLag:
    """How late one event loop runs: total seconds its timers fired late, sampled while anyone needs it.

    The sampler runs only while at least one connection checks consent, so an
    idle process has no extra task.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.counters = ConsentCounters()
        self._users = 0
        self._task: asyncio.Task | None = None

    @property
    def total(self) -> float:
        return self.counters.loop_lag_s

    def acquire(self) -> None:
        self._users += 1
        if self._task is None or self._task.done():
            self._task = self.loop.create_task(self._sample(), name="consent-loop-lag")

    def release(self) -> None:
        self._users -= 1

    async def _sample(self) -> None:
        try:
            while self._users > 0:
                due = self.loop.time() + LAG_SAMPLE_S
                await asyncio.sleep(LAG_SAMPLE_S)
                late = self.loop.time() - due
                if late > LAG_SLACK_S:
                    self.counters.loop_lag_s += late
        except asyncio.CancelledError:
            pass
        finally:
            self._task = None


_lags: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopLag] = weakref.WeakKeyDictionary()


def _lag_of(loop: asyncio.AbstractEventLoop) -> LoopLag:
    lag = _lags.get(loop)
    if lag is None:
        lag = _lags[loop] = LoopLag(loop)
    return lag


def consent_counters() -> ConsentCounters:
    """The consent figures of the running loop."""
    return _lag_of(asyncio.get_running_loop()).counters


async def _query_consent(self: aioice.ice.Connection) -> None:
    """`Connection.query_consent`, tolerant of a lagging loop (see the module docstring)."""
    assert self.remote_password is not None
    loop = asyncio.get_running_loop()
    lag = _lag_of(loop)
    counters = lag.counters
    lag.acquire()
    try:
        fresh_at, lag_at_fresh = loop.time(), lag.total
        while True:
            # read at each turn: tests shorten the interval for a whole module
            interval, failures = aioice.ice.CONSENT_INTERVAL, aioice.ice.CONSENT_FAILURES
            await asyncio.sleep(interval * (0.8 + 0.4 * random.random()))
            for pair in list(self._nominated.values()):
                counters.checks += 1
                transport = getattr(pair.protocol, "transport", None)
                if transport is None or transport.is_closing():  # our socket is gone: nothing can answer
                    counters.unanswered += 1
                    continue
                try:
                    await pair.protocol.request(
                        self.build_request(pair, nominate=False),
                        pair.remote_addr,
                        integrity_key=self.remote_password.encode("utf8"),
                        retransmissions=RETRANSMISSIONS,
                    )
                    fresh_at, lag_at_fresh = loop.time(), lag.total
                except (stun.TransactionError, OSError):
                    counters.unanswered += 1
            silent = (loop.time() - fresh_at) - (lag.total - lag_at_fresh)
            if silent > interval * failures:
                counters.expired += 1
                log.warning("consent to send expired: no answer for %.1f s (%.1f s more while this loop lagged)",
                            silent, lag.total - lag_at_fresh)  # fmt: skip
                self._query_consent_task = None
                await self.close()
                return
    finally:
        lag.release()


def tolerate_load() -> None:
    """Batched UDP reads and the lag-tolerant consent check, for every peer of this process (safe twice)."""
    udp_reader.install()
    aioice.ice.Connection.query_consent = _query_consent  # type: ignore[method-assign]
