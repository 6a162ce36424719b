"""The compiled fan-out: a stream's subscribers as one C array, one call per packet or frame.

``sfu/_fanout.c`` (built into ``sfu._fanout`` by ``pip install -e .``) does
for every target what ``PacketStream``'s Python loop does: copy, header
rewrite, transport-cc number and send record, SRTP, send. It
queues the protected packets and sends those of consecutive targets on one
socket with one ``sendmmsg`` (on the node's shared socket, with each
subscriber's address; on a per-peer socket, connected, without), a
subscriber's packets of one frame as UDP GSO messages when their sizes allow.

Each row points to its downtrack's ``vcs_out`` (``sfu.srtp_out``: the
session's own AES-GCM, or libsrtp's ``srtp_protect``); the transport-cc ring
is the memory of the subscriber's ``SendHistory``. A downtrack's row in ``Targets``
is written when it joins a stream (``PacketStream._add``) and dropped when it
leaves.

``VCS_SFU_FANOUT=python`` (``SfuConfig.fanout``) keeps the Python loop; a
node without the compiled module falls back to it with a warning.
"""

from __future__ import annotations

import logging
import socket
import struct
from typing import Any

from .transport_cc import RING_BYTES

try:
    from ._fanout import ffi, lib
except ImportError:  # not built (a source tree without ``pip install -e .``)
    ffi = lib = None
else:
    assert ffi.sizeof("vcs_cc") == RING_BYTES, "sfu/_fanout.c's vcs_cc and SendHistory's memory differ"

__all__ = ["MAX_PACKETS", "Targets", "compiled_available", "resolve", "totals"]

log = logging.getLogger(__name__)

MAX_PACKETS = 64  # per call: a larger frame goes in several (sequence numbers continue)
_FAMILY = struct.Struct("=H")  # sa_family is in host order
_IN = struct.Struct("!H4s8x")
_IN6 = struct.Struct("!HI16s")
_SCOPE = struct.Struct("=I")


def compiled_available() -> bool:
    return lib is not None


def resolve(fanout: str) -> str:
    """The fan-out a node runs: ``fanout`` when it can, else ``python`` (with a warning)."""
    if fanout == "compiled" and lib is None:
        log.warning("the compiled fan-out (sfu._fanout) is not built: forwarding with the Python loop; run `make install`")
        return "python"
    return fanout


def totals() -> tuple[int, int]:
    """(sendmmsg calls, messages sent) by the compiled fan-out in this process."""
    return (lib.vcs_totals.syscalls, lib.vcs_totals.messages) if lib is not None else (0, 0)


def sockaddr(family: int, addr: tuple) -> bytes:
    """``addr`` as the ``struct sockaddr`` a socket of ``family`` sends to (IPv4 mapped on an IPv6 socket)."""
    host = addr[0].split("%")[0]
    if family == socket.AF_INET:
        return _FAMILY.pack(socket.AF_INET) + _IN.pack(addr[1], socket.inet_pton(socket.AF_INET, host))
    if ":" not in host:
        host = "::ffff:" + host
    flow = addr[2] if len(addr) > 2 else 0
    scope = addr[3] if len(addr) > 3 else 0
    return _FAMILY.pack(socket.AF_INET6) + _IN6.pack(addr[1], flow, socket.inet_pton(socket.AF_INET6, host)) + _SCOPE.pack(scope)


class Targets:
    """The C array of a stream's downtracks that write to a socket, and the call that sends to all of them.

    A downtrack's row is written once, when it joins (``add``); one that leaves
    takes the last row's place (``remove``), so a join storm costs a row per
    join, not the whole array each time. The order of rows does not matter:
    all of a node's subscribers share its socket.
    """

    __slots__ = ("_array", "_capacity", "_count", "_keep", "_length", "_row_of", "_rows")

    def __init__(self) -> None:
        self._count = 0
        self._capacity = 16
        self._array = ffi.new("vcs_target[]", self._capacity)
        self._rows: list[Any] = []  # the downtrack of each row
        self._row_of: dict[Any, int] = {}  # downtrack -> its row
        self._keep: dict[Any, tuple] = {}  # downtrack -> what its row points into: its ring and SRTP session stay alive
        self._length = ffi.new("int[1]")

    def __contains__(self, dt: Any) -> bool:
        return dt in self._keep

    def add(self, dt: Any, pt: int, where: tuple[int, tuple | None, int]) -> None:
        """Send to ``dt`` (payload type ``pt``) from now on; ``where``: (fd, address or None when connected, family)."""
        if dt in self._keep:
            self.remove(dt)
        if self._count == self._capacity:
            self._capacity *= 2
            grown = ffi.new("vcs_target[]", self._capacity)
            ffi.memmove(grown, self._array, self._count * ffi.sizeof("vcs_target"))
            self._array = grown
        fd, dest, family = where
        ring = ffi.from_buffer(dt.cc.memory)
        self._keep[dt] = (ring, dt.srtp_out)
        target = self._array[self._count]
        target.fd = fd
        target.gso = dt.sendmsg is not None
        target.pt = pt
        target.seq_off = dt.seq_off
        target.ts_off = dt.ts_off
        target.ssrc = dt.ssrc
        target.out = dt.srtp_out.cdata
        target.cc = ffi.cast("vcs_cc *", ring)
        target.addrlen = 0
        if dest is not None:
            name = sockaddr(family, dest)
            target.addr[0 : len(name)] = name
            target.addrlen = len(name)
        self._row_of[dt] = self._count
        self._rows.append(dt)
        self._count += 1

    def remove(self, dt: Any) -> None:
        if self._keep.pop(dt, None) is None:
            return
        i = self._row_of.pop(dt)
        last = self._count - 1
        if i != last:
            ffi.memmove(self._array + i, self._array + last, ffi.sizeof("vcs_target"))
            moved = self._rows[i] = self._rows[last]
            self._row_of[moved] = i
        self._rows.pop()
        self._count = last

    def __len__(self) -> int:
        return self._count

    def send_packet(self, packet: bytes, seq: int, ts: int, marker: bool, now: float) -> int:
        """Send one packet (see ``make_packet``) to every target; returns the failures."""
        if not self._count:
            return 0
        self._length[0] = len(packet)
        return lib.vcs_fanout(self._array, self._count, packet, self._length, 1, seq, ts, marker, now)

    def send_frame(self, packets: list[bytes], seq: int, ts: int, now: float) -> int:
        """Send a frame's packets (sequence numbers from ``seq``, the marker on the last); returns the failures."""
        errors = 0
        count = len(packets) if self._count else 0
        for start in range(0, count, MAX_PACKETS):
            chunk = packets[start : start + MAX_PACKETS]
            lengths = ffi.new("int[]", [len(p) for p in chunk])
            last = start + len(chunk) == count
            errors += lib.vcs_fanout(self._array, self._count, b"".join(chunk), lengths, len(chunk), (seq + start) & 0xFFFF, ts, last, now)
        return errors
