"""Where ICE may gather and which peers it may talk to.

aioice gathers host candidates on every interface except loopback, and the
choice is made by a module-level function, so restricting it is process-wide:
``restrict_host_addresses`` is called once by whoever owns the process (the
node on start, the benchmark's processes, the tests). ``guard_connection``
keeps one connection from answering STUN checks from outside the allowed
networks, and ``filter_candidates`` drops such candidates from an offer.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import aioice.ice
from aiortc import RTCPeerConnection

from rtc.aiortc_adapter import ice_connection

__all__ = ["filter_candidates", "guard_peer", "restrict_host_addresses"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


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


def filter_candidates(sdp: str, networks: Sequence[_Network]) -> str:
    """Remove ``a=candidate`` lines whose address is outside ``networks``."""
    if not networks:
        return sdp
    kept = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            parts = line.split()
            if len(parts) < 6 or not address_allowed(parts[4], networks):
                continue
        kept.append(line)
    return "\r\n".join(kept) + "\r\n"


def guard_peer(pc: RTCPeerConnection, networks: Sequence[_Network]) -> None:
    """Ignore STUN requests from outside ``networks`` on every ICE connection."""
    if not networks:
        return
    seen = set()
    for transceiver in pc.getTransceivers():
        connection = ice_connection(transceiver.receiver.transport)
        if id(connection) in seen:
            continue
        seen.add(id(connection))
        original = connection.request_received

        def request_received(message, addr, protocol, _original=original):  # type: ignore[no-untyped-def]
            if address_allowed(addr[0], networks):
                _original(message, addr, protocol)

        connection.request_received = request_received
