"""The node's one UDP socket: real aiortc peers on one port, demultiplexed by remote address."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import struct

import pytest

from rtc.aiortc_adapter import ice_connections, nominated_pair
from rtc.whip_client import subscribe
from sfu.config import SfuConfig, parse_udp_port
from tests.waiting import eventually, scaled

from .conftest import free_port, small_config
from .conftest import publish_scene as host_publishes

ROOM = "r1"


async def _subscribers(sfu, count: int) -> list:
    return [await subscribe(sfu.http, f"{sfu.base}/whep/{ROOM}", sfu.token(ROOM, f"commune-{i}", "subscribe")) for i in range(count)]


async def _all_receiving(sessions, frames: int = 10) -> None:
    for session in sessions:
        await eventually(lambda s=session: s.counters["video"].frames >= frames and s.counters["audio"].packets >= frames,
                         timeout=20, what="video and audio at every subscriber")  # fmt: skip


def _node_protocols(node) -> list:
    """Every ICE protocol (socket, or view of the shared one) of every peer the node answered."""
    return [p for r in node.resources.values() for c in ice_connections(r.peer.pc) for p in c._protocols]


def _local_addr(session) -> tuple[str, int]:
    """Where a client's media comes from: its nominated pair's local address."""
    pair = nominated_pair(session.pc.getTransceivers()[0].receiver.transport)
    return pair.local_addr


def _stun_request(ufrag: str, password: str = "x" * 22) -> bytes:
    """A Binding request naming `ufrag`, signed with a password that is not the peer's."""
    from aioice import stun

    message = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    message.attributes["USERNAME"] = f"{ufrag}:evil"
    message.attributes["PRIORITY"] = 1
    message.add_message_integrity(password.encode())
    return bytes(message)


def _garbage(rng: random.Random) -> bytes:
    """Random bytes; some look like STUN (a cookie, a ufrag nobody has), some like a DTLS record."""
    kind = rng.randrange(4)
    if kind == 0:
        return os.urandom(rng.randrange(1, 300))
    if kind == 1:
        return _stun_request("nobodyhere")
    if kind == 2:  # a DTLS ClientHello record header and junk
        return b"\x16\xfe\xfd" + os.urandom(rng.randrange(10, 200))
    return bytes([rng.choice([0, 1, 2, 3, 128, 144, 200])]) + os.urandom(rng.randrange(20, 200))


async def test_publisher_and_subscribers_share_one_socket_and_all_receive(sfu):
    udp = sfu.node.udp
    assert udp is not None and udp.sock.shared
    pub = await host_publishes(sfu)
    subs = await _subscribers(sfu, 3)
    try:
        await _all_receiving(subs)
        # the answer offered the shared port, and ICE settled on it
        for session in [pub, *subs]:
            assert f" {udp.port} typ host" in session.pc.remoteDescription.sdp
        assert udp.peers == 4
        # no peer of the node has a socket of its own: one protocol each, all on the shared socket
        protocols = _node_protocols(sfu.node)
        assert len(protocols) == 4
        for protocol in protocols:
            assert protocol.transport.get_extra_info("socket") is udp.sock
            assert not hasattr(protocol.transport, "_sock")  # the fan-out sends with sendto on the shared socket
        for resource in sfu.node.resources.values():
            pair = nominated_pair(resource.peer.pc.getTransceivers()[0].receiver.transport)
            assert pair.protocol.transport.get_extra_info("socket").shared
        # every client's address is its own peer's
        for session in [pub, *subs]:
            assert udp.owner(_local_addr(session)) is not None
        assert len({udp.owner(_local_addr(s)) for s in [pub, *subs]}) == 4
        metrics = (await sfu.http.get(f"{sfu.base}/metrics")).text
        assert 'vcs_sfu_udp_peers{node="sfu-test"} 4' in metrics
        assert 'vcs_sfu_udp_dropped_total{reason="unknown_address"}' in metrics
    finally:
        for session in [*subs, pub]:
            await session.close()


async def test_garbage_from_another_address_never_reaches_a_peer_and_costs_the_others_nothing(sfu):
    udp = sfu.node.udp
    pub = await host_publishes(sfu)
    subs = await _subscribers(sfu, 2)
    attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    attacker.bind(("127.0.0.1", 0))
    attacker.setblocking(False)
    seen: list[tuple[str, int]] = []
    try:
        await _all_receiving(subs)
        for protocol in _node_protocols(sfu.node):  # record where every datagram a peer handles comes from
            protocol.datagram_received = lambda data, addr, _original=protocol.datagram_received: (seen.append(addr), _original(data, addr))
        before = {s: (s.counters["video"].media_packets, s.counters["video"].lost, s.counters["audio"].lost) for s in subs}
        dropped_before = sum(udp.dropped.values())
        rng = random.Random(14)
        sent = 0
        for _ in range(40):  # 2,000 datagrams, in bursts the loop reads between
            for _ in range(50):
                attacker.sendto(_garbage(rng), udp.address)
                sent += 1
            await asyncio.sleep(0)  # the loop's turn to read the burst
        await eventually(lambda: sum(udp.dropped.values()) - dropped_before == sent, what="every datagram dropped and counted")
        assert attacker.getsockname() not in seen
        with pytest.raises(BlockingIOError):  # nothing answered: no peer saw a thing
            attacker.recv(2048)
        # the subscribers went on receiving, without loss
        await eventually(lambda: all(s.counters["video"].media_packets > before[s][0] + 30 for s in subs), what="more media")
        for session in subs:
            assert (session.counters["video"].lost, session.counters["audio"].lost) == before[session][1:]
    finally:
        attacker.close()
        for session in [*subs, pub]:
            await session.close()


async def test_a_stun_flood_naming_a_peer_reaches_only_that_peer_within_its_budget(sfu):
    udp = sfu.node.udp
    pub = await host_publishes(sfu)
    subs = await _subscribers(sfu, 2)
    attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    attacker.bind(("127.0.0.1", 0))
    try:
        await _all_receiving(subs)
        target = next(r for r in sfu.node.resources.values() if r.identity == "commune-0")
        ufrag = ice_connections(target.peer.pc)[0].local_username
        # one forged check: it reaches the peer, which refuses it (401), and the address is not learned
        attacker.sendto(_stun_request(ufrag), udp.address)
        attacker.settimeout(scaled(5))
        reply = await asyncio.get_running_loop().run_in_executor(None, attacker.recv, 2048)
        assert struct.unpack("!H", reply[:2])[0] == 0x0111  # a Binding error response
        assert b"Unauthenticated" in reply
        # a flood of them: the peer takes its budget's worth, the rest is dropped, the others do not notice
        before = {s: (s.counters["video"].media_packets, s.counters["video"].lost) for s in subs}
        over = udp.dropped["over_budget"]
        for _ in range(20):
            for _ in range(50):
                attacker.sendto(_stun_request(ufrag), udp.address)
            await asyncio.sleep(0)  # the loop's turn to read the burst
        await eventually(lambda: udp.dropped["over_budget"] - over >= 500, what="the flood over the peer's budget dropped")
        assert udp.owner(attacker.getsockname()) is None
        await eventually(lambda: all(s.counters["video"].media_packets > before[s][0] + 30 for s in subs), what="more media")
        assert [s.counters["video"].lost for s in subs] == [before[s][1] for s in subs]
    finally:
        attacker.close()
        for session in [*subs, pub]:
            await session.close()


async def test_a_check_behind_a_backlog_is_read_in_the_same_turn(sfu):
    """A node whose loop turns slowly finds many datagrams waiting: one turn reads them all, so a
    consent check behind a second's worth of its peers' traffic is not left to wait (or be dropped)."""
    udp = sfu.node.udp
    subs = await _subscribers(sfu, 1)
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("127.0.0.1", 0))
    try:
        target = next(r for r in sfu.node.resources.values() if r.identity == "commune-0")
        protocol = ice_connections(target.peer.pc)[0]._protocols[0]
        checks: list[bytes] = []
        protocol.datagram_received = lambda data, addr, _original=protocol.datagram_received: (
            checks.append(data) if data[:2] == b"\x00\x01" else None, _original(data, addr))
        ufrag = ice_connections(target.peer.pc)[0].local_username
        # no await from here to the read: the loop cannot take the backlog in between
        dropped = udp.dropped["unknown_address"]
        for _ in range(1500):  # what a thousand peers send in a second or two: RTCP, media
            other.sendto(b"\x80\x60" + os.urandom(100), udp.address)
        other.sendto(_stun_request(ufrag), udp.address)
        udp._read_ready()  # one turn of the node's loop
        assert udp.dropped["unknown_address"] - dropped == 1500
        assert len(checks) == 1
    finally:
        other.close()
        for session in subs:
            await session.close()


async def test_a_closed_peer_is_forgotten(sfu):
    udp = sfu.node.udp
    pub = await host_publishes(sfu)
    [sub] = await _subscribers(sfu, 1)
    await _all_receiving([sub])
    addr = _local_addr(sub)
    ufrag = ice_connections(next(r for r in sfu.node.resources.values() if r.kind == "whep").peer.pc)[0].local_username
    assert udp.owner(addr) is not None and udp.peers == 2
    await sub.close()
    await eventually(lambda: udp.owner(addr) is None and udp.peers == 1, what="the closed subscriber forgotten")
    # its address and its ufrag now lead nowhere: a datagram from that port, or a check naming it, is dropped
    late = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    late.bind(addr)
    try:
        dropped = dict(udp.dropped)
        late.sendto(b"\x16\xfe\xfd" + os.urandom(40), udp.address)
        late.sendto(_stun_request(ufrag), udp.address)
        await eventually(lambda: udp.dropped["unknown_address"] == dropped["unknown_address"] + 1
                         and udp.dropped["unknown_stun"] == dropped["unknown_stun"] + 1, what="both dropped")  # fmt: skip
    finally:
        late.close()
        await pub.close()


async def test_a_fixed_port_is_the_one_offered(node_factory):
    port = free_port()
    sfu = await node_factory(small_config(udp_port=port))
    pub = await host_publishes(sfu)
    [sub] = await _subscribers(sfu, 1)
    try:
        assert sfu.node.udp.port == port
        await _all_receiving([sub])
        assert f"127.0.0.1 {port} typ host" in sub.pc.remoteDescription.sdp
    finally:
        await sub.close()
        await pub.close()


async def test_off_gives_each_peer_a_socket_of_its_own(node_factory):
    sfu = await node_factory(small_config(udp_port=None))
    assert sfu.node.udp is None
    pub = await host_publishes(sfu)
    subs = await _subscribers(sfu, 2)
    try:
        await _all_receiving(subs)
        sockets = {p.transport.get_extra_info("socket").fileno() for p in _node_protocols(sfu.node)}
        assert len(sockets) == 3
        assert all(not getattr(p.transport.get_extra_info("socket"), "shared", False) for p in _node_protocols(sfu.node))
        info = (await sfu.http.get(f"{sfu.base}/node", headers=sfu.auth("*", "ops", "control"))).json()
        assert info["udp"] is None
    finally:
        for session in [*subs, pub]:
            await session.close()


@pytest.mark.parametrize(
    ("value", "port"), [("", 0), ("auto", 0), ("AUTO", 0), ("off", None), ("5004", 5004), ("0", 0)]
)
def test_udp_port_setting(value, port):
    assert parse_udp_port(value) == port
    config = SfuConfig.from_environ({"VCS_SFU_UDP_PORT": value}, public_url="http://x")
    assert config.udp_port == port


@pytest.mark.parametrize("value", ["70000", "-1", "five", "５００４", "50 04"])
def test_a_bad_udp_port_is_refused_with_its_name(value):
    with pytest.raises(ValueError, match="VCS_SFU_UDP_PORT"):
        SfuConfig.from_environ({"VCS_SFU_UDP_PORT": value}, public_url="http://x")


def test_the_shared_socket_is_the_default():
    assert SfuConfig(public_url="http://x").udp_port == 0
    assert SfuConfig.from_environ({}, public_url="http://x").udp_port == 0
