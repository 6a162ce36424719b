"""The compiled fan-out against the Python loop, and one ``sendmmsg`` to many subscribers on a shared socket.

Real SRTP sessions on both sides, real UDP sockets on loopback: what the
receivers get is compared byte for byte and decrypted.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct

import pytest
from aiortc import RTCCertificate, RTCDtlsTransport, RTCIceGatherer, RTCIceTransport, RTCRtpSender
from pylibsrtp import Session

from rtc.whip_client import subscribe
from sfu import fanout
from sfu.downtrack import DownTrack, udp_gso_supported
from sfu.packet_stream import PacketStream, make_packet
from sfu.udp_mux import SharedSocket

from .conftest import FANOUT, publish_scene, recv_frames, small_config, track_of
from .srtp_sessions import PROTECTIONS, protect, session

compiled = pytest.mark.skipif(not fanout.compiled_available(), reason="the compiled fan-out is not built (make install)")

def receiving_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.settimeout(2.0)
    return sock


def received(sock: socket.socket, count: int) -> list[bytes]:
    return [sock.recv(4096) for _ in range(count)]


def nothing_more(sock: socket.socket) -> bool:
    sock.settimeout(0.2)
    try:
        sock.recv(4096)
    except TimeoutError:
        return True
    return False


class PairTransport:
    """What a downtrack reads of its nominated ICE pair's transport: the socket under it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._sock = sock  # as asyncio's datagram transport keeps it

    def get_extra_info(self, name: str) -> object:
        return self.sock if name == "socket" else None

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sock.sendto(data, addr)


def downtrack(
    kind: str = "video", *, ssrc: int = 0x1234, cc_id: int | None = 3, protection: str = "aes-gcm"
) -> tuple[DownTrack, Session]:
    """A downtrack as the node has it once DTLS is up, with a fresh outgoing SRTP session (``srtp_sessions``)."""
    transport = RTCDtlsTransport(RTCIceTransport(RTCIceGatherer()), [RTCCertificate.generateCertificate()])
    dt = DownTrack(kind, RTCRtpSender(kind, transport))
    dt.ssrc = ssrc
    dt.pt = 96 if kind == "video" else 111
    dt.red_pt = 63
    dt.next_seq, dt.last_ts = 4000, 123_456  # the same offsets on every stream the tests compare
    dt.cc.enable(cc_id)
    dt.active = True
    return dt, protect(dt, protection)


def traffic(stream: PacketStream) -> None:
    """The same packets and frames, whatever the loop: audio-sized and video frames of every shape."""
    rng = __import__("random").Random(7)
    seq, ts = 65_530, 4_294_960_000  # both wrap on the way
    for count in (1, 2, 6, 53, 64, 70):
        payloads = [rng.randbytes(1200) for _ in range(count - 1)] + [rng.randbytes(rng.randrange(100, 1200))]
        seq = stream.push_frame(payloads, seq, ts, keyframe=count == 53)
        ts = (ts + 3000) & 0xFFFFFFFF
    for i in range(5):
        stream.push(make_packet(rng.randbytes(rng.randrange(60, 200)), seq, ts, i == 4), seq, ts, i == 4, False)
        seq = (seq + 1) & 0xFFFF
        ts += 960
    stream.push_frame([rng.randbytes(300), rng.randbytes(1200), rng.randbytes(1200)], seq, ts, keyframe=False)  # sizes GSO cannot take


PACKETS = 1 + 2 + 6 + 53 + 64 + 70 + 5 + 3


@compiled
@pytest.mark.parametrize("protection", PROTECTIONS)
@pytest.mark.parametrize("red", [False, True])
@pytest.mark.parametrize("gso", [True, False])
async def test_the_compiled_loop_sends_the_same_srtp_bytes_as_the_python_loop(gso, red, protection):
    if gso and not udp_gso_supported():
        pytest.skip("this kernel has no UDP GSO")
    out: dict[str, list[list[bytes]]] = {}
    for mode in ("python", "compiled"):
        stream = PacketStream("video", "t/360p", clock_rate=90000, red=red, fanout=mode)
        receivers, keep = [], []
        for ssrc, cc_id in ((0x1111, 3), (0x2222, None)):  # with and without transport-cc
            rx = receiving_socket()
            tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            dt, outgoing = downtrack(ssrc=ssrc, cc_id=cc_id, protection=protection)
            dt.connect(PairTransport(tx), rx.getsockname())
            if not gso:
                dt.sendmsg = None
            stream.attach(dt, at_keyframe=False)
            receivers.append(rx)
            keep += [tx, outgoing, dt]
        assert (stream._fanout is not None) == (mode == "compiled")
        traffic(stream)
        out[mode] = [received(rx, PACKETS) for rx in receivers]
        assert all(nothing_more(rx) for rx in receivers)
        assert stream.send_errors == 0
        for rx in receivers:
            rx.close()
        for dt in keep[2::3]:
            dt.close()
        for tx in keep[::3]:
            tx.close()
    assert out["compiled"] == out["python"]
    for datagrams, cc in zip(out["compiled"], (True, False)):
        inbound = session(protection)
        packets = [inbound.unprotect(d) for d in datagrams]
        seqs = [struct.unpack_from("!H", p, 2)[0] for p in packets]
        assert seqs == [(seqs[0] + i) & 0xFFFF for i in range(PACKETS)]
        assert {p[1] & 0x7F for p in packets} == {63 if red else 96}
        if cc:  # the transport-wide numbers run on from 1 in the extension (id 3)
            assert [(p[16], struct.unpack_from("!H", p, 17)[0]) for p in packets] == [(0x31, 1 + i) for i in range(PACKETS)]
        else:
            assert {p[16:20] for p in packets} == {bytes(4)}


@compiled
async def test_one_sendmmsg_reaches_every_subscriber_on_the_shared_socket():
    shared = SharedSocket(socket.AF_INET, socket.SOCK_DGRAM)
    shared.bind(("127.0.0.1", 0))
    shared.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    stream = PacketStream("audio", "t/audio", clock_rate=48000, fanout="compiled")
    receivers, downtracks, sessions = [], [], []
    for i in range(40):
        rx = receiving_socket()
        dt, outgoing = downtrack("audio", ssrc=0x5000 + i)
        dt.connect(PairTransport(shared), rx.getsockname())
        assert dt.dest == rx.getsockname() and dt.fd == shared.fileno()
        stream.attach(dt, at_keyframe=False)
        receivers.append(rx)
        downtracks.append(dt)
        sessions.append(outgoing)
    calls, messages = fanout.totals()
    stream.push(make_packet(b"opus" * 30, 77, 960, True), 77, 960, True, False)
    assert fanout.totals() == (calls + 1, messages + 40)  # one system call, forty datagrams
    for i, rx in enumerate(receivers):
        packet = session("aes-gcm").unprotect(rx.recv(4096))
        assert struct.unpack_from("!I", packet, 8)[0] == 0x5000 + i  # each its own SSRC, sealed with its own session
        assert packet[20:] == b"opus" * 30
    # a video frame of six packets: one call still, each subscriber's six packets in one GSO message when the kernel can
    calls, messages = fanout.totals()
    video = PacketStream("video", "t/360p", clock_rate=90000, fanout="compiled")
    for dt in downtracks:
        video.attach(dt, at_keyframe=False)
    video.push_frame([os.urandom(1100) for _ in range(6)], 5, 3000, keyframe=True)
    per_subscriber = 1 if udp_gso_supported() else 6
    assert fanout.totals() == (calls + 1, messages + 40 * per_subscriber)
    for rx in receivers:
        assert len(received(rx, 6)) == 6 and nothing_more(rx)
    assert video.send_errors == 0
    for dt in downtracks:
        dt.close()
    for rx in receivers:
        rx.close()
    shared.close()


@compiled
async def test_subscribers_joining_and_leaving_in_any_order_each_get_their_own_packets():
    """A join adds one row and a leave moves the last row into its place: after every
    change, a packet reaches exactly the subscribers attached, each sealed for itself."""
    shared = SharedSocket(socket.AF_INET, socket.SOCK_DGRAM)
    shared.bind(("127.0.0.1", 0))
    stream = PacketStream("audio", "t/audio", clock_rate=48000, fanout="compiled")
    attached: dict[int, tuple[DownTrack, socket.socket, Session]] = {}  # the libsrtp session outlives its downtrack

    def join(i: int) -> None:
        rx = receiving_socket()
        dt, outgoing = downtrack("audio", ssrc=0x6000 + i)
        dt.connect(PairTransport(shared), rx.getsockname())
        stream.attach(dt, at_keyframe=False)
        attached[i] = (dt, rx, outgoing)

    def leave(i: int) -> None:
        dt, rx, _ = attached.pop(i)
        dt.close()
        assert nothing_more(rx)  # nothing sent to a subscriber after it left
        rx.close()

    def everyone_gets(seq: int) -> None:
        stream.push(make_packet(b"opus" * 10, seq, seq * 960, False), seq, seq * 960, False, False)
        for i, (_, rx, _) in attached.items():
            packet = session("aes-gcm").unprotect(rx.recv(4096))
            assert struct.unpack_from("!I", packet, 8)[0] == 0x6000 + i

    for i in range(40):  # past the array's first sizes
        join(i)
    everyone_gets(1)
    for i in (0, 39, 17, 5, 6, 38):  # the first row, the last, and rows between
        leave(i)
        everyone_gets(2 + i)
    for i in range(40, 45):
        join(i)
    everyone_gets(100)
    for i in list(attached):
        leave(i)
    everyone_gets(101)
    assert stream.send_errors == 0
    shared.close()


@compiled
async def test_a_subscriber_whose_peer_is_gone_costs_the_others_nothing():
    stream = PacketStream("audio", "t/audio", clock_rate=48000, fanout="compiled")
    receivers, downtracks, keep = [], [], []
    for i in range(3):
        rx = receiving_socket()
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        dt, outgoing = downtrack("audio", ssrc=0x7000 + i)
        dt.connect(PairTransport(tx), rx.getsockname())
        stream.attach(dt, at_keyframe=False)
        receivers.append(rx)
        downtracks.append(dt)
        keep += [tx, outgoing]
    receivers[1].close()  # the kernel answers its next datagram with port unreachable
    for seq in range(1, 6):
        stream.push(make_packet(b"x" * 80, seq, seq * 960, False), seq, seq * 960, False, False)
    assert stream.send_errors >= 1  # counted, not raised
    for rx in (receivers[0], receivers[2]):
        assert len(received(rx, 5)) == 5
        rx.close()
    fds = len(os.listdir("/proc/self/fd"))
    for dt in downtracks:
        dt.close()  # each gives back its duplicate of the peer's socket
    assert len(os.listdir("/proc/self/fd")) == fds - 3
    for tx in keep[::2]:
        tx.close()


async def test_a_node_without_the_compiled_module_forwards_with_the_python_loop(monkeypatch, caplog):
    monkeypatch.setattr(fanout, "lib", None)  # as on a tree where ``make install`` did not build it
    assert fanout.resolve("compiled") == "python"
    assert "not built" in caplog.text
    rx = receiving_socket()
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dt, _outgoing = downtrack("audio")
    dt.connect(PairTransport(tx), rx.getsockname())
    stream = PacketStream("audio", "t/audio", clock_rate=48000, fanout="compiled")
    stream.attach(dt, at_keyframe=False)
    assert stream._fanout is None
    stream.push(make_packet(b"x" * 80, 1, 960, True), 1, 960, True, False)
    assert len(received(rx, 1)) == 1 and stream.send_errors == 0
    dt.close()
    tx.close()
    rx.close()


@compiled
@pytest.mark.skipif(FANOUT != "compiled", reason="the node under test runs the Python loop")
async def test_a_node_sends_media_with_the_compiled_loop_on_its_shared_socket(sfu):
    async with receiving_subscriber(sfu) as subscriber:
        for dt in (subscriber.video, subscriber.audio):
            assert dt.sock is not None and dt.sock.fileno() == sfu.node.udp.sock.fileno() and dt.dest == dt.addr
            assert dt.srtp_out.own  # the AES-GCM session aiortc negotiated, protected by sfu/_srtp_out.c
        metrics = (await sfu.http.get(f"{sfu.base}/metrics")).text
        counters = {line.split()[0]: float(line.split()[1]) for line in metrics.splitlines() if line.startswith("vcs_sfu_fanout_")}
        assert counters["vcs_sfu_fanout_messages_total"] >= counters["vcs_sfu_fanout_sendmmsg_total"] > 0


async def test_a_node_told_to_leave_srtp_to_libsrtp_delivers_as_well(node_factory):
    sfu = await node_factory(small_config(srtp="libsrtp"))
    async with receiving_subscriber(sfu) as subscriber:
        assert not subscriber.video.srtp_out.own and not subscriber.audio.srtp_out.own


@contextlib.asynccontextmanager
async def receiving_subscriber(sfu):  # type: ignore[no-untyped-def]
    """The host publishes on ``sfu``, a commune subscribes; yields the node's ``Subscriber`` once
    the commune has decoded video and audio from it."""
    pub = await publish_scene(sfu)
    sub = await subscribe(sfu.http, f"{sfu.base}/whep/r1", sfu.token("r1", "commune-1", "subscribe"), decode=True)
    try:
        await recv_frames(track_of(sub, "video"), 5)
        await recv_frames(track_of(sub, "audio"), 5)
        [subscriber] = sfu.node.room("r1").subscribers.values()
        yield subscriber
    finally:
        await sub.close()
        await pub.close()
