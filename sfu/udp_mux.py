"""One UDP socket for every peer a node answers, demultiplexed by remote address.

aioice opens sockets of its own for each peer connection; at a thousand
subscribers that is a thousand sockets, a read callback each, and one system
call per subscriber per packet. With one socket per node process, the fan-out
can hand many subscribers' packets to one system call, and the node has one
port to open in a firewall.

A datagram finds its peer by the address it came from; its first byte tells
the protocol (RFC 7983: 0-3 STUN, 20-63 DTLS, 128-191 RTP/RTCP):

- STUN names its peer itself: a Binding request by the ufrag its USERNAME
  begins with (the peer then checks its integrity), a response by the
  transaction of a request the peer sent; failing that, by its address;
- anything else goes to the peer whose address it came from, and through its
  aioice protocol to aiortc (DTLS, SRTP and SRTCP as on a socket of its own);
- the rest (any other byte from an unknown address, STUN for nobody) is
  dropped and counted (``dropped``): from an unknown address nothing past the
  first byte of a non-STUN datagram is read.

An address is learned when the peer answers an authenticated check from it
(the request carried the peer's ufrag and passed its integrity check) or a
check to it succeeds, and forgotten when the peer closes. When a check
succeeds from an address another peer holds, the address moves to the newer
peer (``takeovers``): a client's port reused before the node saw the old peer
go. Each peer has a budget of STUN and DTLS datagrams (a token bucket), so a
peer flooding them loses its own excess, not the others' media. Each peer's
local ufrag is made unique on the node.

Only the peers a node answers (WHIP/WHEP) share the socket. The node's own
offers towards an origin (a relay's upstreams and uplinks) keep a socket
each: on the origin they would otherwise all come from one address, the very
thing the origin tells its peers apart by.

    mux = UdpMux.open("10.0.0.5", 0)   # bound and reading (inside the event loop)
    mux.attach(pc)                     # after setRemoteDescription, before the answer
    mux.close()
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import socket
from typing import Any

import aioice.ice
from aioice.candidate import Candidate, candidate_foundation, candidate_priority
from aioice.ice import StunProtocol
from aiortc import RTCPeerConnection

from rtc.aiortc_adapter import ice_connections, on_pair_succeeded, replace_host_gathering, replace_local_ufrag
from rtc.ice import CheckPacer

__all__ = ["DROP_REASONS", "PeerTransport", "SharedSocket", "UdpMux", "open_shared_socket"]

log = logging.getLogger(__name__)

# datagrams read in one loop turn: the one socket carries every peer's datagrams, so a turn must take in
# what all of them sent meanwhile. 64 (what a peer's own socket gets, rtc.udp_reader) let a node of 1,000
# peers whose loop turned slowly (its CPU shared with other work) fall behind: its queue grew to 7 MB, the
# kernel dropped what came next, and consent checks waited behind it until the peers gave up on the node.
READ_BATCH = 2048
MAX_DATAGRAM = 65535
SOCKET_BUFFER = 4 * 1024 * 1024  # bytes each way: a frame's burst to every subscriber (the kernel may cap it)
BUDGET_PER_S = 50.0  # STUN and DTLS datagrams a peer may send on average: checks, consent, a handshake
BUDGET_BURST = 200  # ... and at once
MAX_PENDING_CHECKS = 64  # a peer's STUN requests awaiting their response (checks and consent, paced by rtc.ice)

STUN_MAGIC = b"\x21\x12\xa4\x42"
STUN_BINDING_REQUEST = 0x0001
STUN_CLASS_MASK = 0x0110
STUN_RESPONSE_CLASSES = (0x0100, 0x0110)  # success and error responses
STUN_USERNAME = 0x0006

DROP_REASONS = ("unknown_address", "unknown_stun", "over_budget")


def open_shared_socket(port: int | None) -> UdpMux | None:
    """The node's shared socket on ``port`` (0: ephemeral) at its first IPv4 host address; None when ``port`` is None.

    ICE offers one host candidate, on the address the socket is bound to (the
    first aioice would gather on: ``VCS_SFU_ICE_HOSTS`` names it). A node without
    an IPv4 address falls back to a socket per peer, as ICE would otherwise have no candidate.
    """
    if port is None:
        return None
    # looked up now: rtc.ice.restrict_host_addresses replaces aioice's function
    hosts = [h for h in aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False) if ipaddress.ip_address(h).version == 4]
    if not hosts:
        log.warning("no IPv4 address to bind the shared UDP socket to: each peer gets a socket of its own")
        return None
    if len(hosts) > 1:
        log.info("shared UDP socket: offering %s only, of %s (VCS_SFU_ICE_HOSTS chooses)", hosts[0], ", ".join(hosts))
    try:
        mux = UdpMux.open(hosts[0], port)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot bind the shared UDP socket to {hosts[0]}:{port}: {exc.strerror}") from None
    log.info("peers share the UDP socket %s:%d", *mux.address)
    return mux


class SharedSocket(socket.socket):
    """The node's one UDP socket; ``shared`` tells the fan-out it is not connected to any one peer."""

    shared = True


class _Peer:
    __slots__ = ("ufrag", "protocol", "budget", "addresses", "checks")

    def __init__(self, ufrag: bytes, protocol: StunProtocol) -> None:
        self.ufrag = ufrag
        self.protocol = protocol
        self.budget = CheckPacer(rate=BUDGET_PER_S, burst=BUDGET_BURST)
        self.addresses: set[tuple[str, int]] = set()
        self.checks: dict[bytes, bytes] = {}  # transaction ids of its STUN requests awaiting an answer, oldest first


class PeerTransport(asyncio.DatagramTransport):
    """One peer's view of the shared socket: what its aioice protocol sends on and closes."""

    def __init__(self, mux: UdpMux, peer: _Peer) -> None:
        super().__init__()
        self._mux = mux
        self._peer = peer
        self._closing = False

    def sendto(self, data: Any, addr: Any = None) -> None:
        if not self._closing:
            self._mux.send(self._peer, data, addr)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "socket":
            return self._mux.sock
        if name == "sockname":
            return self._mux.address
        return default

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._mux.forget(self._peer)
        self._mux.loop.call_soon(self._peer.protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()


class UdpMux:
    """The node's shared UDP socket and the table of which remote address is which peer."""

    def __init__(self, sock: SharedSocket, loop: asyncio.AbstractEventLoop) -> None:
        self.sock = sock
        self.loop = loop
        self.address: tuple[str, int] = sock.getsockname()[:2]
        self.dropped = dict.fromkeys(DROP_REASONS, 0)
        self.takeovers = 0  # addresses a peer's check won from the peer that held them
        self.send_errors = 0  # datagrams the kernel refused (buffer full, unreachable)
        self._by_address: dict[tuple[str, int], _Peer] = {}
        self._by_ufrag: dict[bytes, _Peer] = {}
        self._checks: dict[bytes, _Peer] = {}  # transaction id => the peer that sent that STUN request, until answered
        self._closed = False
        loop.add_reader(sock.fileno(), self._read_ready)

    @classmethod
    def open(cls, host: str, port: int = 0) -> UdpMux:
        """Bind ``host:port`` (0: an ephemeral port) and start reading; OSError when it cannot be bound."""
        sock = SharedSocket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
            sock.bind((host, port))
            return cls(sock, asyncio.get_running_loop())
        except BaseException:
            sock.close()
            raise

    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def peers(self) -> int:
        return len(self._by_ufrag)

    @property
    def addresses(self) -> int:
        return len(self._by_address)

    def owner(self, addr: tuple[str, int]) -> StunProtocol | None:
        """The protocol of the peer `addr` belongs to, if any."""
        peer = self._by_address.get(addr)
        return peer.protocol if peer is not None else None

    def close(self) -> None:
        """Stop reading, close every peer's transport, close the socket. Safe twice."""
        if self._closed:
            return
        self._closed = True
        self.loop.remove_reader(self.sock.fileno())
        for peer in list(self._by_ufrag.values()):
            peer.protocol.transport.close()
        self.sock.close()

    # peers -----------------------------------------------------------------

    def attach(self, pc: RTCPeerConnection) -> None:
        """Put `pc`'s ICE on the shared socket: call after setRemoteDescription (bundling done), before the answer."""
        if self._closed:
            raise RuntimeError("the shared UDP socket is closed")
        for connection in ice_connections(pc):
            ufrag = connection.local_username
            while ufrag.encode() in self._by_ufrag:
                ufrag = secrets.token_hex(4)
            replace_local_ufrag(connection, ufrag)
            protocol = StunProtocol(connection)
            host, port = self.address
            protocol.local_candidate = Candidate(
                foundation=candidate_foundation("host", "udp", host),
                component=1,
                transport="udp",
                priority=candidate_priority(1, "host"),
                host=host,
                port=port,
                type="host",
            )
            peer = _Peer(ufrag.encode(), protocol)
            self._by_ufrag[peer.ufrag] = peer
            protocol.connection_made(PeerTransport(self, peer))
            replace_host_gathering(connection, protocol)
            on_pair_succeeded(connection, lambda pair, peer=peer: self._learn(peer, pair))

    def _learn(self, peer: _Peer, pair: Any) -> None:
        if pair.protocol is peer.protocol:
            self._bind(peer, pair.remote_addr)

    def _bind(self, peer: _Peer, addr: tuple[str, int]) -> None:
        if peer.protocol.transport.is_closing():
            return
        holder = self._by_address.get(addr)
        if holder is not None and holder is not peer:
            # the address passed a check with this peer's credentials just now: the other peer is gone from it
            # (a client's port reused before the node noticed its old peer leave, a NAT's mapping reused)
            holder.addresses.discard(addr)
            self.takeovers += 1
        self._by_address[addr] = peer
        peer.addresses.add(addr)

    def forget(self, peer: _Peer) -> None:
        """The peer closed: its ufrag, addresses and pending checks lead nowhere any more."""
        if self._by_ufrag.get(peer.ufrag) is peer:
            del self._by_ufrag[peer.ufrag]
        for addr in peer.addresses:
            if self._by_address.get(addr) is peer:
                del self._by_address[addr]
        for txid in peer.checks:
            self._checks.pop(txid, None)
        peer.addresses.clear()
        peer.checks.clear()

    # the wire ------------------------------------------------------------------

    def send(self, peer: _Peer, data: Any, addr: tuple[str, int]) -> None:
        if data[:2] == b"\x01\x01":
            # a Binding success response: aioice answers so only a request that carried this peer's ufrag and
            # passed its integrity check, so the address is the peer's. Learnt now, the peer's DTLS hello (sent
            # as soon as the client's own check succeeds) is not dropped while the node's check is under way.
            self._bind(peer, addr)
        elif data[:2] == b"\x00\x01" and len(data) >= 20:  # a Binding request: its response must find this peer
            txid = bytes(data[8:20])
            if txid not in self._checks:
                if len(peer.checks) >= MAX_PENDING_CHECKS:  # the oldest unanswered one is given up
                    self._checks.pop(peer.checks.pop(next(iter(peer.checks))), None)
                peer.checks[txid] = txid
                self._checks[txid] = peer
        try:
            self.sock.sendto(data, addr)
        except OSError:  # the buffer is full (UDP: a lost datagram) or the address is unreachable
            self.send_errors += 1

    def _read_ready(self) -> None:
        recvfrom = self.sock.recvfrom
        for _ in range(READ_BATCH):
            try:
                data, addr = recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # an ICMP error reported on the socket: the next read goes on
                log.debug("shared UDP socket: %s", exc)
                continue
            self.dispatch(data, addr)

    def dispatch(self, data: bytes, addr: tuple[str, int]) -> None:
        """Hand one datagram to its peer, or drop and count it."""
        first = data[0] if data else 255
        if first < 4:  # STUN names its peer itself (a request its ufrag, a response its transaction), else the address does
            peer = self._stun_owner(data) or self._by_address.get(addr)
            if peer is None:
                self.dropped["unknown_stun"] += 1
                return
        else:
            peer = self._by_address.get(addr)
            if peer is None:
                self.dropped["unknown_address"] += 1
                return
        if (first < 4 or 19 < first < 64) and not peer.budget.allow():
            self.dropped["over_budget"] += 1
            return
        peer.protocol.datagram_received(data, addr)

    def _stun_owner(self, data: bytes) -> _Peer | None:
        """The peer a STUN message is for: by the ufrag its USERNAME begins with (a request), its transaction (a response)."""
        if len(data) < 20 or data[4:8] != STUN_MAGIC:
            return None
        kind = int.from_bytes(data[0:2], "big")
        if kind & STUN_CLASS_MASK in STUN_RESPONSE_CLASSES:
            peer = self._checks.pop(data[8:20], None)
            if peer is not None:
                peer.checks.pop(data[8:20], None)
            return peer
        if kind != STUN_BINDING_REQUEST:
            return None
        end = min(len(data), 20 + int.from_bytes(data[2:4], "big"))
        pos = 20
        while pos + 4 <= end:
            attr = int.from_bytes(data[pos : pos + 2], "big")
            size = int.from_bytes(data[pos + 2 : pos + 4], "big")
            if attr == STUN_USERNAME:
                ufrag = data[pos + 4 : min(pos + 4 + size, end)].partition(b":")[0]
                return self._by_ufrag.get(ufrag)
            pos += 4 + size + (-size % 4)
        return None
