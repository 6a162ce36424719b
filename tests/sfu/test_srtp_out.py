"""The node's own AES-GCM SRTP (``sfu/_srtp_out.c``) against libsrtp, byte for byte.

A subscriber decrypts with its own SRTP stack (libsrtp in aiortc, libwebrtc's
in Chromium): whatever the node protects must be exactly what libsrtp would
have sent with the same session, index and rollover counter included.
"""

from __future__ import annotations

import asyncio
import os
import struct

import pytest
from aiortc import RTCPeerConnection
from aiortc.mediastreams import AudioStreamTrack
from pylibsrtp import Error, Policy, Session

from rtc.aiortc_adapter import tx_keying, tx_srtp
from sfu import srtp_out
from sfu.srtp_out import SrtpOut
from tests.waiting import eventually

pytestmark = pytest.mark.skipif(srtp_out.lib is None, reason="sfu._fanout is not built (make install)")

GCM = {
    16: (Policy.SRTP_PROFILE_AEAD_AES_128_GCM, b"SRTP_AEAD_AES_128_GCM"),
    32: (Policy.SRTP_PROFILE_AEAD_AES_256_GCM, b"SRTP_AEAD_AES_256_GCM"),
}
MEDIA, RTX = 0x11223344, 0x55667788


def libsrtp_session(master: bytes, profile: int) -> Session:
    """An outgoing session as aiortc makes it (an index may be protected again, within 1,024)."""
    policy = Policy(key=master, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile)
    policy.allow_repeat_tx = True
    policy.window_size = 1024
    return Session(policy)


def both(key_len: int) -> tuple[Session, SrtpOut]:
    """libsrtp's session and the node's on one master key and salt."""
    profile, name = GCM[key_len]
    key, salt = os.urandom(key_len), os.urandom(12)
    out = SrtpOut(libsrtp_session(key + salt, profile), (MEDIA, RTX), (name, key, salt))
    assert out.own
    return libsrtp_session(key + salt, profile), out


def rtp(seq: int, ssrc: int = MEDIA, *, csrcs: int = 0, extension: bytes = b"\x00\x07\x00\x00", size: int = 120) -> bytes:
    first = 0x80 | (0x10 if extension else 0) | csrcs
    header = struct.pack("!BBHII", first, 96, seq, seq * 3000, ssrc) + os.urandom(4 * csrcs)
    if extension:
        header += struct.pack("!HH", 0xBEDE, len(extension) // 4) + extension
    return header + os.urandom(size)


def protected(out: SrtpOut, packet: bytes) -> bytes | None:
    buffer = bytearray(packet) + bytes(16)
    ffi = srtp_out.ffi
    data = ffi.from_buffer("char[]", buffer)
    length = ffi.new("int *", len(packet))
    if out.protect(data, length) != 0:
        return None
    return bytes(buffer[: length[0]])


@pytest.mark.parametrize("key_len", [16, 32])
def test_every_packet_is_sealed_as_libsrtp_seals_it(key_len):
    reference, out = both(key_len)
    # both SSRCs, through a sequence number wrap (the rollover counter), repeats and
    # late packets, headers with CSRCs and a longer extension, an empty payload
    seqs = [65_500 + i for i in range(36)] + list(range(40)) + [30, 39, 65_534, 39, 100]
    packets = [rtp(seq) for seq in seqs]
    packets += [rtp(seq, RTX) for seq in (65_535, 0, 1)]
    packets += [rtp(101, csrcs=3), rtp(102, extension=b"\x10\xff" + bytes(6)), rtp(103, extension=b""), rtp(104, size=0)]
    for packet in packets:
        assert protected(out, packet) == reference.protect(packet)


def test_a_receiver_reads_what_the_node_sealed_after_the_counter_rolled_over():
    key, salt = os.urandom(32), os.urandom(12)
    profile, name = GCM[32]
    out = SrtpOut(libsrtp_session(key + salt, profile), (MEDIA, None), (name, key, salt))
    receiver = Session(Policy(key=key + salt, ssrc_type=Policy.SSRC_ANY_INBOUND, srtp_profile=profile))
    for seq in [65_530 + i for i in range(6)] + list(range(10)):
        packet = rtp(seq)
        assert receiver.unprotect(protected(out, packet)) == packet


def test_what_libsrtp_refuses_is_refused():
    reference, out = both(32)
    for seq in range(2000):
        packet = rtp(seq)
        assert protected(out, packet) == reference.protect(packet)
    too_old = rtp(2000 - 1100)  # behind the 1,024-packet window
    with pytest.raises(Error):
        reference.protect(too_old)
    assert protected(out, too_old) is None
    assert protected(out, rtp(2001, ssrc=0x99)) is None  # not one of the downtrack's SSRCs
    assert protected(out, rtp(2002)[:11]) is None  # shorter than a header
    truncated = rtp(2003, extension=b"\x10\xff" + bytes(6), size=0)[:-4]  # the extension says more than there is
    assert protected(out, truncated) is None
    assert protected(out, rtp(2003)[:14]) is None  # an extension flagged, its header cut off
    assert protected(out, rtp(2004)) is not None  # and the downtrack goes on


async def test_the_keys_are_those_dtls_gave_the_session():
    """Two aiortc peers over loopback: the node's SRTP, keyed from the DTLS exporter as aiortc
    keys libsrtp, seals the first packet of a stream exactly as aiortc's session does."""
    sender, receiver = RTCPeerConnection(), RTCPeerConnection()
    try:
        sender.addTrack(AudioStreamTrack())
        await sender.setLocalDescription(await sender.createOffer())
        await receiver.setRemoteDescription(sender.localDescription)
        await receiver.setLocalDescription(await receiver.createAnswer())
        await sender.setRemoteDescription(receiver.localDescription)
        dtls = sender.getTransceivers()[0].sender.transport
        await eventually(lambda: tx_srtp(dtls) is not None, timeout=20)
        keying = tx_keying(dtls)
        assert keying is not None and keying[0] in (b"SRTP_AEAD_AES_256_GCM", b"SRTP_AEAD_AES_128_GCM")
        out = SrtpOut(tx_srtp(dtls), (MEDIA, None), keying)
        packet = rtp(7)
        assert protected(out, packet) == tx_srtp(dtls).protect(packet)
    finally:
        await asyncio.gather(sender.close(), receiver.close())
