"""The benchmark's peer processes: one publisher, many subscribers.

Run as ``python -m sfu.bench_peers publish|subscribe ...`` by ``sfu.bench``.

Both negotiate with the project's WHIP/WHEP client (`rtc.whip_client`). Most
subscribers are sinks (`SinkSubscriber`): real ICE, DTLS, SRTCP and consent
through aiortc, so the node sees real peers, but their SRTP is dropped and
counted in the kernel (`sfu.bench_sink`) and costs this process nothing. They
send no receiver reports and no transport-cc feedback: the node gives them
their profile's tier and never hears of loss from them. A sample of them (`--sample-every K`: the i-th of a
process when i % K == 0, and at least two per process) are full counting
subscribers (`CountingSubscriber`): the nominated socket's datagram handler
authenticates and decrypts each SRTP packet with the connection's own SRTP
session and counts it per SSRC, sequence gaps (loss) and frames included,
and sends an RTCP receiver report per second from those counts, so the node
sees real loss and RTT, and transport-cc feedback every 100 ms as the
project's receivers do (`rtc.transport_feedback`). A subscriber that cannot join is reported as
receiving nothing. Like every endpoint process of the project, the peers read
UDP in batches and check consent tolerantly of their own loop's lag
(`rtc.consent.tolerate_load`).

The subscribe process prints ``READY n`` (n joined), then answers lines on
stdin: ``START`` / ``STOP`` (``STOP`` prints one JSON line, a row per
subscriber over the window), ``TOTALS`` (a JSON line: each sink's identity and
SRTP packets since before its DTLS handshake, for comparison with what the
node says it sent) and ``EXIT``. The publisher sends `rtc.synthetic_media`'s
scene encoded once (`VideoLoop`) and its Opus tone until ``STOP`` (it then
leaves the room and prints ``STOPPED``) or ``EXIT``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

import httpx
import pylibsrtp
from aiortc.codecs import is_rtx
from aiortc.rtp import RtcpPacket, RtcpReceiverInfo, RtcpRrPacket, RtcpSrPacket

from rtc.aiortc_adapter import ReusableCertificate, defer_bitrate_estimators, local_sockets, nominated_pair, replace_rtcp_handler, rx_srtp, send_rtcp_packet, sender_ssrcs, transceiver_codecs
from rtc.consent import tolerate_load
from rtc.ice import restrict_host_addresses
from rtc.synthetic_media import AudioPattern, VideoLoop
from rtc.whip_client import MediaError, MediaSession, publish, subscribe
from vcs.media_tokens import mint_media_token

from .bench_sink import attach_srtp_counter, udp_drops

__all__ = ["CountingSubscriber", "SinkSubscriber", "main"]

SECRET_ENV = "VCS_BENCH_SECRET"
CONNECT_WAIT_S = 120.0  # ICE and DTLS of one subscriber, on a machine busy with a join storm
JOIN_WAIT_S = 600.0  # how long a subscriber keeps asking a node that answers 503 / 429
MIN_SAMPLED = 2  # full counting subscribers per process, whatever --sample-every says
HTTP_CONNECTIONS = 16  # per subscriber process


class CountingSubscriber:
    """A WHEP session whose SRTP packets are counted at the socket, before aiortc sees them."""

    sink = False

    def __init__(self, session: MediaSession) -> None:
        self.session = session
        self.pc = session.pc
        self.streams: dict[int, list[int]] = {}  # ssrc -> [max_ext_seq, received, octets]
        self.first_seq: dict[int, int] = {}  # ssrc -> its first packet's sequence number
        self.rtx_packets = 0
        self.auth_failures = 0
        self.replays = 0
        self.video_frames = 0
        self._rtx_pts: set[int] = set()
        self._lsr: dict[int, tuple[int, float]] = {}
        self._prior: dict[int, tuple[int, int]] = {}
        self._dtls: Any = None
        self._rtcp_ssrc = 0
        self._task: asyncio.Task | None = None

    def install(self) -> bool:
        transceivers = self.pc.getTransceivers()
        dtls = transceivers[0].receiver.transport
        pair = nominated_pair(dtls)
        session = rx_srtp(dtls)
        if session is None or pair is None:
            return False
        self._dtls = dtls
        self._rtcp_ssrc, _ = sender_ssrcs(transceivers[0].sender)
        video_pts = set()
        for t in transceivers:
            codecs = transceiver_codecs(t)
            self._rtx_pts.update(c.payloadType for c in codecs if is_rtx(c))
            if t.kind == "video":
                video_pts.update(c.payloadType for c in codecs if not is_rtx(c))
        video_marked = {pt | 0x80 for pt in video_pts}
        protocol = pair.protocol
        original = protocol.datagram_received
        unprotect = session.unprotect
        streams = self.streams
        rtx_pts = self._rtx_pts

        def datagram_received(data: bytes, addr: Any) -> None:
            if len(data) >= 12 and 127 < data[0] < 192 and not 191 < data[1] < 209:
                try:
                    plain = unprotect(data)
                except pylibsrtp.Error as exc:
                    # a packet sent twice on purpose (audio repeated when the RTT looks long, as on a loaded
                    # machine) fails libsrtp's replay check: not a failure of the SRTP the node wrote
                    if "replay" in str(exc):
                        self.replays += 1
                    else:
                        self.auth_failures += 1
                    return
                if plain[1] & 0x7F in rtx_pts:
                    self.rtx_packets += 1
                    return
                if plain[1] in video_marked:
                    self.video_frames += 1
                ssrc = int.from_bytes(plain[8:12], "big")
                seq = (plain[2] << 8) | plain[3]
                stream = streams.get(ssrc)
                # payload bytes: after the 12-byte header and, when present, its extension block
                size = len(plain) - (16 + 4 * ((plain[14] << 8) | plain[15]) if plain[0] & 0x10 else 12)
                if stream is None:
                    streams[ssrc] = [seq, 1, size]
                    self.first_seq[ssrc] = seq
                    return
                delta = (seq - stream[0]) & 0xFFFF
                if delta < 0x8000:
                    stream[0] += delta
                stream[1] += 1
                stream[2] += size
                return
            original(data, addr)

        protocol.datagram_received = datagram_received
        def noting_sender_reports(handle_rtcp):  # type: ignore[no-untyped-def]
            async def handle_rtcp_data(data: bytes) -> None:
                try:
                    for packet in RtcpPacket.parse(data):
                        if isinstance(packet, RtcpSrPacket):
                            lsr = (packet.sender_info.ntp_timestamp >> 16) & 0xFFFFFFFF
                            self._lsr[packet.ssrc] = (lsr, time.time())
                except ValueError:
                    pass
                await handle_rtcp(data)

            return handle_rtcp_data

        replace_rtcp_handler(dtls, noting_sender_reports)
        self._task = asyncio.create_task(self._run_reports())
        return True

    async def _run_reports(self) -> None:
        try:
            while True:
                await asyncio.sleep(1.0)
                reports = []
                for ssrc, (max_ext, received, _) in list(self.streams.items()):
                    prior_max, prior_received = self._prior.get(ssrc, (max_ext, received))
                    expected = max_ext - prior_max
                    lost = expected - (received - prior_received)
                    fraction = (lost << 8) // expected if expected > 0 and lost > 0 else 0
                    self._prior[ssrc] = (max_ext, received)
                    lsr, at = self._lsr.get(ssrc, (0, 0.0))
                    reports.append(
                        RtcpReceiverInfo(
                            ssrc=ssrc,
                            fraction_lost=min(255, fraction),
                            packets_lost=0,
                            highest_sequence=max_ext & 0xFFFFFFFF,
                            jitter=0,
                            lsr=lsr,
                            dlsr=int((time.time() - at) * 65536) if lsr else 0,
                        )
                    )
                if reports:
                    await send_rtcp_packet(self._dtls, bytes(RtcpRrPacket(ssrc=self._rtcp_ssrc, reports=reports)))
        except (asyncio.CancelledError, ConnectionError):
            pass

    def snapshot(self) -> dict[int | str, tuple[int, int, int]]:
        counts: dict[int | str, tuple[int, int, int]] = {ssrc: (s[0], s[1], s[2]) for ssrc, s in self.streams.items()}
        counts["frames"] = (self.video_frames, 0, 0)
        return counts

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.session.close()


class SinkSubscriber:
    """A WHEP session whose SRTP the kernel drops and counts (`sfu.bench_sink`); aiortc sees the rest."""

    sink = True

    def __init__(self, session: MediaSession, identity: str) -> None:
        self.session = session
        self.pc = session.pc
        self.identity = identity
        # before any await after the answer: DTLS has not begun, so no SRTP has arrived uncounted
        dtls = session.pc.getTransceivers()[0].receiver.transport
        self.inodes = {attach_srtp_counter(sock) for sock in local_sockets(dtls)}

    def install(self) -> bool:
        return True

    def count(self, drops: dict[int, int]) -> int:
        """SRTP datagrams received so far, given `udp_drops()` of this process's sockets."""
        return sum(drops.get(inode, 0) for inode in self.inodes)

    async def close(self) -> None:
        await self.session.close()


async def _connect(
    http: httpx.AsyncClient,
    url: str,
    token: str,
    max_tier: str | None = None,
    *,
    identity: str = "",
    sink: bool = False,
    certificate: ReusableCertificate | None = None,
) -> CountingSubscriber | SinkSubscriber:
    deadline = time.monotonic() + JOIN_WAIT_S
    attempt = 0
    while True:
        try:
            # a sink's SRTP never reaches its process: it offers no transport-cc, having no arrivals to report
            session = await subscribe(http, url, token, max_tier=max_tier, certificate=certificate, transport_cc=not sink)
            break
        except MediaError as exc:
            if exc.status not in (429, 503, None):  # None: no answer in time, from a node busy with handshakes
                raise RuntimeError(f"WHEP refused: {exc}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"WHEP kept refusing for {JOIN_WAIT_S:.0f} s: {exc}") from None
            # the node is busy: come back when it says, else back off
            await asyncio.sleep(exc.retry_after if exc.retry_after is not None else min(5.0, 0.2 + 0.1 * attempt))
            attempt += 1
    sub: CountingSubscriber | SinkSubscriber = SinkSubscriber(session, identity) if sink else CountingSubscriber(session)
    deadline = time.monotonic() + CONNECT_WAIT_S
    while time.monotonic() < deadline:
        if session.pc.connectionState == "connected" and sub.install():
            return sub
        await asyncio.sleep(0.1)
    await session.close()
    raise RuntimeError(f"subscriber did not connect within {CONNECT_WAIT_S:.0f} s")


async def run_subscribers(
    base: str,
    room: str,
    identities: list[str],
    concurrency: int,
    max_tiers: list[str] | None = None,
    sample_every: int = 1,
) -> None:
    """One subscriber per identity; the i-th asks for at most `max_tiers[i % len(max_tiers)]` and is a
    full counting one when i % `sample_every` == 0 or i < MIN_SAMPLED, a sink otherwise."""
    secret = os.environ[SECRET_ENV]
    url = f"{base}/whep/{room}"
    limiter = asyncio.Semaphore(concurrency)
    # one DTLS certificate for the process's subscribers, as the node has one for its peers: the join
    # storm measures the node's handshakes, not this process making a key and an SSL context per peer
    certificate = ReusableCertificate.generateCertificate()
    # a few kept-alive connections carry the process's requests: httpx's pool scans every connection
    # whenever one is released, so hundreds of them cost this process more than its joins
    limits = httpx.Limits(max_connections=min(concurrency, HTTP_CONNECTIONS), max_keepalive_connections=HTTP_CONNECTIONS)
    async with httpx.AsyncClient(timeout=httpx.Timeout(30, pool=JOIN_WAIT_S), limits=limits) as http:

        async def one(i: int, identity: str) -> CountingSubscriber | SinkSubscriber | None:
            """None when it cannot join: it is reported as receiving nothing, the run goes on."""
            token = mint_media_token(secret, room=room, identity=identity, role="subscribe", ttl=3600)
            sink = i % sample_every != 0 and i >= MIN_SAMPLED
            async with limiter:
                try:
                    max_tier = max_tiers[i % len(max_tiers)] if max_tiers else None
                    return await _connect(http, url, token, max_tier, identity=identity, sink=sink, certificate=certificate)
                except RuntimeError as exc:
                    print(f"subscriber {identity}: {exc}", file=sys.stderr, flush=True)
                    return None

        subs = await asyncio.gather(*(one(i, identity) for i, identity in enumerate(identities)))
        sinks = [s for s in subs if isinstance(s, SinkSubscriber)]
        inodes = {inode for s in sinks for inode in s.inodes}
        print(f"READY {sum(1 for s in subs if s)}", flush=True)
        reader = asyncio.StreamReader()
        await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        start: list[Any] = []
        t0 = time.monotonic()
        while True:
            line = (await reader.readline()).decode().strip()
            if line == "START":
                drops = udp_drops(inodes)
                start = [_snapshot(s, drops) for s in subs]
                t0 = time.monotonic()
            elif line == "STOP":
                drops = udp_drops(inodes)
                elapsed = time.monotonic() - t0
                rows = [_window_row(s, before, drops, elapsed) for s, before in zip(subs, start or [None] * len(subs))]
                print(json.dumps(rows), flush=True)
            elif line == "TOTALS":
                drops = udp_drops(inodes)
                print(json.dumps({"sinks": {s.identity: s.count(drops) for s in sinks}}), flush=True)
            elif line in ("EXIT", ""):
                break
        await asyncio.gather(*(s.close() for s in subs if s), return_exceptions=True)


def _snapshot(sub: CountingSubscriber | SinkSubscriber | None, drops: dict[int, int]) -> Any:
    if sub is None:
        return None
    return sub.count(drops) if isinstance(sub, SinkSubscriber) else sub.snapshot()


def _window_row(sub: CountingSubscriber | SinkSubscriber | None, before: Any, drops: dict[int, int], elapsed: float) -> dict:
    """What one subscriber received over the window; a sink knows only its packet count."""
    if sub is None:
        return {"expected": 0, "received": 0, "kbps": 0.0, "fps": 0.0, "auth_failures": 0, "replays": 0, "rtx": 0, "joined": False}
    if isinstance(sub, SinkSubscriber):
        received = sub.count(drops) - (before or 0)
        return {"sink": True, "identity": sub.identity, "received": received, "joined": True}
    before = before or {}
    after = sub.snapshot()
    expected = received = octets = 0
    frames = after.pop("frames")[0] - before.get("frames", (0, 0, 0))[0]
    for ssrc, (max_ext, got, size) in after.items():
        # a stream that began in the window (a late join) counts from its first packet
        b = before.get(ssrc) or (sub.first_seq[ssrc] - 1, 0, 0)
        expected += max_ext - b[0]
        received += got - b[1]
        octets += size - b[2]
    return {
        "expected": expected,
        "received": received,
        "kbps": octets * 8 / elapsed / 1000,
        "fps": frames / elapsed,
        "auth_failures": sub.auth_failures,
        "replays": sub.replays,
        "rtx": sub.rtx_packets,
        "joined": True,
    }


async def run_publisher(base: str, room: str, kbps: int, width: int, height: int) -> None:
    secret = os.environ[SECRET_ENV]
    video, audio = VideoLoop(width, height, bitrate_kbps=kbps, fps=30), AudioPattern()
    token = mint_media_token(secret, room=room, identity="bench-studio", role="publish", ttl=3600, host=True)
    await video.start()
    await audio.start()
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            session = await publish(http, f"{base}/whip/{room}", token, [audio.track(muted=False), video.track()])
            print("READY 1", flush=True)
            reader = asyncio.StreamReader()
            await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
            while (line := (await reader.readline()).decode().strip()) not in ("EXIT", ""):
                if line == "STOP":  # leave the room: the node's counts stop so they can be compared with the sinks'
                    await session.close()
                    print("STOPPED", flush=True)
            await session.close()
    finally:
        await video.stop()
        await audio.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sfu.bench_peers")
    parser.add_argument("mode", choices=["publish", "subscribe"])
    parser.add_argument("--base", required=True)
    parser.add_argument("--room", default="bench")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--prefix", default="bench-sub")
    parser.add_argument("--identities", help="subscribe as these endpoint ids (comma list) instead of PREFIX-0..COUNT-1")
    parser.add_argument("--max-tiers", help="comma list of tiers, given to the subscribers in turn as ?max_tier=")
    parser.add_argument("--concurrency", type=int, default=8, help="subscribers negotiating at once")
    parser.add_argument("--sample-every", type=int, default=1, help="every K-th subscriber counts in full, the others are sinks")
    parser.add_argument("--kbps", type=int, default=500)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    args = parser.parse_args(argv)
    restrict_host_addresses(["127.0.0.1"])
    defer_bitrate_estimators()  # a sink's receivers never see a packet: no REMB estimator built for each
    # as every endpoint process of the project does: a peer of a lagging bench process would
    # otherwise lose consent some forty seconds after joining, and the run count it as receiving nothing
    tolerate_load()
    if args.mode == "publish":
        asyncio.run(run_publisher(args.base, args.room, args.kbps, args.width, args.height))
    else:
        identities = args.identities.split(",") if args.identities else [f"{args.prefix}-{i}" for i in range(args.count)]
        max_tiers = args.max_tiers.split(",") if args.max_tiers else None
        asyncio.run(run_subscribers(args.base, args.room, identities, args.concurrency, max_tiers, max(1, args.sample_every)))


if __name__ == "__main__":
    main()
