"""When each step of an occurrence happens, as pure functions of a datetime.

An occurrence runs: readiness check (T-15 min: agents online, link probe),
warm-up (T-2 min: rooms up, agents pre-join muted), start (T), end (T+duration).
The scheduler leader turns `pending` into APScheduler jobs whenever it takes
the lease, and `phase_at` tells it (and the UI) where an occurrence should be
now. `steps_due` says which steps a leader that starts late still owes: every
step of an occurrence under way, and only the end of one already over (a
commune is never told to join a meeting that has ended), so an end missed
during a failover or a Redis outage still runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from scheduler.meeting import Meeting, OccurrenceStatus

__all__ = [
    "READINESS_LEAD",
    "WARMUP_LEAD",
    "LifecycleTimes",
    "Phase",
    "current_or_next_occurrence",
    "lifecycle_times",
    "next_occurrence_after",
    "occurrence_status_at",
    "CATCH_UP",
    "pending",
    "phase_at",
    "steps_due",
]

READINESS_LEAD = timedelta(minutes=15)
WARMUP_LEAD = timedelta(minutes=2)
# how long after an occurrence's end a leader still runs its end step if nobody did
CATCH_UP = timedelta(days=1)


class Phase(StrEnum):
    """Finer than OccurrenceStatus: readiness and warm-up are both "preparing"."""

    SCHEDULED = "scheduled"
    READINESS = "readiness"
    WARMUP = "warmup"
    LIVE = "live"
    ENDED = "ended"


_STATUS_OF_PHASE = {
    Phase.SCHEDULED: OccurrenceStatus.SCHEDULED,
    Phase.READINESS: OccurrenceStatus.PREPARING,
    Phase.WARMUP: OccurrenceStatus.PREPARING,
    Phase.LIVE: OccurrenceStatus.LIVE,
    Phase.ENDED: OccurrenceStatus.ENDED,
}


@dataclass(frozen=True)
class LifecycleTimes:
    readiness: datetime
    warmup: datetime
    start: datetime
    end: datetime

    def events(self) -> tuple[tuple[Phase, datetime], ...]:
        """Each phase with the instant it begins, in order: one job each."""
        return (
            (Phase.READINESS, self.readiness),
            (Phase.WARMUP, self.warmup),
            (Phase.LIVE, self.start),
            (Phase.ENDED, self.end),
        )


def lifecycle_times(occurrence_start: datetime, duration: timedelta) -> LifecycleTimes:
    if occurrence_start.tzinfo is None:
        raise ValueError("occurrence_start must be an aware datetime")
    if duration <= timedelta(0):
        raise ValueError("duration must be positive")
    return LifecycleTimes(
        readiness=occurrence_start - READINESS_LEAD,
        warmup=occurrence_start - WARMUP_LEAD,
        start=occurrence_start,
        end=occurrence_start + duration,
    )


def phase_at(times: LifecycleTimes, now: datetime) -> Phase:
    """The phase an occurrence should be in at `now`; each boundary belongs to the later phase."""
    phase = Phase.SCHEDULED
    for candidate, begins in times.events():
        if now >= begins:
            phase = candidate
    return phase


def occurrence_status_at(times: LifecycleTimes, now: datetime) -> OccurrenceStatus:
    """The status expected at `now` if nothing went wrong (never cancelled or failed)."""
    return _STATUS_OF_PHASE[phase_at(times, now)]


def next_occurrence_after(meeting: Meeting, now: datetime) -> datetime | None:
    """The first non-cancelled occurrence starting strictly after `now`, or None."""
    found = meeting.occurrences(window_start=now + timedelta(microseconds=1), limit=1)
    return found[0] if found else None


def current_or_next_occurrence(meeting: Meeting, now: datetime) -> datetime | None:
    """The occurrence live at `now`, else the next one: what a room should be showing."""
    found = meeting.occurrences(window_start=now - meeting.duration + timedelta(microseconds=1), limit=1)
    return found[0] if found else None


def pending(meeting: Meeting, now: datetime, *, horizon: timedelta, lookback: timedelta = timedelta(0)) -> list[LifecycleTimes]:
    """Occurrences not ended before `now - lookback` whose readiness check falls before `now + horizon`.

    These are the ones a scheduler leader needs jobs for; an occurrence already
    under way is included so its remaining steps (and its end) still run, and
    with a `lookback` so are those that ended within it, whose end may be owed.
    """
    found = meeting.occurrences(
        window_start=now - lookback - meeting.duration + timedelta(microseconds=1),
        window_end=now + horizon + READINESS_LEAD,
    )
    return [lifecycle_times(start, meeting.duration) for start in found]


def steps_due(times: LifecycleTimes, now: datetime) -> list[Phase]:
    """The steps whose time has come, in order; once the occurrence is over, only its end."""
    if now >= times.end:
        return [Phase.ENDED]
    return [phase for phase, at in times.events() if at <= now]
