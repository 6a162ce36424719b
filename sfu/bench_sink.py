"""Counting a bench subscriber's media in the kernel, at no cost to its process.

A sink subscriber completes ICE, DTLS and consent with aiortc like any
other, but its UDP socket carries a classic BPF filter (``SO_ATTACH_FILTER``)
that drops SRTP before it is queued: first byte 128-191 (RTP version 2) and
second byte outside the RTCP range 192-223 (RFC 5761). STUN, DTLS and SRTCP
pass to aiortc. A UDP socket counts the datagrams its filter drops in
``sk_drops``, the ``drops`` column of ``/proc/net/udp``: read by the socket's
inode, that is the number of SRTP packets the subscriber received. Nothing
of it is decrypted, so integrity, loss by sequence and frame rate come from
the sampled full subscribers (`sfu.bench_peers`).

A datagram dropped for a full receive buffer counts in ``sk_drops`` too; a
sink's buffer only ever holds the few non-SRTP datagrams aiortc has not read
yet, so in practice the column counts the filter's drops alone.
"""

from __future__ import annotations

import ctypes
import os
import socket
import struct

__all__ = ["attach_srtp_counter", "udp_drops"]

SO_ATTACH_FILTER = 26  # <asm-generic/socket.h>

# classic BPF opcodes; a UDP socket's filter sees the datagram from its UDP header on
_LD_B_ABS = 0x30  # A = packet[k]
_JGE = 0x35  # if A >= k goto jt else goto jf
_JGT = 0x25
_RET = 0x06
_UDP_HEADER = 8


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


# jumps are relative to the next instruction
_SRTP_DROPPING_FILTER = b"".join(
    [
        _insn(_LD_B_ABS, 0, 0, _UDP_HEADER),  # 0: first byte
        _insn(_JGE, 0, 5, 128),  # 1: below 128 (STUN 0-3, DTLS 20-63): pass
        _insn(_JGE, 4, 0, 192),  # 2: 192 and above: pass
        _insn(_LD_B_ABS, 0, 0, _UDP_HEADER + 1),  # 3: second byte: payload type and marker
        _insn(_JGE, 0, 1, 192),  # 4: below 192: RTP, drop
        _insn(_JGT, 0, 1, 223),  # 5: 192-223 is RTCP: pass; above: RTP, drop
        _insn(_RET, 0, 0, 0),  # 6: drop (counted in sk_drops)
        _insn(_RET, 0, 0, 0xFFFFFFFF),  # 7: pass whole
    ]
)
_FILTER_LEN = len(_SRTP_DROPPING_FILTER) // 8
# the kernel copies the program at setsockopt; the buffer only has to live through the call
_filter_buffer = ctypes.create_string_buffer(_SRTP_DROPPING_FILTER, len(_SRTP_DROPPING_FILTER))


def attach_srtp_counter(sock: socket.socket) -> int:
    """Drop (and so count) every SRTP datagram arriving on `sock` from now on; returns its inode for `udp_drops`."""
    program = struct.pack("HL", _FILTER_LEN, ctypes.addressof(_filter_buffer))  # struct sock_fprog
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, program)
    return os.fstat(sock.fileno()).st_ino


def udp_drops(inodes: set[int] | None = None, *, path: str = "/proc/net/udp") -> dict[int, int]:
    """inode -> datagrams dropped, for this network namespace's UDP sockets (only `inodes` when given)."""
    drops: dict[int, int] = {}
    with open(path) as f:
        next(f)  # the header
        for line in f:
            fields = line.split()
            inode = int(fields[9])
            if inodes is None or inode in inodes:
                drops[inode] = int(fields[-1])
    return drops
