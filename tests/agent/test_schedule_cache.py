"""The agent's pure parts: backoff, clock offset, schedule entries and their disk cache."""

from __future__ import annotations

import json
import os
import stat

import pytest

from agent import schedule_cache
from agent.schedule_cache import Backoff, ClockOffset, ScheduleCache, ScheduleEntry, due_entry, next_boundary, parse_entries, server_time_of

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def iso(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def raw_entry(meeting: str = "m1", start: float = T0, minutes: int = 90, **extra) -> dict:
    return {
        "meeting_id": meeting, "occurrence": iso(start), "title": "Hội nghị", "role": "participant",
        "warmup": iso(start - 120), "start": iso(start), "end": iso(start + minutes * 60),
        "room": f"{meeting}-room", "whep_url": "http://127.0.0.1:1/sfu/whep/r", "whip_url": "http://127.0.0.1:1/sfu/whip/r",
        "subscribe_token": "sub-token", "publish_token": "pub-token", "max_tier": "720p", "publish_tier": "180p", **extra,
    }  # fmt: skip


# --- backoff -----------------------------------------------------------------


@pytest.mark.parametrize("rand, factor", [(0.0, 0.5), (0.5, 1.0), (0.999999, 1.5)])
def test_backoff_doubles_to_the_cap_with_bounded_jitter(rand, factor):
    backoff = Backoff(rand=lambda: rand)
    delays = [backoff.next() for _ in range(8)]
    assert delays == pytest.approx([d * factor for d in (1, 2, 4, 8, 16, 30, 30, 30)], rel=1e-5)


def test_backoff_jitter_spreads_within_half_either_way_and_resets():
    backoff = Backoff()
    for _ in range(6):
        backoff.next()
    samples = []
    for _ in range(500):
        samples.append(backoff.next())
    assert all(15 <= s <= 45 for s in samples)
    assert max(samples) - min(samples) > 20  # actually random, not a constant
    backoff.reset()
    assert 0.5 <= backoff.next() <= 1.5
    many = Backoff(rand=lambda: 1.0)
    many.attempt = 10_000  # no overflow after a very long outage
    assert many.next() == 45.0


# --- clock offset --------------------------------------------------------------


def test_clock_offset_follows_the_server_and_ignores_one_outlier():
    local = [1000.0]
    clock = ClockOffset(lambda: local[0])
    assert clock.now() == 1000.0 and not clock.known
    clock.observe(4600.0)  # the server is an hour ahead of this machine
    assert clock.offset == 3600.0 and clock.known
    local[0] = 1010.0
    assert clock.now() == 4610.0
    for server in (4610.0, 4610.1, 4609.9, 4650.0):  # one slow, stale message
        clock.observe(server)
    assert clock.offset == pytest.approx(3600.0, abs=0.1)


def test_server_time_of_accepts_only_finite_numbers():
    assert server_time_of({"server_time": 12.5}) == 12.5
    assert server_time_of({"server_time": 12}) == 12.0
    for bad in ({"server_time": "12"}, {"server_time": True}, {"server_time": float("nan")}, {}, [], None):
        assert server_time_of(bad) is None


# --- entries and what is due -----------------------------------------------------


def test_entry_parses_times_and_rejects_malformed():
    entry = ScheduleEntry.from_dict(raw_entry())
    assert entry.start == T0 and entry.warmup == T0 - 120 and entry.end == T0 + 5400
    assert entry.key == ("m1", iso(T0)) and entry.publish_tier == "180p"
    assert "sub-token" not in repr(entry)  # tokens stay out of logs
    for broken in (
        {**raw_entry(), "start": "tomorrow"},
        {**raw_entry(), "start": "2026-01-01T00:00:00"},  # no zone
        {**raw_entry(), "end": iso(T0 - 1)},
        {**raw_entry(), "whep_url": ""},
        {**raw_entry(), "role": "king"},
        "not an object",
    ):
        with pytest.raises(ValueError):
            ScheduleEntry.from_dict(broken)


def test_parse_entries_skips_bad_ones():
    entries = parse_entries([raw_entry("m1"), {"meeting_id": "m2"}, 7, raw_entry("m3")])
    assert [e.meeting_id for e in entries] == ["m1", "m3"]
    with pytest.raises(ValueError):
        parse_entries({"not": "a list"})


def test_due_entry_from_warmup_to_end_earliest_first():
    first = ScheduleEntry.from_dict(raw_entry("m1", start=T0, minutes=60))
    second = ScheduleEntry.from_dict(raw_entry("m2", start=T0 + 1800, minutes=60))
    entries = [second, first]
    assert due_entry(entries, T0 - 121) is None
    assert due_entry(entries, T0 - 120) is first  # warm-up
    assert due_entry(entries, T0 + 1800) is first  # overlap: the one that started first
    assert due_entry(entries, T0 + 1800, skip={first.key}) is second
    assert due_entry(entries, T0 + 3600) is second  # first has ended
    assert due_entry(entries, T0 + 1800 + 3600) is None
    assert next_boundary(entries, T0 - 1000) == T0 - 120
    assert next_boundary(entries, T0 - 120) == T0 + 1680  # second's warm-up
    assert next_boundary(entries, T0 + 5400) is None


# --- the disk cache -----------------------------------------------------------------


def test_schedule_cache_round_trip_mode_600(tmp_path):
    cache = ScheduleCache(tmp_path / "state")
    assert cache.load("00070") == []
    entries = parse_entries([raw_entry("m1"), raw_entry("m2", start=T0 + 7200)])
    cache.save("00070", entries, server_time=T0)
    assert cache.load("00070") == entries
    assert [e.raw for e in cache.load("00070")] == [e.raw for e in entries]
    assert stat.S_IMODE(os.stat(cache.path).st_mode) == 0o600
    assert json.loads(cache.path.read_text())["server_time"] == T0
    assert cache.load("00071") == []  # another endpoint's file is not ours
    assert list(cache.path.parent.iterdir()) == [cache.path]  # no temporary file left behind


def test_schedule_cache_write_is_atomic(tmp_path, monkeypatch):
    cache = ScheduleCache(tmp_path)
    old = parse_entries([raw_entry("old")])
    cache.save("00070", old, server_time=T0)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(schedule_cache.os, "replace", crash)
    with pytest.raises(OSError):
        cache.save("00070", parse_entries([raw_entry("new")]), server_time=T0 + 1)
    assert [e.meeting_id for e in cache.load("00070")] == ["old"]  # the previous file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["schedule.json"]


def test_schedule_cache_survives_garbage(tmp_path):
    cache = ScheduleCache(tmp_path)
    cache.path.write_text("{not json")
    assert cache.load("00070") == []
    cache.path.write_text(json.dumps({"endpoint_id": "00070", "schedule": [raw_entry(), {"bad": 1}]}))
    assert [e.meeting_id for e in cache.load("00070")] == ["m1"]
