"""Encoded packets fanned out to any number of aiortc tracks, each read at its own pace.

A source pushes each `av.Packet` once into a `Broadcast` (a short ring of
recent packets); every `PacketTrack` reading it returns those same objects,
and aiortc's sender packetizes them without re-encoding. A reader that falls
out of the ring skips to the newest packet (a video reader then waits for a
keyframe and asks for one). A `PacedSource` is a source that pushes at a
steady rate, and only while some track reads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

__all__ = ["Broadcast", "PacedSource", "PacketTrack"]

log = logging.getLogger(__name__)


class Broadcast:
    """The latest packets of one source, read by any number of tracks, each at its own pace.

    An item is `(packet, keyframe, alternate)`: `alternate` is what a muted
    audio track sends instead (a silent frame, or None for nothing).
    """

    HISTORY = 64

    def __init__(self) -> None:
        self._ring: deque[tuple[int, av.Packet, bool, av.Packet | None]] = deque(maxlen=self.HISTORY)
        self.latest = 0  # index of the newest item; the first pushed is 1
        self.readers = 0
        self.closed = False
        self._waiter: asyncio.Future | None = None
        self._has_readers = asyncio.Event()

    def push(self, packet: av.Packet, keyframe: bool, alternate: av.Packet | None = None) -> None:
        self.latest += 1
        self._ring.append((self.latest, packet, keyframe, alternate))
        self._wake()

    async def next(self, cursor: int) -> tuple[int, av.Packet, bool, av.Packet | None, bool]:
        """The item after `cursor`: (index, packet, keyframe, alternate, skipped); `skipped` when the reader fell behind."""
        while True:
            if self.closed:
                raise MediaStreamError
            if self.latest > cursor:
                first = self._ring[0][0]
                skipped = cursor + 1 < first
                index, packet, keyframe, alternate = self._ring[-1 if skipped else cursor + 1 - first]
                return index, packet, keyframe, alternate, skipped
            if self._waiter is None:
                self._waiter = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._waiter)  # one reader's cancellation must not cancel the others' wait

    def join(self) -> None:
        self.readers += 1
        self._has_readers.set()

    def leave(self) -> None:
        self.readers -= 1
        if self.readers <= 0:
            self.readers = 0
            self._has_readers.clear()

    async def wait_for_readers(self) -> None:
        await self._has_readers.wait()

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class PacketTrack(MediaStreamTrack):
    """A track of already-encoded packets from a `Broadcast`; aiortc sends them without re-encoding.

    A video track starts at a keyframe (and starts over at one after falling
    behind), so its receiver never gets a picture it cannot decode.
    """

    def __init__(self, kind: str, broadcast: Broadcast, *, muted: bool = False, on_keyframe_request: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.kind = kind
        self.muted = muted
        self._broadcast = broadcast
        self._cursor = broadcast.latest
        self._on_keyframe_request = on_keyframe_request
        self._in_sync = kind != "video"
        broadcast.join()

    async def recv(self) -> av.Packet:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            self._cursor, packet, keyframe, alternate, skipped = await self._broadcast.next(self._cursor)
            if skipped and self.kind == "video":
                self._in_sync = False
                self.request_keyframe()
            self._in_sync = self._in_sync or keyframe
            if not self._in_sync:
                continue
            if not self.muted:
                return packet
            if alternate is not None:
                return alternate

    def request_keyframe(self) -> None:
        if self._on_keyframe_request is not None:
            self._on_keyframe_request()

    def stop(self) -> None:
        if self.readyState == "live":
            self._broadcast.leave()
        super().stop()


class PacedSource:
    """A loop that calls `tick(index)` `rate` times a second while a track reads, started and stopped explicitly.

    Subclasses push what each tick makes into `self.broadcast`.
    """

    def __init__(self, rate: float, name: str) -> None:
        self.broadcast = Broadcast()
        self._rate = rate
        self._name = name
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.broadcast.close()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        index = 0  # never goes back: packet timestamps stay monotonic across pauses
        try:
            while True:
                await self.broadcast.wait_for_readers()
                origin = loop.time() - index / self._rate
                while self.broadcast.readers:
                    late = loop.time() - (origin + index / self._rate)
                    if late < 0:
                        await asyncio.sleep(-late)
                    elif late > 1.0:  # starved of CPU: skip ahead rather than burst
                        index += int(late * self._rate)
                    await self.tick(index)
                    index += 1
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("%s stopped", self._name)

    async def tick(self, index: int) -> None:
        raise NotImplementedError
