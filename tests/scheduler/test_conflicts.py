from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from scheduler.conflicts import Booking, Conflict, find_conflicts, overlapping_starts
from scheduler.meeting import Meeting, ParticipantSelector
from scheduler.recurrence import parse_rrule

T = datetime(2025, 7, 7, 1, 0, tzinfo=UTC)  # Monday 08:00 in Hanoi
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def booking(meeting_id: str, endpoints, starts, duration=HOUR, title=None) -> Booking:
    return Booking(meeting_id, title or f"Họp {meeting_id}", frozenset(endpoints), tuple(starts), duration)


@pytest.mark.parametrize(
    ("other_start", "other_duration", "conflicts"),
    [
        (T + HOUR, HOUR, False),  # back-to-back after
        (T - HOUR, HOUR, False),  # back-to-back before
        (T + timedelta(minutes=59), HOUR, True),
        (T - timedelta(minutes=59), HOUR, True),
        (T + timedelta(minutes=10), timedelta(minutes=5), True),  # inside
        (T - HOUR, 3 * HOUR, True),  # around
        (T, HOUR, True),  # same slot
        (T + DAY, HOUR, False),
    ],
)
def test_overlap_is_half_open(other_start, other_duration, conflicts):
    candidate = booking("new", {"00004"}, [T])
    existing = booking("old", {"00004"}, [other_start], other_duration)
    assert bool(find_conflicts(candidate, [existing])) is conflicts


def test_conflict_names_endpoint_existing_occurrence_and_candidate_occurrence():
    candidate = booking("new", {"central", "00004", "00007"}, [T, T + 7 * DAY])
    existing = booking(
        "old", {"central", "00007", "26734"}, [T + 7 * DAY + timedelta(minutes=30)], title="Hội nghị, quý III"
    )
    found = find_conflicts(candidate, [existing])
    other_start = T + 7 * DAY + timedelta(minutes=30)
    assert found == [
        Conflict("00007", "old", "Hội nghị, quý III", other_start, other_start + HOUR, T + 7 * DAY),
        Conflict("central", "old", "Hội nghị, quý III", other_start, other_start + HOUR, T + 7 * DAY),
    ]
    assert found[0].to_json() == {
        "endpoint_id": "00007",
        "meeting_id": "old",
        "meeting_title": "Hội nghị, quý III",
        "occurrence_start": "2025-07-14T01:30:00Z",
        "occurrence_end": "2025-07-14T02:30:00Z",
        "candidate_start": "2025-07-14T01:00:00Z",
    }


def test_disjoint_endpoints_never_conflict():
    assert find_conflicts(booking("new", {"a"}, [T]), [booking("old", {"b"}, [T])]) == []


def test_same_meeting_is_not_a_conflict_with_itself():
    assert find_conflicts(booking("m", {"a"}, [T]), [booking("m", {"a"}, [T])]) == []


def test_long_candidate_meets_several_occurrences_of_a_daily_series():
    existing = booking("daily", {"a"}, [T + k * DAY for k in range(10)], duration=timedelta(minutes=30))
    candidate = booking("new", {"a"}, [T + timedelta(minutes=15)], duration=timedelta(hours=12))
    assert [c.occurrence_start for c in find_conflicts(candidate, [existing])] == [T]
    wide = booking("new", {"a"}, [T - timedelta(minutes=10)], duration=2 * DAY)
    assert [c.occurrence_start for c in find_conflicts(wide, [existing])] == [T, T + DAY]


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (T, T + HOUR, [T]),
        (T + HOUR, T + DAY, []),  # ends exactly when ours starts; next starts when ours ends
        (T + HOUR - timedelta(seconds=1), T + DAY + timedelta(seconds=1), [T, T + DAY]),
        (T - DAY, T, []),
    ],
)
def test_overlapping_starts(start, end, expected):
    assert list(overlapping_starts(start, end, (T, T + DAY, T + 2 * DAY), HOUR)) == expected


def meeting(meeting_id: str, start: datetime, rule: str | None, cancelled=frozenset()) -> Meeting:
    return Meeting(
        id=meeting_id,
        title=meeting_id,
        organizer="u",
        host_endpoint_id="central",
        start=start,
        duration=HOUR,
        selector=ParticipantSelector("all"),
        recurrence=parse_rrule(rule) if rule else None,
        cancelled=cancelled,
    )


def test_booking_from_meeting_skips_cancelled_occurrences():
    weekly = meeting("weekly", T, "FREQ=WEEKLY;COUNT=3", cancelled=frozenset({T + 7 * DAY}))
    single = meeting("single", T + 7 * DAY + timedelta(minutes=30), None)
    found = find_conflicts(Booking.from_meeting(single, {"a"}), [Booking.from_meeting(weekly, {"a"})])
    assert found == []
    weekly_all = meeting("weekly", T, "FREQ=WEEKLY;COUNT=3")
    found = find_conflicts(Booking.from_meeting(single, {"a"}), [Booking.from_meeting(weekly_all, {"a"})])
    assert [(c.endpoint_id, c.occurrence_start) for c in found] == [("a", T + 7 * DAY)]


def test_booking_window_keeps_an_occurrence_running_at_its_start():
    daily = meeting("daily", T, "FREQ=DAILY;COUNT=10")
    window = Booking.from_meeting(daily, {"a"}, window_start=T + 2 * DAY + timedelta(minutes=30), window_end=T + 4 * DAY)
    assert window.starts == (T + 2 * DAY, T + 3 * DAY)


def test_national_scale_uses_set_intersections():
    communes = [f"{n:05d}" for n in range(3321)]
    everyone = frozenset(communes) | {"central"}
    # 40 weekly meetings for a year, each with a different 300-commune slice, all at other hours
    existing = [
        booking(f"m{i}", communes[i * 80 : i * 80 + 300], [T + timedelta(hours=2 + i % 8) + k * 7 * DAY for k in range(52)])
        for i in range(40)
    ]
    existing.append(booking("plenary", everyone, [T + 3 * DAY]))
    candidate = booking("new", everyone, [T + k * 7 * DAY for k in range(52)] + [T + 3 * DAY + timedelta(minutes=30)])
    began = time.perf_counter()
    found = find_conflicts(candidate, existing)
    elapsed = time.perf_counter() - began
    assert len(found) == len(everyone)  # only the plenary overlaps, on every endpoint
    assert {c.meeting_id for c in found} == {"plenary"}
    assert elapsed < 2.0  # generous: milliseconds in practice
