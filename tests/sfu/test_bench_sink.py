"""The kernel counter of the bench's sink subscribers, on real loopback sockets."""

from __future__ import annotations

import socket

import pytest

from sfu.bench_sink import attach_srtp_counter, udp_drops
from tests.waiting import eventually

SRTP = [bytes([0x80, 96]), bytes([0x80, 96 | 0x80]), bytes([0x90, 111]), bytes([0xBF, 100])]  # marker, extension, CSRCs
PASSED = [bytes([0x00, 0x01]), bytes([0x01, 0x01]), bytes([22, 0xFE]), bytes([0x80, 200]), bytes([0x81, 201]), bytes([0xC0, 96])]


@pytest.fixture
def pair():
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    yield receiver, sender
    receiver.close()
    sender.close()


async def test_srtp_is_counted_and_dropped_stun_dtls_and_srtcp_pass(pair):
    receiver, sender = pair
    inode = attach_srtp_counter(receiver)
    assert udp_drops({inode}) == {inode: 0}
    for head in SRTP * 5 + PASSED:
        sender.sendto(head + bytes(40), receiver.getsockname())
    await eventually(lambda: udp_drops({inode})[inode] == len(SRTP) * 5, what="the SRTP datagrams counted")
    receiver.settimeout(5)
    passed = [receiver.recv(2048)[:2] for _ in PASSED]
    assert passed == PASSED  # STUN, DTLS, SRTCP (RTCP types 200, 201) and a non-RTP 0xC0 reach aiortc, in order
    receiver.setblocking(False)
    with pytest.raises(BlockingIOError):
        receiver.recv(2048)  # and no SRTP did


def test_drops_of_other_sockets_are_left_out(pair):
    receiver, _ = pair
    inode = attach_srtp_counter(receiver)
    assert set(udp_drops({inode})) == {inode}
    assert inode in udp_drops()
