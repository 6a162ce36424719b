"""The meeting (cuộc họp trực tuyến): what is booked, stored as plain JSON.

A meeting is the source of truth for the schedule; jobs, agent schedules and
calendar feeds are derived from it. It is immutable: a change is a new value
(`dataclasses.replace`, `with_status`, `cancel_occurrence`) that the store
writes back, so two readers never see a half-updated meeting.

Occurrences are named by their UTC start (`occurrence_key`), which is stable
while the series is unchanged, so per-occurrence statuses and cancellations
need no separate ids. `from_json` raises `vcs.errors.ValidationFailed` naming
the offending field; `validate_new_meeting` returns every booking-rule error
at once, for the API to show next to the form fields.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from scheduler.recurrence import MAX_OCCURRENCES, MAX_SPAN, Recurrence, RecurrenceError, is_synchronized, occurrences, parse_rrule
from vcs.errors import FieldError, ValidationFailed
from vcs.tiers import DEFAULT_LADDER

__all__ = [
    "JSON_VERSION",
    "MAX_BOOKING_AHEAD",
    "MAX_DURATION",
    "MAX_TITLE",
    "MEDIA_TIERS",
    "MIN_DURATION",
    "SELECTOR_KINDS",
    "MediaProfile",
    "Meeting",
    "OccurrenceStatus",
    "ParticipantSelector",
    "format_utc",
    "occurrence_key",
    "parse_utc",
    "selector_errors",
    "validate_new_meeting",
]

JSON_VERSION = 1
MEDIA_TIERS = DEFAULT_LADDER.names  # best first
SELECTOR_KINDS = ("all", "provinces", "communes", "group")
MIN_DURATION = timedelta(minutes=5)
MAX_DURATION = timedelta(hours=12)
MAX_TITLE = 200
MAX_BOOKING_AHEAD = MAX_SPAN
_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # goes into Redis keys and iCalendar UIDs


class OccurrenceStatus(StrEnum):
    SCHEDULED = "scheduled"
    PREPARING = "preparing"
    LIVE = "live"
    ENDED = "ended"
    CANCELLED = "cancelled"
    FAILED = "failed"


def format_utc(moment: datetime) -> str:
    """`2025-07-01T01:00:00Z`: one spelling per instant, usable as a key."""
    if moment.tzinfo is None:
        raise ValueError("datetime must be aware")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return moment.astimezone(UTC)


def occurrence_key(start: datetime) -> str:
    return format_utc(start)


@dataclass(frozen=True)
class ParticipantSelector:
    """Everyone, whole provinces, listed communes, or a named group.

    Stored instead of an endpoint list so that "all of Hà Nội" still means all
    of Hà Nội after the registry changes. Province codes are ints; the
    registry's zero-padded spelling ("01") is accepted and means the same.
    """

    kind: str
    province_codes: tuple[int, ...] = ()
    commune_ids: tuple[str, ...] = ()
    group: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "province_codes", tuple(int(c) for c in self.province_codes))
        object.__setattr__(self, "commune_ids", tuple(str(c) for c in self.commune_ids))

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "province_codes": list(self.province_codes),
            "commune_ids": list(self.commune_ids),
            "group": self.group,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ParticipantSelector:
        return cls(
            kind=data["kind"],
            province_codes=tuple(data.get("province_codes") or ()),
            commune_ids=tuple(data.get("commune_ids") or ()),
            group=data.get("group"),
        )


@dataclass(frozen=True)
class MediaProfile:
    max_tier: str = "720p"

    def to_json(self) -> dict[str, Any]:
        return {"max_tier": self.max_tier}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MediaProfile:
        return cls(max_tier=data.get("max_tier", "720p"))


@dataclass(frozen=True)
class Meeting:
    id: str
    title: str
    organizer: str  # user id
    host_endpoint_id: str  # "central" or "hall-01"
    start: datetime  # first occurrence, aware UTC
    duration: timedelta
    selector: ParticipantSelector
    recurrence: Recurrence | None = None
    media: MediaProfile = MediaProfile()
    cancelled: frozenset[datetime] = frozenset()  # starts of cancelled occurrences, UTC
    statuses: Mapping[str, OccurrenceStatus] = field(default_factory=dict, hash=False)  # occurrence_key => status
    created_at: datetime | None = None
    updated_at: datetime | None = None
    override_conflicts: bool = False
    cancelled_from: datetime | None = None  # the series is cancelled from this occurrence on
    record: bool = False  # the origin records each occurrence (booking default: on for a national meeting)

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or any(c.tzinfo is None for c in self.cancelled):
            raise ValueError("meeting times must be aware datetimes")
        object.__setattr__(self, "start", self.start.astimezone(UTC))
        if self.cancelled_from is not None:
            object.__setattr__(self, "cancelled_from", self.cancelled_from.astimezone(UTC))
        object.__setattr__(self, "cancelled", frozenset(c.astimezone(UTC) for c in self.cancelled))
        statuses = {k: OccurrenceStatus(v) for k, v in self.statuses.items()}
        object.__setattr__(self, "statuses", MappingProxyType(statuses))

    def occurrences(
        self, *, window_start: datetime | None = None, window_end: datetime | None = None, limit: int = MAX_OCCURRENCES
    ) -> list[datetime]:
        """Starts of the occurrences that will take place (cancelled ones left out)."""
        if self.cancelled_from is not None:
            window_end = self.cancelled_from if window_end is None else min(window_end, self.cancelled_from)
        return occurrences(
            self.start,
            self.recurrence,
            cancelled=self.cancelled,
            window_start=window_start,
            window_end=window_end,
            limit=limit,
        )

    def is_occurrence(self, start: datetime) -> bool:
        """Whether `start` is an occurrence of the series, cancelled or not."""
        start = parse_utc(format_utc(start))  # refuses a naive datetime
        return start in occurrences(self.start, self.recurrence, window_start=start, limit=1)

    def status_of(self, start: datetime) -> OccurrenceStatus:
        stored = self.statuses.get(occurrence_key(start))
        if stored is not None:
            return stored
        if start in self.cancelled or (self.cancelled_from is not None and start >= self.cancelled_from):
            return OccurrenceStatus.CANCELLED
        return OccurrenceStatus.SCHEDULED

    def with_status(self, start: datetime, status: OccurrenceStatus, *, now: datetime) -> Meeting:
        if not self.is_occurrence(start):
            raise ValueError(f"{format_utc(start)} is not an occurrence of meeting {self.id}")
        statuses = {**self.statuses, occurrence_key(start): OccurrenceStatus(status)}
        return replace(self, statuses=statuses, updated_at=now)

    def cancel_occurrence(self, start: datetime, *, now: datetime) -> Meeting:
        """Cancel one occurrence (an EXDATE); cancelling twice changes nothing."""
        if not self.is_occurrence(start):
            raise ValueError(f"{format_utc(start)} is not an occurrence of meeting {self.id}")
        statuses = {**self.statuses, occurrence_key(start): OccurrenceStatus.CANCELLED}
        return replace(self, cancelled=self.cancelled | {start}, statuses=statuses, updated_at=now)

    def cancel_series(self, *, now: datetime) -> Meeting:
        """Cancel every occurrence not yet ended; the ones already held keep their record."""
        remaining = occurrences(self.start, self.recurrence, window_start=now - self.duration + timedelta(microseconds=1), limit=1)
        cut = remaining[0] if remaining else now
        if self.cancelled_from is not None and self.cancelled_from <= cut:
            return self
        statuses = {k: v for k, v in self.statuses.items() if parse_utc(k) < cut}
        return replace(self, cancelled_from=cut, statuses=statuses, updated_at=now)

    @property
    def is_cancelled(self) -> bool:
        return not self.occurrences(limit=1) or (self.cancelled_from is not None and self.cancelled_from <= self.start)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": JSON_VERSION,
            "id": self.id,
            "title": self.title,
            "organizer": self.organizer,
            "host_endpoint_id": self.host_endpoint_id,
            "start": format_utc(self.start),
            "duration_minutes": _minutes(self.duration),
            "recurrence": self.recurrence.to_rrule() if self.recurrence else None,
            "selector": self.selector.to_json(),
            "media": self.media.to_json(),
            "cancelled": sorted(format_utc(c) for c in self.cancelled),
            "statuses": {k: v.value for k, v in sorted(self.statuses.items())},
            "created_at": format_utc(self.created_at) if self.created_at else None,
            "updated_at": format_utc(self.updated_at) if self.updated_at else None,
            "override_conflicts": self.override_conflicts,
            "cancelled_from": format_utc(self.cancelled_from) if self.cancelled_from else None,
            "record": self.record,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Meeting:
        """Build from `to_json` output or an API body; a bad field raises ValidationFailed naming it."""
        return cls(
            id=_read(data, "id", _text),
            title=_read(data, "title", _text),
            organizer=_read(data, "organizer", _text),
            host_endpoint_id=_read(data, "host_endpoint_id", _text),
            start=_read(data, "start", parse_utc),
            duration=_read(data, "duration_minutes", _duration),
            recurrence=_read(data, "recurrence", parse_rrule, None),
            selector=_read(data, "selector", ParticipantSelector.from_json),
            media=_read(data, "media", MediaProfile.from_json, MediaProfile()),
            cancelled=_read(data, "cancelled", lambda v: frozenset(map(parse_utc, v)), frozenset()),
            statuses=_read(data, "statuses", _statuses, {}),
            created_at=_read(data, "created_at", parse_utc, None),
            updated_at=_read(data, "updated_at", parse_utc, None),
            override_conflicts=_read(data, "override_conflicts", _flag, False),
            cancelled_from=_read(data, "cancelled_from", parse_utc, None),
            record=_read(data, "record", _flag, False),
        )


_REQUIRED = object()


def _read(data: Mapping[str, Any], name: str, convert: Callable[[Any], Any], default: Any = _REQUIRED) -> Any:
    """One field through its converter, any failure reported against that field."""
    value = data.get(name)
    if value is None:
        if default is _REQUIRED:
            raise ValidationFailed(FieldError.of(name, "required"))
        return default
    try:
        return convert(value)
    except RecurrenceError as exc:
        raise ValidationFailed(FieldError(name, exc.reason, exc.code, exc.params)) from None
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as exc:
        reason = f"is missing {exc.args[0]!r}" if isinstance(exc, KeyError) else str(exc) or "has the wrong type"
        raise ValidationFailed(FieldError(name, reason)) from None


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("must be a string")
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError("must be true or false")
    return value


def _duration(value: Any) -> timedelta:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("must be a number")
    return timedelta(minutes=value)


def _statuses(value: Mapping[str, str]) -> dict[str, OccurrenceStatus]:
    return {occurrence_key(parse_utc(k)): OccurrenceStatus(v) for k, v in value.items()}


def _minutes(duration: timedelta) -> int | float:
    minutes = duration.total_seconds() / 60
    return int(minutes) if minutes.is_integer() else minutes


def validate_new_meeting(
    meeting: Meeting,
    *,
    now: datetime,
    provinces: Collection[int | str] | None = None,
    communes: Collection[str] | None = None,
    groups: Collection[str] | None = None,
    endpoints: Collection[str] | None = None,
) -> list[FieldError]:
    """Every booking-rule violation, each as (field, reason); empty means bookable.

    The registry collections are optional: when given, selector codes and the
    host must exist in them.
    """
    errors: list[FieldError] = []

    def error(name: str, code: str, **params: object) -> None:
        errors.append(FieldError.of(name, code, **params))

    if not _ID_RE.match(meeting.id):
        errors.append(FieldError("id", "must be 1-64 letters, digits, '-' or '_'"))
    title = meeting.title.strip()
    if not title:
        error("title", "empty")
    elif len(title) > MAX_TITLE:
        error("title", "title_too_long", max=MAX_TITLE, length=len(title))
    elif any(ch < " " or ch == "\x7f" for ch in title):
        error("title", "single_line")
    if not meeting.organizer.strip():
        error("organizer", "empty")
    if not meeting.host_endpoint_id:
        error("host_endpoint_id", "empty")
    elif endpoints is not None and meeting.host_endpoint_id not in endpoints:
        error("host_endpoint_id", "unknown_endpoint", endpoint_id=meeting.host_endpoint_id)
    if meeting.start <= now:
        error("start", "in_future")
    elif meeting.start - now > MAX_BOOKING_AHEAD:
        error("start", "within_5_years")
    if meeting.start.microsecond:
        errors.append(FieldError("start", "must be on a whole second"))
    if not MIN_DURATION <= meeting.duration <= MAX_DURATION:
        error("duration_minutes", "duration_range")
    elif meeting.duration % timedelta(minutes=1):
        error("duration_minutes", "whole_minutes")
    errors.extend(_recurrence_errors(meeting))
    errors.extend(selector_errors(meeting.selector, provinces=provinces, communes=communes, groups=groups))
    if meeting.media.max_tier not in MEDIA_TIERS:
        error("media.max_tier", "one_of", choices=", ".join(MEDIA_TIERS))
    return errors


def _recurrence_errors(meeting: Meeting) -> list[FieldError]:
    rule = meeting.recurrence
    errors = []
    if rule is not None:
        if rule.until is not None and rule.until < meeting.start:
            errors.append(FieldError.of("recurrence", "until_before_start"))
        elif not is_synchronized(meeting.start, rule):
            errors.append(FieldError.of("recurrence", "not_selected_by_rule"))
    for start in sorted(meeting.cancelled):
        if not meeting.is_occurrence(start):
            errors.append(FieldError("cancelled", f"{format_utc(start)} is not an occurrence of the series"))
    if not meeting.occurrences(limit=1):
        errors.append(FieldError.of("cancelled", "all_cancelled"))
    return errors


def selector_errors(
    selector: ParticipantSelector,
    *,
    provinces: Collection[int | str] | None = None,
    communes: Collection[str] | None = None,
    groups: Collection[str] | None = None,
) -> list[FieldError]:
    """What is wrong with the selector; registry collections, when given, must contain what it names."""
    if selector.kind not in SELECTOR_KINDS:
        return [FieldError.of("selector.kind", "one_of", choices=", ".join(SELECTOR_KINDS))]
    errors = []
    present = {
        "province_codes": bool(selector.province_codes),
        "commune_ids": bool(selector.commune_ids),
        "group": selector.group is not None,
    }
    wanted = {"provinces": "province_codes", "communes": "commune_ids", "group": "group"}.get(selector.kind)
    for name, used in present.items():
        if used and name != wanted:
            errors.append(FieldError(f"selector.{name}", f"must be empty when kind is {selector.kind!r}"))
    if selector.kind == "provinces":
        known = None if provinces is None else {int(code) for code in provinces}
        errors += _listed("selector.province_codes", selector.province_codes, known, "province")
    elif selector.kind == "communes":
        errors += _listed("selector.commune_ids", selector.commune_ids, communes, "commune")
    elif selector.kind == "group":
        if not (selector.group or "").strip():
            errors.append(FieldError("selector.group", "must name a group"))
        elif groups is not None and selector.group not in groups:
            errors.append(FieldError("selector.group", f"unknown group {selector.group!r}"))
    return errors


def _listed(name: str, values: tuple, known: Collection | None, noun: str) -> list[FieldError]:
    if not values:
        return [FieldError.of(name, f"no_{noun}")]
    errors = []
    if len(set(values)) != len(values):
        errors.append(FieldError.of(name, f"{noun}_twice"))
    unknown = [v for v in values if known is not None and v not in known]
    if unknown:
        shown = ", ".join(str(v) for v in unknown[:10]) + (" ..." if len(unknown) > 10 else "")
        errors.append(FieldError.of(name, f"unknown_{noun}s", codes=shown))
    return errors
