"""Recurring meetings: the subset of RFC 5545 RRULE that organizers need.

Supported: FREQ=DAILY|WEEKLY|MONTHLY, INTERVAL, COUNT or UNTIL, BYDAY (a day
list for WEEKLY; optionally with an ordinal such as 1MO or -1FR for MONTHLY),
BYMONTHDAY (MONTHLY, negative counts from the month end) and WKST. Anything
else raises `RecurrenceError` with a reason an organizer can act on, so a rule
we cannot expand exactly is refused at booking time instead of being guessed.

Expansion walks wall-clock dates in the meeting's zone (Asia/Ho_Chi_Minh), so
"every Monday 08:00" stays 08:00 local even in a zone with DST, and returns
aware UTC datetimes. The start always counts as the first occurrence (RFC 5545,
COUNT). A series stops at `MAX_OCCURRENCES` or `MAX_SPAN` after its start,
whichever comes first, so an unbounded rule is a finite, well-defined list.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from vcs.local_time import LOCAL_TZ

__all__ = [
    "LOCAL_TZ",
    "MAX_INTERVAL",
    "MAX_OCCURRENCES",
    "MAX_SPAN",
    "WEEKDAYS",
    "ByDay",
    "Frequency",
    "Recurrence",
    "RecurrenceError",
    "is_synchronized",
    "occurrences",
    "parse_rrule",
]

WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")  # index = datetime.weekday()
MAX_OCCURRENCES = 1000
MAX_SPAN = timedelta(days=5 * 365 + 1)  # five years, one of them leap
MAX_INTERVAL = 1000

_LATEST_START = datetime(9000, 1, 1, tzinfo=UTC)  # keeps date arithmetic clear of year 9999
_UNSUPPORTED = {"BYSECOND", "BYMINUTE", "BYHOUR", "BYYEARDAY", "BYWEEKNO", "BYMONTH", "BYSETPOS"}
_BYDAY_RE = re.compile(r"^([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$")
_UNTIL_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})(Z?))?$")


class RecurrenceError(ValueError):
    """A rule outside the supported subset; `reason` is shown to the organizer."""

    def __init__(self, reason: str, code: str = "invalid", params: dict | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code  # with params, how the UI translates it (vcs.errors.REASONS)
        self.params = params or {}


class Frequency(StrEnum):
    DAILY = "DAILY"
    WEEKLY = "WEEKLY"
    MONTHLY = "MONTHLY"


@dataclass(frozen=True)
class ByDay:
    """One BYDAY entry: a weekday (0 = Monday) and, for MONTHLY, its ordinal in the month."""

    weekday: int
    ordinal: int | None = None

    def __str__(self) -> str:
        return f"{self.ordinal or ''}{WEEKDAYS[self.weekday]}"


@dataclass(frozen=True)
class Recurrence:
    """A parsed rule; the constructor checks it, so every instance can be expanded."""

    freq: Frequency
    interval: int = 1
    count: int | None = None
    until: datetime | None = None  # inclusive, aware; normalised to UTC
    by_day: tuple[ByDay, ...] = ()
    by_month_day: tuple[int, ...] = ()
    week_start: int = 0  # WKST, 0 = Monday

    def __post_init__(self) -> None:
        object.__setattr__(self, "freq", Frequency(self.freq))
        object.__setattr__(self, "by_day", tuple(self.by_day))
        object.__setattr__(self, "by_month_day", tuple(self.by_month_day))
        if self.until is not None:
            if self.until.tzinfo is None:
                raise RecurrenceError("UNTIL must be an aware datetime")
            object.__setattr__(self, "until", self.until.astimezone(UTC))
        _check(self)

    def to_rrule(self) -> str:
        """The canonical RRULE value (without the "RRULE:" prefix); `parse_rrule` reads it back."""
        parts = [f"FREQ={self.freq}"]
        if self.interval != 1:
            parts.append(f"INTERVAL={self.interval}")
        if self.count is not None:
            parts.append(f"COUNT={self.count}")
        if self.until is not None:
            parts.append(f"UNTIL={self.until:%Y%m%dT%H%M%SZ}")
        if self.by_day:
            parts.append("BYDAY=" + ",".join(str(d) for d in self.by_day))
        if self.by_month_day:
            parts.append("BYMONTHDAY=" + ",".join(str(d) for d in self.by_month_day))
        if self.week_start != 0:
            parts.append(f"WKST={WEEKDAYS[self.week_start]}")
        return ";".join(parts)


def _check(rule: Recurrence) -> None:
    if not 1 <= rule.interval <= MAX_INTERVAL:
        raise RecurrenceError(f"INTERVAL must be between 1 and {MAX_INTERVAL}, got {rule.interval}", "interval_range", {"max": MAX_INTERVAL, "value": rule.interval})
    if rule.count is not None and rule.until is not None:
        raise RecurrenceError("COUNT and UNTIL cannot both be given; use one to end the series")
    if rule.count is not None and not 1 <= rule.count <= MAX_OCCURRENCES:
        raise RecurrenceError(f"COUNT must be between 1 and {MAX_OCCURRENCES}, got {rule.count}", "count_range", {"max": MAX_OCCURRENCES, "value": rule.count})
    if not 0 <= rule.week_start <= 6:
        raise RecurrenceError("WKST must be one of MO, TU, WE, TH, FR, SA, SU")
    if rule.by_day and rule.freq is Frequency.DAILY:
        raise RecurrenceError("BYDAY is not supported with FREQ=DAILY; use FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR")
    seen: set[ByDay] = set()
    for day in rule.by_day:
        if not 0 <= day.weekday <= 6:
            raise RecurrenceError(f"BYDAY weekday {day.weekday} is not 0 (MO) to 6 (SU)")
        if day.ordinal is not None:
            if rule.freq is not Frequency.MONTHLY:
                raise RecurrenceError(f"BYDAY={day}: an ordinal before the day is only allowed with FREQ=MONTHLY")
            if not 1 <= abs(day.ordinal) <= 5:
                raise RecurrenceError(f"BYDAY={day}: the ordinal must be 1 to 5 or -1 to -5")
        if day in seen:
            raise RecurrenceError(f"BYDAY lists {day} twice")
        seen.add(day)
    if rule.by_month_day and rule.freq is not Frequency.MONTHLY:
        raise RecurrenceError("BYMONTHDAY is only supported with FREQ=MONTHLY")
    for value in rule.by_month_day:
        if not 1 <= abs(value) <= 31:
            raise RecurrenceError(f"BYMONTHDAY value {value} is out of range (1 to 31, or -31 to -1)")
    if len(set(rule.by_month_day)) != len(rule.by_month_day):
        raise RecurrenceError("BYMONTHDAY lists a day twice")


def parse_rrule(text: str, *, tz: ZoneInfo = LOCAL_TZ) -> Recurrence:
    """Parse an RRULE value (an "RRULE:" prefix is allowed); a floating or date UNTIL is read in `tz`."""
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:]
    body = body.upper().rstrip(";")
    if not body:
        raise RecurrenceError("the rule is empty; it needs at least FREQ")
    fields: dict[str, str] = {}
    for part in body.split(";"):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or not name or not value.strip():
            raise RecurrenceError(f"'{part}' is not of the form NAME=VALUE")
        if name in fields:
            raise RecurrenceError(f"{name} appears twice")
        if name in _UNSUPPORTED:
            raise RecurrenceError(f"{name} is not supported")
        if name not in {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "WKST"}:
            raise RecurrenceError(f"unknown rule part {name}")
        fields[name] = value.strip()
    if "FREQ" not in fields:
        raise RecurrenceError("FREQ is required")
    if fields["FREQ"] not in Frequency.__members__:
        raise RecurrenceError(f"FREQ={fields['FREQ']} is not supported; use DAILY, WEEKLY or MONTHLY")
    return Recurrence(
        freq=Frequency(fields["FREQ"]),
        interval=_positive_int("INTERVAL", fields["INTERVAL"]) if "INTERVAL" in fields else 1,
        count=_positive_int("COUNT", fields["COUNT"]) if "COUNT" in fields else None,
        until=_parse_until(fields["UNTIL"], tz) if "UNTIL" in fields else None,
        by_day=tuple(_parse_by_day(v) for v in fields["BYDAY"].split(",")) if "BYDAY" in fields else (),
        by_month_day=tuple(_month_day(v) for v in fields["BYMONTHDAY"].split(",")) if "BYMONTHDAY" in fields else (),
        week_start=_weekday("WKST", fields["WKST"]) if "WKST" in fields else 0,
    )


def _positive_int(name: str, value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise RecurrenceError(f"{name} must be a positive integer, got '{value}'")
    return int(value)


def _month_day(value: str) -> int:
    if not re.fullmatch(r"[+-]?\d{1,2}", value):
        raise RecurrenceError(f"BYMONTHDAY value '{value}' is not a day number such as 15 or -1")
    return int(value)


def _weekday(name: str, value: str) -> int:
    if value not in WEEKDAYS:
        raise RecurrenceError(f"{name}={value} is not one of MO, TU, WE, TH, FR, SA, SU")
    return WEEKDAYS.index(value)


def _parse_by_day(value: str) -> ByDay:
    match = _BYDAY_RE.match(value.strip())
    if not match:
        raise RecurrenceError(f"BYDAY value '{value}' is not a day such as MO, 1MO or -1FR")
    ordinal = int(match[1]) if match[1] else None
    if ordinal == 0:
        raise RecurrenceError(f"BYDAY value '{value}': the ordinal cannot be 0")
    return ByDay(WEEKDAYS.index(match[2]), ordinal)


def _parse_until(value: str, tz: ZoneInfo) -> datetime:
    match = _UNTIL_RE.match(value)
    if not match:
        raise RecurrenceError(f"UNTIL={value} is not a date (YYYYMMDD) or a UTC time (YYYYMMDDTHHMMSSZ)")
    try:
        day = date(int(match[1]), int(match[2]), int(match[3]))
        if match[4] is None:  # a date: the whole local day is included
            return datetime.combine(day, time(23, 59, 59), tzinfo=tz).astimezone(UTC)
        moment = datetime.combine(day, time(int(match[4]), int(match[5]), int(match[6])))
    except ValueError:
        raise RecurrenceError(f"UNTIL={value} is not a valid date or time") from None
    return moment.replace(tzinfo=UTC if match[7] else tz).astimezone(UTC)


def _candidate_dates(first: date, rule: Recurrence, last: date) -> Iterator[date]:
    """Dates the rule selects, ascending, from the period holding `first` up to `last`."""
    if rule.freq is Frequency.DAILY:
        for ordinal in range(first.toordinal(), last.toordinal() + 1, rule.interval):
            yield date.fromordinal(ordinal)
    elif rule.freq is Frequency.WEEKLY:
        week = first.toordinal() - (first.weekday() - rule.week_start) % 7
        days = {d.weekday for d in rule.by_day} or {first.weekday()}
        offsets = sorted((d - rule.week_start) % 7 for d in days)
        for base in range(week, last.toordinal() + 1, 7 * rule.interval):
            yield from (date.fromordinal(base + off) for off in offsets if base + off <= last.toordinal())
    else:
        for index in range(first.year * 12 + first.month - 1, last.year * 12 + last.month, rule.interval):
            year, month = divmod(index, 12)
            yield from (date(year, month + 1, d) for d in _month_days(year, month + 1, rule, first.day))


def _month_days(year: int, month: int, rule: Recurrence, start_day: int) -> list[int]:
    length = calendar.monthrange(year, month)[1]
    by_date = {d if d > 0 else length + 1 + d for d in rule.by_month_day}
    by_date = {d for d in by_date if 1 <= d <= length}
    by_weekday: set[int] = set()
    for entry in rule.by_day:
        first_match = 1 + (entry.weekday - calendar.weekday(year, month, 1)) % 7
        matches = list(range(first_match, length + 1, 7))
        if entry.ordinal is None:
            by_weekday.update(matches)
        elif entry.ordinal <= len(matches) and -entry.ordinal <= len(matches):
            by_weekday.add(matches[entry.ordinal - 1 if entry.ordinal > 0 else entry.ordinal])
    if rule.by_month_day and rule.by_day:
        return sorted(by_date & by_weekday)  # e.g. BYDAY=FR;BYMONTHDAY=13
    if rule.by_month_day:
        return sorted(by_date)
    if rule.by_day:
        return sorted(by_weekday)
    return [start_day] if start_day <= length else []  # the 31st skips shorter months


def _series(start: datetime, rule: Recurrence | None, tz: ZoneInfo) -> Iterator[datetime]:
    if start.tzinfo is None:
        raise ValueError("start must be an aware datetime")
    start = start.astimezone(UTC)
    yield start
    if rule is None:
        return
    local = start.astimezone(tz)
    wall = local.time().replace(tzinfo=None, fold=0)
    horizon = min(start, _LATEST_START) + MAX_SPAN
    produced = 1
    for day in _candidate_dates(local.date(), rule, horizon.astimezone(tz).date()):
        if day <= local.date():
            continue
        # a wall time in a DST gap resolves with the offset before the gap, as RFC 5545 asks
        moment = datetime.combine(day, wall, tzinfo=tz).astimezone(UTC)
        if moment > horizon or (rule.until is not None and moment > rule.until):
            return
        if produced >= min(rule.count or MAX_OCCURRENCES, MAX_OCCURRENCES):
            return
        produced += 1
        yield moment


def occurrences(
    start: datetime,
    recurrence: Recurrence | None,
    *,
    cancelled: Collection[datetime] = frozenset(),
    window_start: datetime | None = None,
    window_end: datetime | None = None,
    limit: int = MAX_OCCURRENCES,
    tz: ZoneInfo = LOCAL_TZ,
) -> list[datetime]:
    """Occurrence starts in UTC, ascending, minus `cancelled`, within [window_start, window_end).

    COUNT counts cancelled occurrences too (EXDATE semantics), so cancelling one
    does not push the series a period later.
    """
    found: list[datetime] = []
    for moment in _series(start, recurrence, tz):
        if window_end is not None and moment >= window_end:
            break
        if moment in cancelled or (window_start is not None and moment < window_start):
            continue
        found.append(moment)
        if len(found) >= limit:
            break
    return found


def is_synchronized(start: datetime, recurrence: Recurrence, *, tz: ZoneInfo = LOCAL_TZ) -> bool:
    """Whether the rule itself selects the start's date (RFC 5545 leaves the other case undefined)."""
    local = start.astimezone(tz).date()
    last = (min(start, _LATEST_START) + MAX_SPAN).astimezone(tz).date()
    return next((d for d in _candidate_dates(local, recurrence, last) if d >= local), None) == local
