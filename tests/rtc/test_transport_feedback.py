"""The receiver's transport-cc feedback: what it writes for the packets that arrived, as the node reads it."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time

import pytest

from rtc.transport_cc import parse_feedback, split_compound
from rtc.transport_feedback import AHEAD_LIMIT, ArrivalLog, transport_sequence
from rtc.udp_reader import unwatch_arrivals, watch_arrivals

EXT_ID = 5


def rtp(tseq: int | None, *, ssrc: int = 0x1234, seq: int = 1, ext_id: int = EXT_ID, csrcs: int = 0) -> bytes:
    """An RTP datagram as the node sends one (payload opaque, as under SRTP): the transport-wide
    sequence number first in a one-byte-header extension, or no extension."""
    first = 0x80 | csrcs | (0x10 if tseq is not None else 0)
    header = struct.pack("!BBHII", first, 96, seq, 1000, ssrc) + bytes(4 * csrcs)
    if tseq is not None:
        header += struct.pack("!HHBHB", 0xBEDE, 1, ext_id << 4 | 1, tseq, 0)
    return header + bytes(100) + bytes(10)  # payload, SRTP tag


def reported(packets: list[bytes]) -> dict[int, float | None]:
    """Sequence number -> arrival (the feedback's clock) of everything the packets report, read by the node's parser."""
    out: dict[int, float | None] = {}
    for packet in packets:
        [feedback], rest, bad = split_compound(packet)
        assert rest == b"" and bad == 0
        for seq, arrival in feedback.packets():
            assert seq not in out
            out[seq] = arrival
    return out


def test_feedback_reports_arrivals_and_losses_across_gaps_a_wrap_and_reordering():
    log = ArrivalLog(EXT_ID, sender_ssrc=7)
    t0 = 1_700_000_000.0  # wall clock, as the kernel stamps
    # sent 65530 .. 5 (through the wrap); 65533 and 2 never arrive; 4 arrives before 3
    arrivals = {65530: 0.0, 65531: 0.004, 65532: 0.0041, 65534: 0.020, 65535: 0.021, 0: 0.022, 1: 0.030, 4: 0.031, 3: 0.0335, 5: 0.040}
    for seq, at in arrivals.items():
        log.record(rtp(seq), t0 + at)
    first = log.feedback()
    got = reported(first)
    expected = [65530, 65531, 65532, 65533, 65534, 65535, 0, 1, 2, 3, 4, 5]
    assert list(got) == expected
    assert [s for s, a in got.items() if a is None] == [65533, 2]
    base = got[65530]
    for seq, at in arrivals.items():
        assert got[seq] - base == pytest.approx(at, abs=250e-6)  # a quarter-millisecond per delta, no drift
    feedback = parse_feedback(first[0])
    assert (feedback.sender_ssrc, feedback.media_ssrc, feedback.count) == (7, 0x1234, 0)

    # the next report starts after the last; a packet that comes after it was reported lost stays lost
    log.record(rtp(2), t0 + 0.05)
    log.record(rtp(7), t0 + 0.06)
    second = reported(log.feedback())
    assert list(second) == [6, 7] and second[6] is None and second[7] is not None
    assert log.feedback() == []  # nothing new: nothing sent
    assert second[7] - base == pytest.approx(0.06, abs=250e-6)  # one clock across reports


def test_a_long_report_is_split_and_a_long_silence_does_not_overflow_a_delta():
    log = ArrivalLog(EXT_ID, sender_ssrc=1)
    for seq in range(600):
        if seq % 3 != 2:
            log.record(rtp(seq), 100.0 + seq * 0.001)
    log.record(rtp(600), 100.0 + 20.0)  # twenty seconds later: past what one receive delta can say
    packets = log.feedback()
    assert len(packets) >= 4
    got = reported(packets)
    assert list(got) == list(range(601))
    assert all((got[s] is None) == (s % 3 == 2) for s in range(600))
    assert got[600] - got[0] == pytest.approx(20.0, abs=1e-3)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x90",
        rtp(None),  # no extension
        rtp(12, ext_id=EXT_ID + 1),  # another extension only
        rtp(12)[:18],  # cut inside the element
        rtp(12)[:12] + struct.pack("!HH", 0xBEDE, 200) + bytes(8),  # extension longer than the datagram
        rtp(12)[:12] + struct.pack("!HH", 0x1000, 1) + bytes(4),  # two-byte header profile
        bytes([0x90, 200]) + rtp(12)[2:],  # RTCP (sender report) with the X bit's position set
        bytes([0x9F]) + rtp(12)[1:],  # fifteen CSRCs claimed: past the end
        rtp(12)[:16] + bytes([0xF0]) + rtp(12)[17:],  # id 15: stop reading
    ],
)
def test_a_datagram_without_a_readable_sequence_number_is_skipped(data):
    log = ArrivalLog(EXT_ID, sender_ssrc=1)
    assert transport_sequence(data, EXT_ID << 4 | 1) == -1
    log.record(data, 10.0)
    assert log.feedback() == []


def test_elements_before_ours_and_csrcs_are_read_past():
    data = bytearray(rtp(None, csrcs=2))
    data[0] |= 0x10
    data[20:20] = struct.pack("!HH", 0xBEDE, 2) + bytes([0x10, 0xAA, 0x00, EXT_ID << 4 | 1, 0x12, 0x34, 0, 0])
    assert transport_sequence(bytes(data), EXT_ID << 4 | 1) == 0x1234


def test_a_lone_number_far_ahead_is_skipped_and_a_jump_followed_is_believed():
    log = ArrivalLog(EXT_ID, sender_ssrc=1)
    for seq in range(10):
        log.record(rtp(seq), 1.0 + seq * 0.01)
    log.record(rtp(10 + AHEAD_LIMIT * 4), 1.2)  # forged or corrupt: not a report of thousands lost
    log.record(rtp(10), 1.21)
    assert list(reported(log.feedback())) == list(range(11))
    log.record(rtp(5000), 2.0)  # the link was down: the stream goes on from there
    log.record(rtp(5001), 2.01)
    log.record(rtp(5002), 2.02)
    got = reported(log.feedback())
    assert list(got) == [5000, 5001, 5002] and None not in got.values()


async def test_arrival_times_are_the_kernels_not_when_a_busy_loop_reads_them():
    """Datagrams sent 200 ms apart while the loop is blocked are stamped 200 ms apart, though read together."""
    loop = asyncio.get_running_loop()
    seen: list[tuple[bytes, float, float]] = []  # (data, arrival, when the loop read it)
    delivered: list[bytes] = []
    got_both = asyncio.Event()

    class Receiver(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr) -> None:
            delivered.append(data)
            if len(delivered) == 2:
                got_both.set()

    def hook(data: bytes, arrival: float) -> bool:
        seen.append((data, arrival, time.time()))
        return data != b"drop"

    transport, _ = await loop.create_datagram_endpoint(Receiver, local_addr=("127.0.0.1", 0))
    watch_arrivals(transport, hook)
    address = transport.get_extra_info("sockname")
    sent_at: list[float] = []

    def send_two() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for data in (b"first", b"drop", b"second"):
                sent_at.append(time.time())
                sender.sendto(data, address)
                time.sleep(0.1)

    try:
        sender = threading.Thread(target=send_two)
        sender.start()
        sender.join()  # the loop is blocked the whole time: nothing is read yet
        await asyncio.wait_for(got_both.wait(), 10)
        [(_, first, read_first), (_, dropped, _), (_, second, _)] = seen
        assert delivered == [b"first", b"second"]  # the hook dropped one
        assert second - first >= 0.19  # the senders' spacing (at least two 100 ms sleeps)
        assert first < read_first and read_first - first >= 0.19  # stamped on arrival, read after the block
        assert sent_at[0] - 0.01 <= first <= dropped <= second
    finally:
        unwatch_arrivals(transport)
        transport.close()
