"""How this process reads its UDP sockets: in batches, and with the kernel's arrival time where a socket asks.

asyncio reads one datagram per socket per loop turn. When a loaded loop turns
slowly, a peer's socket fills with seconds of media and a STUN check waits
behind it; ``install()`` makes every datagram socket of the process read up
to ``READ_BATCH`` datagrams a turn instead (``rtc.consent.tolerate_load``
installs it, as every process of the project does).

A receiver that reports when each packet arrived (transport-cc feedback,
``rtc.transport_feedback``) cannot take that time when its loop gets round
to the datagram: a loop busy decoding video reads a burst late, and the
sender would read the lag as a queue on the link. ``watch_arrivals(transport,
hook)`` has the kernel stamp each datagram as it arrives (``SO_TIMESTAMPNS``,
wall clock) and calls ``hook(data, arrival)`` before the protocol gets it;
the hook may return False to drop the datagram (an emulated full link).
Only the sockets watched pay for ``recvmsg`` and its ancillary data.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import time
from asyncio import selector_events
from collections.abc import Callable
from typing import Any

__all__ = ["READ_BATCH", "ArrivalHook", "install", "unwatch_arrivals", "watch_arrivals"]

log = logging.getLogger(__name__)

READ_BATCH = 64  # datagrams read from one socket in one loop turn

# Linux's values (asm-generic/socket.h); Python's socket module does not name them
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SCM_TIMESTAMPNS = SO_TIMESTAMPNS
_TIMESPEC = struct.Struct("@qq")  # struct timespec: seconds, nanoseconds (64-bit Linux)
_ANCILLARY_BYTES = socket.CMSG_SPACE(_TIMESPEC.size)

ArrivalHook = Callable[[bytes, float], bool]  # (datagram, arrival in wall-clock seconds) -> deliver it

_hooks: dict[Any, ArrivalHook] = {}  # watched transports (removed by `unwatch_arrivals`)


def _read_ready(self: selector_events._SelectorDatagramTransport) -> None:
    """asyncio's `_SelectorDatagramTransport._read_ready`, reading up to READ_BATCH datagrams instead of one;
    a watched socket's with the kernel's arrival time, each shown to its hook first."""
    hook = _hooks.get(self)
    sock = self._sock
    for _ in range(READ_BATCH):
        if self._conn_lost:
            return
        try:
            if hook is None:
                data, addr = sock.recvfrom(self.max_size)
            else:
                data, ancillary, _flags, addr = sock.recvmsg(self.max_size, _ANCILLARY_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._protocol.error_received(exc)
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal read error on datagram transport")
            return
        if hook is None or _deliver(hook, data, ancillary):
            self._protocol.datagram_received(data, addr)


def _deliver(hook: ArrivalHook, data: bytes, ancillary: list) -> bool:
    """Show `data` and its arrival time (the kernel's stamp, else now) to `hook`: may the protocol have it?"""
    arrival = None
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS and len(payload) >= _TIMESPEC.size:
            seconds, nanoseconds = _TIMESPEC.unpack_from(payload)
            arrival = seconds + nanoseconds * 1e-9
    try:
        return hook(data, time.time() if arrival is None else arrival)
    except Exception:  # a hook's fault never costs the peer its datagram
        log.exception("arrival hook failed")
        return True


def install() -> None:
    """Read every datagram socket of this process in batches (process-wide; safe twice)."""
    selector_events._SelectorDatagramTransport._read_ready = _read_ready  # type: ignore[method-assign]


def watch_arrivals(transport: Any, hook: ArrivalHook) -> None:
    """Stamp `transport`'s datagrams with the kernel's arrival time and show each to `hook` (installs the reader)."""
    install()
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # a kernel without it: the time of reading stands in
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    _hooks[transport] = hook


def unwatch_arrivals(transport: Any) -> None:
    _hooks.pop(transport, None)
