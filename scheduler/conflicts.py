"""Double-booking: an endpoint cannot be in two meetings at once.

Each meeting is reduced to a `Booking`: its resolved endpoint set (include the
host) and its occurrence starts with one duration. Two bookings collide on the
intersection of their endpoint sets (one C-level set operation, never a loop
over 3,321 endpoints) during every pair of overlapping occurrences. Intervals
are half-open, so a meeting ending at 09:00 and one starting at 09:00 do not
collide. Because every occurrence of a booking has the same duration, its ends
are sorted with its starts and overlaps are found by bisection.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from scheduler.meeting import Meeting, format_utc

__all__ = ["Booking", "Conflict", "find_conflicts", "overlapping_starts"]


@dataclass(frozen=True)
class Booking:
    meeting_id: str
    title: str
    endpoints: frozenset[str]
    starts: tuple[datetime, ...]  # ascending, cancelled occurrences left out
    duration: timedelta

    def __post_init__(self) -> None:
        object.__setattr__(self, "endpoints", frozenset(self.endpoints))
        object.__setattr__(self, "starts", tuple(sorted(self.starts)))

    @classmethod
    def from_meeting(
        cls,
        meeting: Meeting,
        endpoints: Iterable[str],
        *,
        window_start: datetime | None = None,
        window_end: datetime | None = None,
    ) -> Booking:
        """The meeting's occurrences that overlap [window_start, window_end)."""
        earliest = None if window_start is None else window_start - meeting.duration + timedelta(microseconds=1)
        starts = meeting.occurrences(window_start=earliest, window_end=window_end)
        return cls(meeting.id, meeting.title, frozenset(endpoints), tuple(starts), meeting.duration)


@dataclass(frozen=True)
class Conflict:
    """`endpoint_id` is already in `meeting_id` from occurrence_start to occurrence_end."""

    endpoint_id: str
    meeting_id: str
    meeting_title: str
    occurrence_start: datetime
    occurrence_end: datetime
    candidate_start: datetime  # the candidate's occurrence that collides

    def to_json(self) -> dict[str, Any]:
        return {
            "endpoint_id": self.endpoint_id,
            "meeting_id": self.meeting_id,
            "meeting_title": self.meeting_title,
            "occurrence_start": format_utc(self.occurrence_start),
            "occurrence_end": format_utc(self.occurrence_end),
            "candidate_start": format_utc(self.candidate_start),
        }


def overlapping_starts(
    start: datetime, end: datetime, starts: tuple[datetime, ...], duration: timedelta
) -> tuple[datetime, ...]:
    """Those of `starts` (ascending, each lasting `duration`) whose interval meets [start, end)."""
    first = bisect_right(starts, start - duration)  # ends after `start`, i.e. s + duration > start
    last = bisect_left(starts, end)  # starts before `end`
    return starts[first:last]


def find_conflicts(candidate: Booking, existing: Iterable[Booking]) -> list[Conflict]:
    """Every (endpoint, existing occurrence) the candidate would double-book.

    A booking with the candidate's own meeting id is skipped, so an edit does
    not collide with the meeting's stored version.
    """
    found: list[Conflict] = []
    for other in existing:
        if other.meeting_id == candidate.meeting_id:
            continue
        shared = candidate.endpoints & other.endpoints
        if not shared or not other.starts:
            continue
        ordered = sorted(shared)
        for mine in candidate.starts:
            for theirs in overlapping_starts(mine, mine + candidate.duration, other.starts, other.duration):
                end = theirs + other.duration
                found.extend(
                    Conflict(endpoint, other.meeting_id, other.title, theirs, end, mine) for endpoint in ordered
                )
    found.sort(key=lambda c: (c.candidate_start, c.occurrence_start, c.meeting_id, c.endpoint_id))
    return found
