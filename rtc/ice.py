"""Where ICE may gather and which peers it may talk to.

aioice gathers host candidates on every interface except loopback, and the
choice is made by a module-level function, so restricting it is process-wide:
``restrict_host_addresses`` is called once by whoever owns the process (the
node on start, the benchmark's processes, the tests). ``guard_peer``
keeps a peer's connections from answering STUN checks from outside the allowed
networks and paces the checks it sends; ``filter_candidates`` refuses an
offer whose candidates are malformed or too many, and drops those outside the
allowed networks, so the node never sends a connectivity check there.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Sequence

import aioice.ice
from aioice import stun
from aiortc import RTCPeerConnection

from rtc.aiortc_adapter import ice_connection

__all__ = ["CandidateRefused", "CheckPacer", "filter_candidates", "guard_peer", "restrict_host_addresses"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_CANDIDATES = 20  # per offer: a browser offers a handful; more only multiplies checks
CHECKS_PER_S = 10.0  # STUN requests one peer's connection may send each second, on average
CHECK_BURST = 20  # ... and at once (aioice starts one check per 20 ms, a request per pair)


class CandidateRefused(ValueError):
    """An offer's candidate line is malformed, or the offer names too many."""


def restrict_host_addresses(addresses: Sequence[str]) -> None:
    """Gather host candidates only on `addresses` (process-wide; empty restores aioice's choice).

    aioice never offers loopback by itself; a deployment on one machine passes ["127.0.0.1"].
    """
    original = getattr(aioice.ice.get_host_addresses, "__wrapped__", aioice.ice.get_host_addresses)
    if not addresses:
        aioice.ice.get_host_addresses = original
        return
    chosen = tuple(addresses)

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        versions = {4: use_ipv4, 6: use_ipv6}
        return [a for a in chosen if versions[ipaddress.ip_address(a).version]]

    get_host_addresses.__wrapped__ = original  # type: ignore[attr-defined]
    aioice.ice.get_host_addresses = get_host_addresses


def parse_networks(networks: Sequence[str]) -> tuple[_Network, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in networks)


def address_allowed(host: str, networks: Sequence[_Network]) -> bool:
    if not networks:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # mDNS names and garbage
    return any(address in net for net in networks)


def filter_candidates(sdp: str, networks: Sequence[_Network], max_candidates: int = MAX_CANDIDATES) -> str:
    """The offer without ``a=candidate`` lines outside ``networks`` (empty: keep all).

    Raises CandidateRefused for a malformed candidate (bad port, address,
    component or priority) or more than ``max_candidates`` of them.
    """
    kept = []
    count = 0
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            count += 1
            if count > max_candidates:
                raise CandidateRefused(f"more than {max_candidates} ICE candidates in one offer")
            host = _check_candidate(line)
            if host is None or not address_allowed(host, networks):
                continue
        kept.append(line)
    return "\r\n".join(kept) + "\r\n"


def _check_candidate(line: str) -> str | None:
    """The candidate's IP address; None for an mDNS name (unresolvable here: dropped); raises if malformed."""
    # a=candidate:foundation component transport priority address port typ type ...
    parts = line[len("a=candidate:") :].split()
    if len(parts) < 8 or parts[6] != "typ":
        raise CandidateRefused(f"malformed candidate line {line[:80]!r}")
    component, transport, priority, host, port = parts[1], parts[2], parts[3], parts[4], parts[5]
    if not _int_within(component, 1, 256):
        raise CandidateRefused(f"candidate component {component[:20]!r} is not 1-256")
    if transport.lower() not in ("udp", "tcp"):
        raise CandidateRefused(f"candidate transport {transport[:20]!r} is not udp or tcp")
    if not _int_within(priority, 0, 2**32 - 1):
        raise CandidateRefused(f"candidate priority {priority[:20]!r} is not 0-4294967295")
    if not _int_within(port, 1, 65535):
        raise CandidateRefused(f"candidate port {port[:20]!r} is not 1-65535")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host.lower().endswith(".local") and len(host) <= 255:
            return None
        raise CandidateRefused(f"candidate address {host[:60]!r} is not an IP address") from None
    return host


def _int_within(text: str, low: int, high: int) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 10 and low <= int(text) <= high


class CheckPacer:
    """A token bucket: at most ``burst`` STUN requests at once, ``rate`` per second on average."""

    def __init__(self, rate: float = CHECKS_PER_S, burst: int = CHECK_BURST, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens = float(burst)
        self.stamp = clock()

    def allow(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


def guard_peer(pc: RTCPeerConnection, networks: Sequence[_Network]) -> None:
    """On every ICE connection: ignore STUN requests from outside ``networks``, pace the requests sent.

    A request over the pace is not sent: to the STUN transaction it is a lost
    packet, retransmitted later, so a hostile offer cannot make the node a
    packet cannon while a normal peer's few checks go out at once.
    """
    seen = set()
    for transceiver in pc.getTransceivers():
        connection = ice_connection(transceiver.receiver.transport)
        if id(connection) in seen:
            continue
        seen.add(id(connection))
        if networks:
            original = connection.request_received

            def request_received(message, addr, protocol, _original=original):  # type: ignore[no-untyped-def]
                if address_allowed(addr[0], networks):
                    _original(message, addr, protocol)

            connection.request_received = request_received
        _pace_requests(connection, CheckPacer())


def _pace_requests(connection, bucket: CheckPacer) -> None:  # type: ignore[no-untyped-def]
    """Wrap the sockets' send_stun once gathered (connect() runs after gathering)."""
    connect = connection.connect

    async def paced_connect() -> None:
        for protocol in connection._protocols:
            send_stun = protocol.send_stun

            def paced_send(message, addr, _send=send_stun):  # type: ignore[no-untyped-def]
                if message.message_class != stun.Class.REQUEST or bucket.allow():
                    _send(message, addr)

            protocol.send_stun = paced_send
        await connect()

    connection.connect = paced_connect
