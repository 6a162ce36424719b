"""Transport-cc: the extension bytes we write and the feedback we read, in the wire format Chromium uses."""

import struct

import pytest

from sfu.packet_stream import make_packet
from rtc.transport_cc import build_feedback, parse_feedback, split_compound
from sfu.transport_cc import EXTENSION_BYTES, HEADER_BYTES, SendHistory

# A feedback packet as libwebrtc's TransportFeedback::Build writes it, by the draft's layout:
# sender SSRC 1, media SSRC 0x2a, base sequence 100, 5 packets, reference time 1000 (64 ms units),
# feedback count 7; one two-bit status vector chunk: received small, received small, not received,
# received large (negative delta), received small; deltas 4 (1 ms), 8 (2 ms), -4 (-1 ms, two bytes), 255.
CHROMIUM_FEEDBACK = bytes.fromhex(
    "afcd0006"  # V=2, P=1 (libwebrtc pads to a word and says so), FMT=15, PT=205, length 6 words
    "00000001"  # sender SSRC
    "0000002a"  # media SSRC
    "00640005"  # base sequence 100, status count 5
    "0003e807"  # reference time 1000, fb count 7
    "d490"  # status vector, 2-bit symbols: 01 01 00 10 01 00 00
    "0408fffcff"  # receive deltas: 4, 8, -4 (int16), 255
    "01"  # one byte of padding, its count
)


def chromium_packet() -> bytes:
    return CHROMIUM_FEEDBACK


def test_parses_a_two_bit_status_vector_with_a_loss_and_a_negative_delta():
    fb = parse_feedback(chromium_packet())
    assert (fb.sender_ssrc, fb.media_ssrc, fb.base_seq, fb.count) == (1, 0x2A, 100, 7)
    seqs = [seq for seq, _ in fb.packets()]
    assert seqs == [100, 101, 102, 103, 104]
    arrivals = [a for _, a in fb.packets()]
    base = 1000 * 0.064
    assert arrivals[2] is None
    assert arrivals[0] == pytest.approx(base + 0.001)
    assert arrivals[1] == pytest.approx(base + 0.003)
    assert arrivals[3] == pytest.approx(base + 0.002)  # -1 ms: arrived before its predecessor
    assert arrivals[4] == pytest.approx(base + 0.002 + 255 * 250e-6)


def test_parses_run_length_and_one_bit_chunks_across_the_sequence_wrap():
    # run of 20 "received small", then a one-bit vector of 14: 1,0,1,0,... (7 received)
    chunks = struct.pack("!H", (1 << 13) | 20) + struct.pack("!H", 0x8000 | 0b10101010101010)
    deltas = bytes([4]) * 20 + bytes([8]) * 7
    body = struct.pack("!IIHHI", 9, 10, 65530, 34, (5 << 8) | 1) + chunks + deltas
    body += bytes(-len(body) % 4)
    packet = struct.pack("!BBH", 0x8F, 205, len(body) // 4) + body
    fb = parse_feedback(packet)
    seqs = [seq for seq, _ in fb.packets()]
    assert seqs[0] == 65530 and seqs[6] == 0 and len(seqs) == 34
    received = [a is not None for _, a in fb.packets()]
    assert received[:20] == [True] * 20
    assert received[20:] == [True, False] * 7


def test_built_feedback_round_trips():
    arrivals = [1.0, 1.001, None, 1.0005, 1.2, None, None, 1.3]
    fb = parse_feedback(build_feedback(1, 2, 65535, arrivals, count=3))
    got = [a for _, a in fb.packets()]
    for want, have in zip(arrivals, got):
        assert (want is None) == (have is None)
        if want is not None:
            assert have == pytest.approx(want, abs=250e-6)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda p: p[:12],  # cut short
        lambda p: p[:-4],  # deltas missing
        lambda p: p[:2] + struct.pack("!H", 40) + p[4:],  # length beyond the datagram
        lambda p: p[:14] + struct.pack("!H", 500) + p[16:],  # status count beyond the chunks
        lambda p: p[:20] + struct.pack("!H", 0xFFFF) + p[22:],  # reserved symbols
        lambda p: p[:20] + struct.pack("!H", 0) + p[22:],  # a run of zero
    ],
)
def test_malformed_feedback_is_refused_and_counted_never_raised_past_the_split(mangle):
    bad = mangle(chromium_packet())
    with pytest.raises(ValueError):
        parse_feedback(bad)
    receiver_report = struct.pack("!BBHI", 0x80, 201, 1, 0x1234)
    feedback, rest, errors = split_compound(receiver_report + bad)
    assert feedback == [] and errors == 1 and rest == receiver_report


def test_split_keeps_other_rtcp_in_order():
    rr = struct.pack("!BBHI", 0x80, 201, 1, 7)
    pli = struct.pack("!BBHII", 0x81, 206, 2, 7, 8)
    feedback, rest, errors = split_compound(rr + chromium_packet() + pli)
    assert len(feedback) == 1 and errors == 0 and rest == rr + pli


def test_stream_packets_reserve_the_extension_in_place():
    packet = make_packet(b"payload", 7, 9000, True)
    assert packet[0] == 0x90  # version 2, extension bit
    assert packet[12:HEADER_BYTES] == bytes.fromhex("bede0001") + bytes(4)
    assert len(packet) == 12 + EXTENSION_BYTES + len(b"payload")


def test_send_history_remembers_a_ring_of_send_times():
    history = SendHistory(5)
    assert history.ext == 0x51  # id 5, two bytes
    first = history.take(10.0, 1200)
    second = history.take(10.5, 300)
    assert second == (first + 1) & 0xFFFF
    assert history.lookup(first) == (10.0, 1200)
    assert history.lookup(second) == (10.5, 300)
    assert history.lookup((second + 1) & 0xFFFF) is None  # not sent yet
    for i in range(9000):
        history.take(11 + i, 100)
    assert history.lookup(first) is None  # fell out of the ring
    assert SendHistory(None).ext == 0 and SendHistory(15).ext == 0  # padding when not negotiated (or no one-byte id)
