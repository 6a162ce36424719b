"""One way for a test to wait: poll for the event, with a deadline scaled to this machine's speed.

A test never sleeps a fixed time before it asserts: it waits for the thing it
asserts (`eventually`). Deadlines are generous bounds, not the point of the
test, and they are multiplied by `SLOWDOWN`: how much slower this machine runs
Python right now than an idle two-core machine, measured once per session
(`VCS_TEST_SLOWDOWN` sets it instead, as `make test-under-load` does). Where a
deadline *is* the point (a fleet has joined by the start), it is scaled too:
the promise is kept on a machine as fast as the one it was made for.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import time
from collections.abc import Callable
from typing import Any

__all__ = ["SLOWDOWN", "eventually", "scaled", "stays"]

# seconds an idle core of the reference machine takes for `_work()`
_REFERENCE_SECONDS = 0.010
_MAX_SLOWDOWN = 8.0


def _work() -> None:
    total = 0
    for i in range(100_000):
        total += i * i % 7


def _measure() -> float:
    """The median of a few timings: one scheduling hiccup does not make the machine look slow."""
    timings = []
    for _ in range(7):
        started = time.perf_counter()
        _work()
        timings.append(time.perf_counter() - started)
        time.sleep(0.005)  # let a busy machine's other processes have their turn, as the tests will
    return sorted(timings)[len(timings) // 2]


def _slowdown() -> float:
    if configured := os.environ.get("VCS_TEST_SLOWDOWN"):
        try:
            return max(1.0, float(configured))
        except ValueError:
            raise SystemExit(f"VCS_TEST_SLOWDOWN must be a number (a factor such as 3), got {configured!r}") from None
    return min(_MAX_SLOWDOWN, max(1.0, _measure() / _REFERENCE_SECONDS))


SLOWDOWN = _slowdown()


def scaled(seconds: float) -> float:
    """A deadline of `seconds` on the reference machine, on this one."""
    return seconds * SLOWDOWN


async def eventually(predicate: Callable[[], Any], timeout: float = 10.0, what: str | Callable[[], str] = "the condition",
                     interval: float = 0.05) -> Any:
    """Poll `predicate` (plain or async) until it returns something truthy; returns that value.

    Fails with `what` (or what it returns, when it is callable) and the last
    value seen when `scaled(timeout)` passes first.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + scaled(timeout)
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            what = what() if callable(what) else what
            raise AssertionError(f"{what}: not within {scaled(timeout):.1f} s (slowdown {SLOWDOWN:.1f}); last seen {value!r}")
        await asyncio.sleep(interval)


async def stays(predicate: Callable[[], Any], seconds: float, what: str = "the condition", interval: float = 0.05) -> None:
    """Check that `predicate` holds throughout `seconds`: for what must *not* happen (no rejoin, no resend).

    Not scaled: the window may be bounded by a timer of the code under test
    (an upgrade hold); pass `scaled(...)` where a longer watch is harmless.
    """
    loop = asyncio.get_running_loop()
    until = loop.time() + seconds
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        assert value, f"{what}: stopped holding (last seen {value!r})"
        if loop.time() > until:
            return
        await asyncio.sleep(interval)
