from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scheduler.lifecycle import (
    READINESS_LEAD,
    WARMUP_LEAD,
    LifecycleTimes,
    Phase,
    current_or_next_occurrence,
    lifecycle_times,
    next_occurrence_after,
    occurrence_status_at,
    pending,
    phase_at,
    steps_due,
)
from scheduler.meeting import Meeting, OccurrenceStatus, ParticipantSelector
from scheduler.recurrence import parse_rrule

T = datetime(2025, 7, 7, 1, 0, tzinfo=UTC)  # Monday 08:00 in Hanoi
HOUR = timedelta(hours=1)


def weekly(count: int = 3, cancelled: frozenset[datetime] = frozenset()) -> Meeting:
    return Meeting(
        id="m-1",
        title="Giao ban",
        organizer="u-1",
        host_endpoint_id="central",
        start=T,
        duration=HOUR,
        selector=ParticipantSelector("all"),
        recurrence=parse_rrule(f"FREQ=WEEKLY;COUNT={count}"),
        cancelled=cancelled,
    )


def test_lifecycle_times():
    times = lifecycle_times(T, timedelta(minutes=90))
    assert times == LifecycleTimes(
        readiness=datetime(2025, 7, 7, 0, 45, tzinfo=UTC),
        warmup=datetime(2025, 7, 7, 0, 58, tzinfo=UTC),
        start=T,
        end=datetime(2025, 7, 7, 2, 30, tzinfo=UTC),
    )
    assert READINESS_LEAD == timedelta(minutes=15) and WARMUP_LEAD == timedelta(minutes=2)
    assert [p for p, _ in times.events()] == [Phase.READINESS, Phase.WARMUP, Phase.LIVE, Phase.ENDED]


@pytest.mark.parametrize(
    ("offset", "phase", "status"),
    [
        (timedelta(days=-1), Phase.SCHEDULED, OccurrenceStatus.SCHEDULED),
        (timedelta(minutes=-15, microseconds=-1), Phase.SCHEDULED, OccurrenceStatus.SCHEDULED),
        (timedelta(minutes=-15), Phase.READINESS, OccurrenceStatus.PREPARING),
        (timedelta(minutes=-3), Phase.READINESS, OccurrenceStatus.PREPARING),
        (timedelta(minutes=-2), Phase.WARMUP, OccurrenceStatus.PREPARING),
        (timedelta(seconds=-1), Phase.WARMUP, OccurrenceStatus.PREPARING),
        (timedelta(0), Phase.LIVE, OccurrenceStatus.LIVE),
        (timedelta(minutes=59), Phase.LIVE, OccurrenceStatus.LIVE),
        (HOUR, Phase.ENDED, OccurrenceStatus.ENDED),
        (timedelta(days=3), Phase.ENDED, OccurrenceStatus.ENDED),
    ],
)
def test_phase_and_status_at(offset, phase, status):
    times = lifecycle_times(T, HOUR)
    assert phase_at(times, T + offset) is phase
    assert occurrence_status_at(times, T + offset) is status


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (T - HOUR, T),
        (T, T + timedelta(days=7)),  # strictly after: the one starting now is not "next"
        (T + timedelta(days=6), T + timedelta(days=7)),
        (T + timedelta(days=14), None),  # last of COUNT=3 has started
    ],
)
def test_next_occurrence_after(now, expected):
    assert next_occurrence_after(weekly(), now) == expected


def test_next_occurrence_skips_cancelled():
    meeting = weekly(cancelled=frozenset({T + timedelta(days=7)}))
    assert next_occurrence_after(meeting, T) == T + timedelta(days=14)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (T - HOUR, T),
        (T + timedelta(minutes=30), T),  # live now
        (T + HOUR, T + timedelta(days=7)),  # ended exactly now: half-open
        (T + timedelta(days=15), None),
    ],
)
def test_current_or_next_occurrence(now, expected):
    assert current_or_next_occurrence(weekly(), now) == expected


def test_pending_includes_running_and_upcoming_within_horizon():
    meeting = weekly(count=4)
    now = T + timedelta(minutes=30)  # first occurrence is live
    found = pending(meeting, now, horizon=timedelta(days=7))
    # the second starts at T+7d; its readiness (T+7d-15min) is before now+7d
    assert [t.start for t in found] == [T, T + timedelta(days=7)]
    assert found[0] == lifecycle_times(T, HOUR)


def test_pending_horizon_boundary_is_on_readiness():
    meeting = weekly(count=4)
    second = T + timedelta(days=7)
    just_in = second - READINESS_LEAD - timedelta(seconds=1)
    assert [t.start for t in pending(meeting, T + HOUR, horizon=just_in - (T + HOUR))] == []
    assert [t.start for t in pending(meeting, T + HOUR, horizon=just_in - (T + HOUR) + timedelta(seconds=2))] == [second]


@pytest.mark.parametrize(
    ("start", "duration"),
    [(datetime(2025, 7, 7, 8, 0), HOUR), (T, timedelta(0))],
)
def test_lifecycle_times_refuses_bad_input(start, duration):
    with pytest.raises(ValueError):
        lifecycle_times(start, duration)


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (timedelta(minutes=-16), []),
        (timedelta(minutes=-15), [Phase.READINESS]),
        (timedelta(minutes=-1), [Phase.READINESS, Phase.WARMUP]),
        (timedelta(minutes=30), [Phase.READINESS, Phase.WARMUP, Phase.LIVE]),
        (HOUR, [Phase.ENDED]),  # over: only the end is owed, nobody is told to join
        (timedelta(hours=20), [Phase.ENDED]),
    ],
)
def test_steps_due(offset, expected):
    assert steps_due(lifecycle_times(T, HOUR), T + offset) == expected


def test_pending_with_a_lookback_keeps_occurrences_that_ended_within_it():
    meeting = weekly(count=4)
    after_first = T + HOUR + timedelta(seconds=5)  # the first ended 5 s ago, its end perhaps never run
    assert [t.start for t in pending(meeting, after_first, horizon=HOUR)] == []
    assert [t.start for t in pending(meeting, after_first, horizon=HOUR, lookback=timedelta(days=1))] == [T]
    a_day_later = T + HOUR + timedelta(days=1, seconds=1)
    assert [t.start for t in pending(meeting, a_day_later, horizon=HOUR, lookback=timedelta(days=1))] == []
