"""aiortc beside Locust's gevent: one asyncio loop in a native thread, results marshalled back to greenlets.

Locust monkey-patches the process (sockets, selectors, threading) before any
locustfile runs, and aiortc needs asyncio. What works, measured here:

- The loop runs in a real OS thread started with the *original*
  `_thread.start_new_thread` (`gevent.monkey.get_original`), so it never
  competes with Locust's greenlets for the main hub.
- Inside that thread `asyncio.new_event_loop()` picks gevent's selector
  (selectors is patched), which runs that thread's own gevent hub while the
  loop waits. That matters: aiortc and `rtc.synthetic_media` start helper
  threads through the patched `threading`, which become greenlets of this
  thread's hub and so run whenever the loop idles. A loop on the original
  epoll selector starves them (an encoder that never runs, a decoder `join()`
  that blocks the loop).
- Sockets are gevent's socket objects, but asyncio keeps them non-blocking
  and only touches them when the selector reports them ready, so they act as
  plain sockets (one extra Python call per datagram); nothing in the media
  path ever waits inside gevent.
- Everything that aiortc imports is imported in the main thread first (this
  module imports it): an import inside the thread can spawn a subprocess
  (`ctypes.util.find_library`), and gevent watches children only from the
  main thread's loop.
- Results go back through a gevent `async_` watcher, the one hub primitive
  that other threads may trigger: the loop thread appends (result, outcome)
  to a deque and calls `send()`; the main hub drains the deque and sets each
  greenlet's `AsyncResult`. Locust events are fired only from greenlets.

`MediaLoop.call(coroutine, timeout)` blocks the calling greenlet (not the
process) until the coroutine finishes in the loop thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Coroutine, Sequence
from typing import Any

# imported here, in the main thread, for the reason given above
import aiortc  # noqa: F401
import gevent
import httpx
from gevent import monkey
from gevent.event import AsyncResult

from rtc import ice, rtp_stats, synthetic_media, whip_client  # noqa: F401
from rtc.consent import tolerate_load

__all__ = ["MediaLoop"]

log = logging.getLogger(__name__)

START_TIMEOUT = 10.0


def _original_start_new_thread():  # type: ignore[no-untyped-def]
    if monkey.is_module_patched("threading"):
        return monkey.get_original("_thread", "start_new_thread")
    import _thread

    return _thread.start_new_thread


class MediaLoop:
    def __init__(self, *, ice_addresses: Sequence[str] = ("127.0.0.1",)) -> None:
        self.ice_addresses = tuple(ice_addresses)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.http: httpx.AsyncClient | None = None
        self._outcomes: deque[tuple[AsyncResult, Any, BaseException | None]] = deque()
        self._watcher: Any = None
        self._tasks: set[asyncio.Task] = set()
        self._ready: AsyncResult | None = None
        self._stopped: AsyncResult | None = None

    # --- lifecycle (from greenlets) ----------------------------------------

    def start(self) -> None:
        """Start the thread; every caller (the first and any greenlet racing it) returns once the loop runs."""
        if self._ready is None:
            self._ready = AsyncResult()
            self._watcher = gevent.get_hub().loop.async_()
            self._watcher.start(self._deliver)
            self._stopped = AsyncResult()
            ice.restrict_host_addresses(self.ice_addresses)
            # as the agents do: a busy Locust process answers the node's consent checks in time (docs/loadtests.md)
            tolerate_load()
            _original_start_new_thread()(self._main, (self._ready,))
        self.loop = self._ready.get(timeout=START_TIMEOUT)

    def stop(self, timeout: float = 15.0) -> None:
        """Cancel what still runs, close the HTTP client and end the thread. Safe twice."""
        loop, self.loop = self.loop, None
        if loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        if self._stopped is not None:
            with contextlib.suppress(gevent.Timeout):
                self._stopped.get(timeout=timeout)
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None

    def call(self, coroutine: Coroutine[Any, Any, Any], timeout: float) -> Any:
        """Run `coroutine` on the loop; the calling greenlet waits for its result or exception."""
        loop = self.loop
        if loop is None:
            coroutine.close()
            raise RuntimeError("the media loop is not running")
        result = AsyncResult()

        def schedule() -> None:
            task = loop.create_task(asyncio.wait_for(coroutine, timeout))
            self._tasks.add(task)
            task.add_done_callback(lambda t: self._finished(result, t))

        loop.call_soon_threadsafe(schedule)
        return result.get(timeout=timeout + 5)

    # --- the loop thread --------------------------------------------------

    def _main(self, ready: AsyncResult) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self.http = httpx.AsyncClient(timeout=20)
        self._post(ready, loop, None)
        try:
            loop.run_forever()
            for task in list(self._tasks):
                task.cancel()
            loop.run_until_complete(asyncio.gather(*self._tasks, return_exceptions=True))
            loop.run_until_complete(self.http.aclose())
            loop.run_until_complete(loop.shutdown_asyncgens())
        except Exception:
            log.exception("media loop")
        finally:
            loop.close()
            if self._stopped is not None:
                self._post(self._stopped, True, None)

    def _finished(self, result: AsyncResult, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            self._post(result, None, asyncio.CancelledError("cancelled"))
        elif task.exception() is not None:
            self._post(result, None, task.exception())
        else:
            self._post(result, task.result(), None)

    def _post(self, result: AsyncResult, value: Any, error: BaseException | None) -> None:
        self._outcomes.append((result, value, error))  # deque.append is atomic
        watcher = self._watcher
        if watcher is not None:
            watcher.send()  # thread-safe: wakes the main hub, which runs _deliver

    # --- the main hub -----------------------------------------------------

    def _deliver(self) -> None:
        while self._outcomes:
            result, value, error = self._outcomes.popleft()
            if error is not None:
                result.set_exception(error)
            else:
                result.set(value)
