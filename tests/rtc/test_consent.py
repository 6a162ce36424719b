"""Consent freshness on a busy machine: late answers keep a peer, silence still loses it."""

from __future__ import annotations

import asyncio
import socket
import time

import aioice.ice
import pytest
from aioice import stun

from rtc.consent import consent_counters
from rtc.udp_reader import READ_BATCH
from tests.waiting import eventually, stays


async def connected_pair() -> tuple[aioice.ice.Connection, aioice.ice.Connection]:
    """Two real ICE agents on loopback, connected to each other."""
    a = aioice.ice.Connection(ice_controlling=True)
    b = aioice.ice.Connection(ice_controlling=False)
    await asyncio.gather(a.gather_candidates(), b.gather_candidates())
    for one, other in ((a, b), (b, a)):
        for candidate in other.local_candidates:
            await one.add_remote_candidate(candidate)
        await one.add_remote_candidate(None)
        one.remote_username, one.remote_password = other.local_username, other.local_password
    await asyncio.gather(a.connect(), b.connect())
    return a, b


def answer_late(connection: aioice.ice.Connection, delay: float) -> None:
    """`connection` answers STUN checks `delay` seconds late: a busy peer, a loaded link."""
    loop = asyncio.get_running_loop()
    for protocol in connection._protocols:
        send = protocol.send_stun

        def delayed(message: stun.Message, addr, send=send) -> None:
            if message.message_class == stun.Class.RESPONSE:
                loop.call_later(delay, send, message, addr)
            else:
                send(message, addr)

        protocol.send_stun = delayed


@pytest.fixture
def quick_consent(monkeypatch, loopback_ice) -> float:
    """Consent checked every 0.2 s: lost after 1.2 s of silence instead of 30 s."""
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.2)
    return aioice.ice.CONSENT_INTERVAL * aioice.ice.CONSENT_FAILURES


async def test_answers_later_than_half_a_second_keep_consent(quick_consent):
    a, b = await connected_pair()
    try:
        answer_late(b, 0.7)  # aioice alone gives each check 0.5 s
        before = consent_counters().checks
        # aioice alone closes after six late answers, about 4.2 s here
        await stays(lambda: a._query_consent_task is not None and a._nominated, 6 * quick_consent, what="consent kept")
        assert consent_counters().checks > before
    finally:
        await a.close()
        await b.close()


async def test_a_stalled_loop_is_not_held_against_the_peer(quick_consent):
    a, b = await connected_pair()
    try:
        answer_late(b, 0.1)
        lag = consent_counters().loop_lag_s
        for _ in range(3):
            time.sleep(quick_consent)  # this process's loop stalls longer than the consent limit
            await asyncio.sleep(0.3)
        assert consent_counters().loop_lag_s - lag >= 2 * quick_consent
        await stays(lambda: a._query_consent_task is not None and a._nominated, quick_consent, what="consent kept")
    finally:
        await a.close()
        await b.close()


async def test_a_peer_that_stops_answering_loses_consent(quick_consent):
    a, b = await connected_pair()
    try:
        expired = consent_counters().expired
        for protocol in b._protocols:
            protocol.transport.abort()  # its machine is gone: nothing answers
        await eventually(lambda: not a._nominated, timeout=quick_consent + 10, what="consent lost")
        assert consent_counters().expired > expired
    finally:
        await a.close()
        await b.close()


async def test_a_socket_full_of_media_is_read_in_batches():
    """A STUN check queued behind media is reached within a loop turn or two, not hundreds."""
    received: list[bytes] = []

    class Receiver(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr) -> None:
            received.append(data)

    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(Receiver, local_addr=("127.0.0.1", 0))
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for n in range(100):
                sender.sendto(n.to_bytes(2, "big") * 100, transport.get_extra_info("sockname"))
        for _ in range(2):  # two turns of the loop; asyncio alone reads one datagram in each
            await asyncio.sleep(0)
        assert len(received) >= READ_BATCH
    finally:
        transport.close()
