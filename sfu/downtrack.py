"""One outgoing RTP stream (audio or video) to one subscriber.

aiortc negotiates the stream (an ``RTCRtpSender`` per kind gives the SSRC, the
payload types, RTX and the DTLS/SRTP session), but its per-frame coroutine
never runs: ``DownTrack`` replaces the sender's ``send`` so that, once DTLS is
up, the downtrack takes the SRTP session and the nominated ICE pair's socket:
the node's shared socket, each send naming the peer, or the peer's own,
which it ``connect()``s to the peer (the kernel then skips the per-packet
route lookup and drops datagrams from anyone else), and the ``PacketStream``
it is attached to writes packets straight to them (see ``sfu.packet_stream``).
RTCP for the SSRC is routed here by aiortc's DTLS transport and handed to the
owner's callback.

A downtrack keeps its own place across the streams it is fed from: joining a
stream (``join``) fixes the sequence and timestamp offsets that make its
packets continue where the last stream left off; leaving (``leave``) carries
the counters over. The stream only reads the offsets it is given. The stream
is known here only by the ``StreamPosition`` it exposes, so this module does
not import ``sfu.packet_stream``.
"""

from __future__ import annotations

import functools
import os
import random
import socket
import struct
import time
from collections.abc import Callable
from typing import Any, Protocol

from aiortc import RTCRtpSender
from aiortc.codecs import is_rtx
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpparameters import RTCRtpSendParameters
from aiortc.rtp import AnyRtcpPacket
from pylibsrtp._binding import ffi

from rtc.aiortc_adapter import nominated_pair, register_rtp_sender, sender_ssrcs, tx_keying, tx_srtp, unregister_rtp_sender
from rtc.transport_cc import TWCC_URI

from .srtp_out import SrtpOut
from .transport_cc import SendHistory

__all__ = ["DownTrack", "StreamPosition", "send_rtcp"]

BUFFER_SIZE = 2048
UDP_SEGMENT = 103  # from linux/udp.h
_EXTENSION = struct.Struct("!BH")  # the extension element's first byte and the sequence number


class StreamPosition(Protocol):
    """What a downtrack reads of the stream feeding it (a ``sfu.packet_stream.PacketStream``)."""

    last_seq: int
    last_ts: int
    last_time: float | None
    red: bool
    packets: int
    octets: int

    def detach(self, dt: DownTrack) -> None: ...

    def original(self, seq: int) -> bytes | None: ...


class DownTrack:
    """Per-subscriber state of one stream; the hot fields are plain slots."""

    __slots__ = (
        "kind",
        "ssrc",
        "rtx_ssrc",
        "pt",
        "rtx_pt",
        "red_pt",
        "clock_rate",
        "cname",
        "active",
        # sending
        "srtp_out",
        "own_srtp",
        "cdata",
        "view",
        "lenp",
        "send",
        "sendmsg",
        "addr",
        "sock",
        "dest",
        "fd",
        "_session",
        "_dtls",
        "_sender",
        # position in the current stream
        "stream",
        "pending",
        "seq_off",
        "ts_off",
        "first_seq",
        "next_seq",
        "rtx_seq",
        "last_ts",
        "base_packets",
        "base_octets",
        "carry_packets",
        "carry_octets",
        "previous",
        # transport-wide sequence numbers, shared with the peer's other downtrack
        "cc",
        # feedback
        "on_rtcp",
        "on_ready",
        "send_errors",
        "nacks",
        "retransmits",
        "repairs_refused",
        "keyframe_requests",
    )

    def __init__(self, kind: str, sender: RTCRtpSender, *, own_srtp: bool = True) -> None:
        self.kind = kind
        self.ssrc, self.rtx_ssrc = sender_ssrcs(sender)
        self.pt = 0
        self.rtx_pt: int | None = None
        self.red_pt: int | None = None  # RED (RFC 2198) over our codec, when the receiver offered it
        self.clock_rate = 90000 if kind == "video" else 48000
        self.cname = ""
        self.active = False
        self.srtp_out: SrtpOut | None = None  # how its RTP is protected, once DTLS is up
        self.own_srtp = own_srtp  # AES-GCM sessions protected by sfu/_srtp_out.c, not libsrtp
        self.cdata = ffi.new("char[]", BUFFER_SIZE)
        self.view = memoryview(ffi.buffer(self.cdata))
        self.lenp = ffi.new("int *")
        self.send: Callable[[Any], Any] | None = None
        self.sendmsg: Callable[..., Any] | None = None  # for UDP GSO, when available
        self.addr: tuple[str, int] | None = None
        # the socket the compiled fan-out writes to (``sfu.fanout``): the node's shared socket
        # (then ``dest`` is the peer's address) or the peer's own, connected; None: only ``send``
        self.sock: socket.socket | None = None
        self.dest: tuple[str, int] | None = None
        self.fd = -1  # the shared socket's, or our duplicate of the peer's: never a number reused after it closes
        self._session: Any = None
        self._dtls: RTCDtlsTransport | None = None
        self._sender = sender
        self.stream: StreamPosition | None = None
        self.pending: StreamPosition | None = None  # the stream it switches to at its next keyframe
        self.seq_off = 0
        self.ts_off = 0
        self.first_seq = 0
        self.next_seq = random.randrange(0, 32768)
        self.rtx_seq = random.randrange(0, 32768)
        self.last_ts = random.randrange(0, 1 << 31)
        self.base_packets = self.base_octets = 0
        self.carry_packets = self.carry_octets = 0
        # the stream left at the last switch: (stream, seq_off, ts_off, first out seq, next out seq), for NACKs
        self.previous: tuple[StreamPosition, int, int, int, int] | None = None
        self.cc = SendHistory(None)
        self.on_rtcp: Callable[[DownTrack, AnyRtcpPacket], None] | None = None
        self.on_ready: Callable[[DownTrack], None] | None = None
        self.send_errors = 0
        self.nacks = 0
        self.retransmits = 0
        self.repairs_refused = 0  # NACKed packets not resent: over the subscriber's repair budget
        self.keyframe_requests = 0
        sender.send = self._adopt_send  # type: ignore[method-assign]

    # aiortc hooks --------------------------------------------------------

    @property
    def _ssrc(self) -> int:  # what aiortc's RTP router looks for
        return self.ssrc

    async def _adopt_send(self, parameters: RTCRtpSendParameters) -> None:
        """Called by aiortc once DTLS is connected, instead of ``RTCRtpSender.send``."""
        codec = parameters.codecs[0]
        self.pt = codec.payloadType
        self.clock_rate = codec.clockRate
        for other in parameters.codecs:
            if is_rtx(other) and other.parameters.get("apt") == self.pt:
                self.rtx_pt = other.payloadType
            elif other.mimeType.lower() == "audio/red":
                self.red_pt = other.payloadType
        self.cname = parameters.rtcp.cname or ""
        self.cc.enable(next((e.id for e in parameters.headerExtensions if e.uri == TWCC_URI), None))
        # by now the sender is bound to the (bundled) DTLS transport
        dtls = self._sender.transport
        if not self.bind(dtls):
            return
        register_rtp_sender(dtls, self, self.ssrc)
        if self.on_ready is not None:
            self.on_ready(self)

    async def _handle_rtcp_packet(self, packet: AnyRtcpPacket) -> None:
        if self.on_rtcp is not None:
            self.on_rtcp(self, packet)

    @property
    def dtls(self) -> RTCDtlsTransport | None:
        """The (bundled) DTLS transport, once bound."""
        return self._dtls

    def bind(self, dtls: RTCDtlsTransport) -> bool:
        session = tx_srtp(dtls)
        pair = nominated_pair(dtls)
        if session is None or pair is None:
            return False
        self.connect(pair.protocol.transport, pair.remote_addr)
        self._session = session
        self._dtls = dtls
        self.srtp_out = SrtpOut(session, (self.ssrc, self.rtx_ssrc), tx_keying(dtls) if self.own_srtp else None)
        self.active = True
        return True

    def close(self) -> None:
        if self.stream is not None:
            self.stream.detach(self)
        if self.pending is not None:
            self.pending.detach(self)
        if self._dtls is not None:
            unregister_rtp_sender(self._dtls, self)
        self.active = False
        self.send = None
        self.sendmsg = None
        self._release_fd()
        self.on_rtcp = None
        self.on_ready = None

    def connect(self, transport: Any, addr: tuple[str, int]) -> None:
        """Send to ``addr`` on ``transport``'s socket (see ``_peer_socket``)."""
        self.addr = addr
        self._release_fd()
        self.sock, self.dest, self.fd, self.send, self.sendmsg = _peer_socket(transport, addr)

    def socket_target(self) -> tuple[int, tuple[str, int] | None, int] | None:
        """Where the compiled fan-out sends: (fd, the peer's address or None when connected, address family).

        None when there is no socket to write to (the pair's transport only has ``sendto``).
        """
        if self.fd >= 0 and self.sock is not None:
            return self.fd, self.dest, self.sock.family
        owner = getattr(self.send, "__self__", None)  # wired by hand with a connected socket's ``send``
        if isinstance(owner, socket.socket):
            return owner.fileno(), None, owner.family
        return None

    def _release_fd(self) -> None:
        if self.fd >= 0 and self.dest is None:  # our duplicate of a per-peer socket
            os.close(self.fd)
        self.fd = -1
        self.sock = self.dest = None

    # sending outside the hot loop --------------------------------------

    def send_rtp(self, packet: bytes | bytearray) -> bool:
        """Protect and send one RTP packet already rewritten for this stream, its
        header extension (``transport_cc.EXTENSION``) given the next transport-wide sequence number."""
        n = len(packet)
        if not self.active or n + 32 > BUFFER_SIZE:
            return False
        self.view[:n] = packet
        cc = self.cc
        seq = cc.take(time.monotonic(), n)
        _EXTENSION.pack_into(self.view, 16, cc.ext, seq if cc.ext else 0)
        self.lenp[0] = n
        if self.srtp_out.protect(self.cdata, self.lenp) != 0:  # type: ignore[union-attr]
            self.send_errors += 1
            return False
        return self._sendto(self.view[: self.lenp[0]])

    def send_rtcp(self, packet: bytes) -> bool:
        if not self.active:
            return False
        try:
            data = self._session.protect_rtcp(packet)
        except Exception:
            self.send_errors += 1
            return False
        return self._sendto(data)

    def _sendto(self, data: Any) -> bool:
        try:
            self.send(data)  # type: ignore[misc]
            return True
        except (OSError, TypeError):
            self.send_errors += 1
            return False

    # switching streams -------------------------------------------------------

    def join(self, stream: StreamPosition, seq: int, ts: int) -> None:
        """Be fed from `stream`'s packet `seq` (timestamp `ts`) on, continuing
        the sequence numbers without a gap and the timestamps strictly after
        the last sent (two tiers carry the same pictures with the same timestamps)."""
        self.seq_off = (self.next_seq - seq) & 0xFFFF
        if self.carry_packets:
            ahead = (ts + self.ts_off - self.last_ts) & 0xFFFFFFFF
            if ahead == 0 or ahead >= 0x80000000:
                self.ts_off = (self.last_ts + 1 - ts) & 0xFFFFFFFF
        self.first_seq = self.next_seq
        self.base_packets = stream.packets
        self.base_octets = stream.octets
        self.stream = stream

    def leave(self) -> None:
        """No longer fed by the current stream: remember where it left off."""
        stream = self.stream
        if stream is None:
            return
        self.carry_packets += stream.packets - self.base_packets
        self.carry_octets += stream.octets - self.base_octets
        self.next_seq = (stream.last_seq + 1 + self.seq_off) & 0xFFFF
        self.last_ts = (stream.last_ts + self.ts_off) & 0xFFFFFFFF
        self.previous = (stream, self.seq_off, self.ts_off, self.first_seq, self.next_seq)
        self.stream = None

    # counters ----------------------------------------------------------------

    @property
    def packets_sent(self) -> int:
        stream = self.stream
        live = stream.packets - self.base_packets if stream is not None else 0
        return self.carry_packets + live

    @property
    def octets_sent(self) -> int:
        stream = self.stream
        live = stream.octets - self.base_octets if stream is not None else 0
        return self.carry_octets + live

    def rtp_timestamp_now(self, now: float | None = None) -> int:
        """The RTP timestamp matching ``now`` (monotonic), for sender reports."""
        stream = self.stream
        if stream is None or stream.last_time is None:
            return self.last_ts
        now = time.monotonic() if now is None else now
        elapsed = max(0.0, now - stream.last_time)
        return (stream.last_ts + self.ts_off + int(elapsed * self.clock_rate)) & 0xFFFFFFFF



@functools.cache
def udp_gso_supported() -> bool:
    """Whether the kernel takes UDP_SEGMENT (several datagrams in one send)."""
    if not hasattr(socket, "SOL_UDP"):
        return False
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, socket.socket(
            socket.AF_INET, socket.SOCK_DGRAM
        ) as tx:
            rx.bind(("127.0.0.1", 0))
            tx.connect(rx.getsockname())
            tx.sendmsg([b"x" * 8], [(socket.SOL_UDP, UDP_SEGMENT, struct.pack("=H", 4))])
        return True
    except OSError:
        return False


def _peer_socket(
    transport: Any, addr: tuple[str, int]
) -> tuple[socket.socket | None, tuple[str, int] | None, int, Callable, Callable | None]:
    """How a downtrack sends to ``addr`` on the nominated pair's ``transport``:
    (socket, address or None when connected, fd for the compiled fan-out, ``send(data)``,
    ``sendmsg(buffers, ancillary)`` when UDP GSO can be used, else None).

    On the node's shared socket (``.shared``) every send names the peer; a
    per-peer socket is ``connect()``ed to it, and its fd duplicated so the
    compiled fan-out never writes to a number the kernel gave to another file
    after the peer's socket closed.
    """
    gso = udp_gso_supported()
    shared = transport.get_extra_info("socket")
    if getattr(shared, "shared", False):

        def send_to(data: Any) -> None:
            shared.sendto(data, addr)

        def sendmsg_to(buffers: list, ancillary: list) -> None:
            shared.sendmsg(buffers, ancillary, 0, addr)

        return shared, addr, shared.fileno(), send_to, (sendmsg_to if gso else None)
    sock = getattr(transport, "_sock", None)
    if sock is not None:
        try:
            sock.connect(addr)
            return sock, None, os.dup(sock.fileno()), sock.send, (sock.sendmsg if gso else None)
        except OSError:
            pass

    def send(data: Any) -> None:
        transport.sendto(bytes(data), addr)

    return None, None, -1, send, None


def send_rtcp(dtls: RTCDtlsTransport, packet: bytes) -> bool:
    """Protect and send an RTCP packet now, outside aiortc's coroutines."""
    session = tx_srtp(dtls)
    pair = nominated_pair(dtls)
    if session is None or pair is None:
        return False
    try:
        pair.protocol.transport.sendto(session.protect_rtcp(packet), pair.remote_addr)
    except Exception:
        return False
    return True
