"""A packet stream and its fan-out: the SFU's hot path.

A ``PacketStream`` carries one encoded stream (a tier of the ladder, the
program audio, or a contributor's camera) in its own sequence-number space.
Producers push each packet once; every attached ``DownTrack`` receives the
same bytes with only its header rewritten (payload type, sequence number and
timestamp offsets, SSRC) in the stream's scratch buffer, protected with its
SRTP session and sent on its nominated ICE pair's connected socket. Per
packet and subscriber that is one buffer copy, one ``pack_into``, one SRTP
call (``sfu.srtp_out``) and one ``send``: no coroutine, no packet object. The attached
downtracks are kept as a list of plain tuples, rebuilt when membership
changes, so the loop touches as little memory as possible. A whole encoded
frame (``push_frame``) goes to each subscriber in one ``sendmsg`` with UDP
GSO where the kernel offers it (the packets of a VP8 frame have equal sizes
but the last, as ``UDP_SEGMENT`` requires): one trip through the network
stack per frame instead of one per packet.

That loop is written here in Python and, faster, in C (``sfu.fanout``, the
default): the downtracks with a socket go to the compiled loop, which also
sends consecutive subscribers on one socket with one ``sendmmsg``; the
others (a transport without a socket) and every downtrack of a stream built
with ``fanout="python"`` go through the Python loop.

Joining or switching streams happens on a keyframe: a downtrack waits in
``pending`` (still fed by its old stream) until the new stream pushes the
first packet of a keyframe, and its sequence numbers continue without a gap
(the downtrack keeps that bookkeeping: ``DownTrack.join`` and ``leave``).
A bounded history serves NACKs (as RTX when negotiated).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterable

from pylibsrtp._binding import ffi

from .downtrack import UDP_SEGMENT, DownTrack
from .fanout import Targets, compiled_available
from .transport_cc import EXTENSION, HEADER_BYTES, RING

__all__ = ["PacketStream", "make_packet"]

# from the second byte: marker|PT, seq, timestamp, SSRC, then the transport-cc extension (0xBEDE, 1 word, id, seq)
_pack_into = struct.Struct("!BHIIHHBH").pack_into
_RTX_HEADER = struct.Struct("!BBHII")
_SEQ = struct.Struct("!H")
_monotonic = time.monotonic
_HEAD = struct.Struct("!BBHII")
_SOL_UDP = 17
MAX_SEGMENTS = 64  # the kernel's UDP_MAX_SEGMENTS
# One GSO send is one UDP datagram to the kernel: at most 65,507 bytes of
# payload, so a large frame (a 720p keyframe is 50+ packets) goes in batches.
GSO_MAX_BYTES = 65_000
SCRATCH = MAX_SEGMENTS * 1500


_RING_MASK = RING - 1


def make_packet(payload: bytes, seq: int, ts: int, marker: bool) -> bytes:
    """A stream packet: a 12-byte RTP header (PT and SSRC left 0), the
    transport-cc extension reserved (written per subscriber), the payload."""
    return _HEAD.pack(0x90, 0x80 if marker else 0, seq, ts, 0) + EXTENSION + payload


class PacketStream:
    def __init__(
        self,
        kind: str,
        name: str,
        *,
        clock_rate: int,
        history: int = 1024,
        request_keyframe: Callable[[], None] | None = None,
        on_idle: Callable[[], None] | None = None,
        red: bool = False,
        repeat: bool = False,
        fanout: str = "compiled",
    ) -> None:
        assert history & (history - 1) == 0, "history must be a power of two"
        self.kind = kind
        self.name = name
        self.red = red  # RED packets (``sfu.red``): each downtrack's RED payload type in the header
        self.repeat = repeat  # each packet pushed twice (``sfu.room``, long links without RED)
        self.clock_rate = clock_rate
        self.downtracks: list[DownTrack] = []
        # streams fed from this one's packets (``sfu.video_repeat``): their subscribers count as this one's
        self.variants: list[PacketStream] = []
        # called with (packet, seq, ts, marker, keyframe) for every packet pushed: a recorder's copy
        self.taps: list[Callable[[bytes, int, int, bool, bool], None]] = []
        self._targets: list[tuple] = []  # the downtracks the Python loop sends to
        self._python: dict[DownTrack, tuple] = {}  # those downtracks, with their entry of ``_targets``
        self._compiled = fanout == "compiled" and compiled_available()  # else ``python``: every downtrack in ``_targets``
        self._fanout: Targets | None = None  # the downtracks the compiled loop sends to (those with a socket)
        self._pending: list[DownTrack] = []
        self._cdata = ffi.new("char[]", SCRATCH)
        self._gso: dict[int, tuple[list, int]] = {}  # segment size -> (ancillary data, bytes per send)
        self._view = memoryview(ffi.buffer(self._cdata))
        self._lenp = ffi.new("int *")
        self.send_errors = 0
        self._history: list[bytes | None] = [None] * history
        self._mask = history - 1
        self._request_keyframe = request_keyframe
        self._on_idle = on_idle  # called when the last downtrack, attached or switching to it, leaves
        self.last_seq = 0
        self.last_ts = 0
        self.last_time: float | None = None
        self.packets = 0
        self.octets = 0
        self.keyframes = 0
        self.closed = False

    def __len__(self) -> int:
        return len(self.downtracks) + len(self._pending) + sum(len(v) for v in self.variants)

    @property
    def subscribers(self) -> Iterable[DownTrack]:
        yield from self.downtracks
        yield from self._pending

    # membership ----------------------------------------------------------

    def attach(self, dt: DownTrack, *, at_keyframe: bool) -> None:
        """Start feeding ``dt``: now, or from the next keyframe."""
        if dt.pending is self:
            return
        if dt.stream is self:
            if dt.pending is not None:
                dt.pending.detach(dt)  # a switch away not yet made is called off
            return
        if dt.pending is not None:
            dt.pending.detach(dt)
        if at_keyframe:
            dt.pending = self
            self._pending.append(dt)
            self.request_keyframe()
        else:
            if dt.stream is not None:
                dt.stream.detach(dt)
            self._add(dt, (self.last_seq + 1) & 0xFFFF, self.last_ts)

    def detach(self, dt: DownTrack) -> None:
        if dt.pending is self:
            self._pending.remove(dt)
            dt.pending = None
        if dt.stream is self:
            self.downtracks.remove(dt)
            self._untarget(dt)
            dt.leave()
        if self._on_idle is not None and not self.closed and not len(self):
            self._on_idle()

    def close(self) -> None:
        for dt in list(self.subscribers):
            self.detach(dt)
        self.closed = True

    def request_keyframe(self) -> None:
        if self._request_keyframe is not None:
            self._request_keyframe()

    def _add(self, dt: DownTrack, seq: int, ts: int) -> None:
        """Feed ``dt`` from packet ``seq`` (timestamp ``ts``) on; it keeps its own offsets (``DownTrack.join``)."""
        dt.join(self, seq, ts)
        self.downtracks.append(dt)
        pt = dt.red_pt if self.red else dt.pt
        where = dt.socket_target() if self._compiled else None
        if where is not None:
            if self._fanout is None:
                self._fanout = Targets()
            self._fanout.add(dt, pt, where)
        else:
            out = dt.srtp_out
            self._python[dt] = entry = (pt, dt.seq_off, dt.ts_off, dt.ssrc, out.fn, out.handle, dt.send, dt.sendmsg, dt.cc)
            self._targets.append(entry)

    def _untarget(self, dt: DownTrack) -> None:
        if self._python.pop(dt, None) is not None:
            self._targets = list(self._python.values())
        elif self._fanout is not None:
            self._fanout.remove(dt)
            if not len(self._fanout):
                self._fanout = None

    def _promote(self, seq: int, ts: int) -> None:
        for dt in self._pending:
            dt.pending = None
            if dt.stream is not None:
                dt.stream.detach(dt)
            self._add(dt, seq, ts)
        self._pending.clear()

    # the hot path -----------------------------------------------------------

    def push(self, packet: bytes, seq: int, ts: int, marker: bool, keyframe: bool) -> None:
        """Send ``packet`` (see ``make_packet``) to every attached downtrack."""
        if keyframe:
            self.keyframes += 1
            if self._pending:
                self._promote(seq, ts)
        n = len(packet)
        if self.taps:
            for tap in self.taps:
                tap(packet, seq, ts, marker, keyframe)
        self._history[seq & self._mask] = packet
        self.last_seq = seq
        self.last_ts = ts
        self.last_time = now = _monotonic()
        self.packets += 1
        self.octets += n - HEADER_BYTES
        if n > 1900:
            return
        if self._fanout is not None:
            self.send_errors += self._fanout.send_packet(packet, seq, ts, marker, now)
        if self._targets:
            self._push_python(packet, seq, ts, marker, now)

    def _push_python(self, packet: bytes, seq: int, ts: int, marker: bool, now: float) -> None:
        """The Python loop: ``packet`` to each of ``_targets``, one ``send`` each."""
        n = len(packet)
        b1 = 0x80 if marker else 0
        pack_into = _pack_into
        view = self._view
        cdata = self._cdata
        lenp = self._lenp
        for pt, seq_off, ts_off, ssrc, protect, srtp, send, _, cc in self._targets:
            view[:n] = packet
            head = cc.head
            tw = head[0]
            head[0] = (tw + 1) & 0xFFFF
            cc.times[tw & _RING_MASK] = now
            cc.sizes[tw & _RING_MASK] = n
            ext = head[1]
            pack_into(view, 1, b1 | pt, (seq + seq_off) & 0xFFFF, (ts + ts_off) & 0xFFFFFFFF, ssrc, 0xBEDE, 1, ext, tw if ext else 0)
            lenp[0] = n
            if protect(srtp, cdata, lenp) == 0:
                try:
                    send(view[: lenp[0]])
                except OSError:
                    self.send_errors += 1
            else:
                self.send_errors += 1

    def push_frame(self, payloads: list[bytes], seq: int, ts: int, keyframe: bool) -> int:
        """Send one encoded frame's packets (sequence numbers from ``seq``).

        Returns the next sequence number.
        """
        count = len(payloads)
        if self._fanout is None and (count == 1 or count > MAX_SEGMENTS or not self._targets):
            for i, payload in enumerate(payloads):
                last = i == count - 1
                self.push(make_packet(payload, seq, ts, last), seq, ts, last, keyframe and i == 0)
                seq = (seq + 1) & 0xFFFF
            return seq
        if keyframe:
            self.keyframes += 1
            if self._pending:
                self._promote(seq, ts)
        packets = []
        history = self._history
        mask = self._mask
        first = seq
        last = count - 1
        for i, payload in enumerate(payloads):
            packet = make_packet(payload, seq, ts, i == last)
            history[seq & mask] = packet
            packets.append(packet)
            for tap in self.taps:
                tap(packet, seq, ts, i == last, keyframe and i == 0)
            self.octets += len(packet) - HEADER_BYTES
            seq = (seq + 1) & 0xFFFF
        self.packets += count
        self.last_seq = (seq - 1) & 0xFFFF
        self.last_ts = ts
        self.last_time = now = _monotonic()
        if self._fanout is not None:
            self.send_errors += self._fanout.send_frame(packets, first, ts, now)
            if not self._targets:
                return seq
            if count == 1 or count > MAX_SEGMENTS:  # larger than the Python loop's scratch buffer
                for i, packet in enumerate(packets):
                    self._push_python(packet, (first + i) & 0xFFFF, ts, i == last, now)
                return seq
        pack_into = _pack_into
        view = self._view
        cdata = self._cdata
        lenp = self._lenp
        for pt, seq_off, ts_off, ssrc, protect, srtp, send, sendmsg, cc in self._targets:
            out_ts = (ts + ts_off) & 0xFFFFFFFF
            offset = 0
            sizes = []
            head = cc.head
            ext = head[1]
            times = cc.times
            ring_sizes = cc.sizes
            for i, packet in enumerate(packets):
                n = len(packet)
                view[offset : offset + n] = packet
                tw = head[0]
                head[0] = (tw + 1) & 0xFFFF
                times[tw & _RING_MASK] = now
                ring_sizes[tw & _RING_MASK] = n
                pack_into(
                    view, offset + 1, (0x80 if i == last else 0) | pt, (first + i + seq_off) & 0xFFFF, out_ts, ssrc,
                    0xBEDE, 1, ext, tw if ext else 0,
                )
                lenp[0] = n
                if protect(srtp, cdata + offset, lenp) != 0:
                    break
                sizes.append(lenp[0])
                offset += lenp[0]
            else:
                self._send_segments(send, sendmsg, sizes, offset)
                continue
            self.send_errors += 1
        return seq

    def _send_segments(self, send: Callable, sendmsg: Callable | None, sizes: list[int], total: int) -> None:
        """Send the protected packets in the scratch buffer, in as few calls as possible."""
        view = self._view
        segment = sizes[0]
        try:
            if sendmsg is not None and all(size == segment for size in sizes[:-1]) and sizes[-1] <= segment:
                gso = self._gso.get(segment)
                if gso is None:
                    gso = self._gso[segment] = ([(_SOL_UDP, UDP_SEGMENT, struct.pack("=H", segment))], (GSO_MAX_BYTES // segment) * segment)
                ancillary, batch = gso
                for offset in range(0, total, batch):
                    sendmsg([view[offset : min(offset + batch, total)]], ancillary)
                return
            offset = 0
            for size in sizes:
                send(view[offset : offset + size])
                offset += size
        except OSError:
            self.send_errors += 1

    # feedback ------------------------------------------------------------------

    def retransmit(self, dt: DownTrack, lost: Iterable[int], *, limit: int | None = None) -> int:
        """Resend the packets ``dt``'s receiver reported lost, at most ``limit`` of them; return how many.

        Packets sent on the stream ``dt`` left at its last switch are served
        from that stream's history: they are the ones a congested link lost
        just before the downgrade.
        """
        if dt.stream is not self:
            return 0
        sent = 0
        previous = dt.previous
        for out_seq in lost:
            dt.nacks += 1
            if limit is not None and sent >= limit:
                dt.repairs_refused += 1
                continue
            if (out_seq - dt.first_seq) & 0xFFFF < 0x8000:
                stream, seq_off, ts_off = self, dt.seq_off, dt.ts_off
            elif previous is not None and (out_seq - previous[3]) & 0xFFFF < (previous[4] - previous[3]) & 0xFFFF:
                stream, seq_off, ts_off = previous[0], previous[1], previous[2]
            else:
                continue  # sent before the last two streams this downtrack was fed from
            packet = stream.original((out_seq - seq_off) & 0xFFFF)
            pt = dt.red_pt if stream.red else dt.pt
            if packet is not None and dt.send_rtp(resend_packet(dt, packet, out_seq, ts_off, pt)):
                dt.retransmits += 1
                sent += 1
        return sent

    def original(self, seq: int) -> bytes | None:
        """Packet ``seq`` of this stream (see ``make_packet``), while the history holds it."""
        packet = self._history[seq & self._mask]
        if packet is None or _SEQ.unpack_from(packet, 2)[0] != seq:
            return None
        return packet


def resend_packet(dt: DownTrack, packet: bytes, out_seq: int, ts_off: int, pt: int) -> bytes:
    """``packet`` (see ``make_packet``) as ``dt`` sends it again: as RTX when negotiated
    (original sequence number first in the payload), else as itself. The
    extension is left for ``DownTrack.send_rtp`` to number."""
    marker = packet[1] & 0x80
    ts = (struct.unpack_from("!I", packet, 4)[0] + ts_off) & 0xFFFFFFFF
    if dt.rtx_pt is not None:
        data = (
            _RTX_HEADER.pack(0x90, marker | dt.rtx_pt, dt.rtx_seq, ts, dt.rtx_ssrc)
            + EXTENSION
            + _SEQ.pack(out_seq)
            + packet[HEADER_BYTES:]
        )
        dt.rtx_seq = (dt.rtx_seq + 1) & 0xFFFF
        return data
    return _RTX_HEADER.pack(0x90, marker | pt, out_seq, ts, dt.ssrc) + packet[12:]
