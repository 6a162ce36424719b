"""The booking form: what a person types, turned into the API's booking body, and back.

Fields, as the browser sends them (a GET query string works the same):

| field                  | what                                                             |
|------------------------|------------------------------------------------------------------|
| title                  | the meeting's title                                              |
| date, time             | first occurrence, a wall time in Asia/Ho_Chi_Minh: yyyy-mm-dd    |
|                        | (or dd/mm/yyyy typed by hand) and HH:MM                          |
| duration               | minutes                                                          |
| who                    | all, provinces, communes (group: kept from an API booking)       |
| province, commune      | repeated: the ticked provinces ("01") and communes ("00070")     |
| q                      | a commune search, diacritics ignored                             |
| repeat                 | none, daily, weekly, monthly (custom: an API-made RRULE, `rrule`)|
| interval, weekday, ... | every N periods, the weekdays (MO..SU) of a weekly series,       |
| ends, count, until     | and its end: after `count` occurrences or on the `until` date    |
| host, max_tier         | the host endpoint; the best tier sent (or audio only)            |
| override               | an admin books over conflicts                                    |

The RRULE is built here, never typed. Errors are keyed by the form slot they
belong next to (`SLOTS`); `slot_errors` maps the domain's field names
(`ValidationFailed`) onto those slots.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol

from scheduler.meeting import MEDIA_TIERS, Meeting, format_utc
from scheduler.recurrence import WEEKDAYS, Frequency, Recurrence, RecurrenceError, parse_rrule
from vcs.errors import FieldError, ValidationFailed
from vcs.local_time import LOCAL_TZ
from web.ui.forms import number_text

__all__ = ["MAX_SEARCH", "REPEATS", "SLOTS", "WHO", "BookingInputs", "fits_the_form", "parse_date", "parse_time", "slot_errors"]

WHO = ("all", "provinces", "communes", "group")
REPEATS = ("none", "daily", "weekly", "monthly", "custom")
ENDS = ("count", "until")
SLOTS = ("form", "title", "start", "duration", "participants", "repeat", "interval", "weekday", "count", "until", "host", "max_tier", "record", "override")
MAX_SEARCH = 100
MIN_YEAR, MAX_YEAR = 2000, 2999
MAX_LISTED = 3400  # more communes than the country has: a forged form cannot make us loop for long

_DATE_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_DATE_VN = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$")
_TIME = re.compile(r"^(\d{1,2})\s*[:hH.]\s*(\d{2})$")
_CODE = re.compile(r"^\d{1,5}$")

# the domain's field names (scheduler.meeting, scheduler.booking) => the form slot showing the reason
_DOMAIN_SLOTS = {
    "title": "title",
    "start": "start",
    "duration_minutes": "duration",
    "recurrence": "repeat",
    "selector": "participants",
    "selector.kind": "participants",
    "selector.province_codes": "participants",
    "selector.commune_ids": "participants",
    "selector.group": "participants",
    "host_endpoint_id": "host",
    "media": "max_tier",
    "media.max_tier": "max_tier",
    "override_conflicts": "override",
    "record": "record",
}
# a recurrence reason naming one part of the rule goes next to that part's field
_RULE_CODE_SLOTS = {"count_range": "count", "until_before_start": "until", "interval_range": "interval"}
# the RRULE parser's other reasons start with the rule part they are about
_RULE_PART_SLOTS = (("COUNT", "count"), ("UNTIL", "until"), ("INTERVAL", "interval"), ("BYDAY", "weekday"))


class _MultiDict(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...
    def getlist(self, key: str) -> list[Any]: ...


def _one(data: _MultiDict, name: str, limit: int = 200) -> str:
    value = data.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def _many(data: _MultiDict, name: str, limit: int = 20) -> list[str]:
    """The repeated field's values, stripped, each once, in the order sent."""
    seen = {value.strip()[:limit]: None for value in data.getlist(name)[:MAX_LISTED] if isinstance(value, str) and value.strip()}
    return list(seen)


def parse_date(text: str) -> date | None:
    """yyyy-mm-dd (what <input type=date> sends) or dd/mm/yyyy (what a person types); None for anything else."""
    iso, vn = _DATE_ISO.match(text), _DATE_VN.match(text)
    try:
        if iso:
            found = date(int(iso[1]), int(iso[2]), int(iso[3]))
        elif vn:
            found = date(int(vn[3]), int(vn[2]), int(vn[1]))
        else:
            return None
    except ValueError:
        return None
    return found if MIN_YEAR <= found.year <= MAX_YEAR else None  # far years overflow time zone arithmetic


def parse_time(text: str) -> time | None:
    found = _TIME.match(text)
    if not found or int(found[1]) > 23 or int(found[2]) > 59:
        return None
    return time(int(found[1]), int(found[2]))


def fits_the_form(rule: Recurrence) -> bool:
    """Whether the recurrence fields can show the rule (else it is kept as a custom RRULE)."""
    if rule.week_start != 0 or rule.by_month_day or any(d.ordinal is not None for d in rule.by_day):
        return False
    return rule.freq is Frequency.WEEKLY or not rule.by_day


def _whole(raw: str) -> int | None:
    text = number_text(raw, integer=True)
    return int(text) if text.isdigit() and len(text) < 7 else None


@dataclass
class BookingInputs:
    """The form's values as typed: re-rendered as they are when something is wrong."""

    title: str = ""
    date: str = ""
    time: str = "08:00"
    duration: str = "90"
    who: str = "provinces"
    provinces: list[str] = field(default_factory=list)
    communes: list[str] = field(default_factory=list)
    group: str = ""
    q: str = ""
    repeat: str = "none"
    interval: str = "1"
    weekdays: list[str] = field(default_factory=list)
    ends: str = "count"
    count: str = "10"
    until: str = ""
    rrule: str = ""
    host: str = "central"
    max_tier: str = MEDIA_TIERS[0]
    override: bool = False
    record: str = "auto"  # "auto": recorded when national; "yes"; "no"

    # --- reading ------------------------------------------------------------

    @classmethod
    def read(cls, data: _MultiDict) -> BookingInputs:
        """From a submitted form or a query string; anything no form could send is dropped."""
        who, repeat, ends = _one(data, "who", 20), _one(data, "repeat", 20), _one(data, "ends", 20)
        return cls(
            title=_one(data, "title", 300),
            date=_one(data, "date", 20),
            time=_one(data, "time", 10),
            duration=_one(data, "duration", 10),
            who=who if who in WHO else "provinces",
            provinces=[c for c in _many(data, "province", 3) if _CODE.match(c)],
            communes=[c for c in _many(data, "commune", 10) if _CODE.match(c)],
            group=_one(data, "group", 100),
            q=" ".join(_one(data, "q", MAX_SEARCH).split()),
            repeat=repeat if repeat in REPEATS else "none",
            interval=_one(data, "interval", 10) or "1",
            weekdays=[d for d in WEEKDAYS if d in _many(data, "weekday", 2)],
            ends=ends if ends in ENDS else "count",
            count=_one(data, "count", 10),
            until=_one(data, "until", 20),
            rrule=_one(data, "rrule", 300),
            host=_one(data, "host", 20) or "central",
            max_tier=_one(data, "max_tier", 10) or MEDIA_TIERS[0],
            override=_one(data, "override", 5) == "yes",
            record=record if (record := _one(data, "record", 5)) in ("yes", "no") else "auto",
        )

    @classmethod
    def defaults(cls, *, today: date, host: str, province: str | None) -> BookingInputs:
        """A new booking: tomorrow 08:00 for 90 minutes; a province organizer's own province ticked."""
        return cls(date=(today + timedelta(days=1)).isoformat(), host=host, provinces=[province] if province else [])

    @classmethod
    def of_meeting(cls, meeting: Meeting) -> BookingInputs:
        """The form filled with a stored meeting, for editing."""
        local = meeting.start.astimezone(LOCAL_TZ)
        selector = meeting.selector
        inputs = cls(
            title=meeting.title,
            date=local.date().isoformat(),
            time=local.strftime("%H:%M"),
            duration=str(int(meeting.duration.total_seconds() // 60)),
            who=selector.kind,
            provinces=[f"{c:02d}" for c in selector.province_codes],
            communes=list(selector.commune_ids),
            group=selector.group or "",
            host=meeting.host_endpoint_id,
            max_tier=meeting.media.max_tier,
            override=meeting.override_conflicts,
            record="yes" if meeting.record else "no",
        )
        rule = meeting.recurrence
        if rule is None:
            return inputs
        if not fits_the_form(rule):
            return replace(inputs, repeat="custom", rrule=rule.to_rrule())
        return replace(
            inputs,
            repeat=rule.freq.value.lower(),
            interval=str(rule.interval),
            weekdays=[str(d) for d in rule.by_day],
            ends="until" if rule.until else "count",
            count=str(rule.count) if rule.count else ("" if rule.until else "10"),
            until=rule.until.astimezone(LOCAL_TZ).date().isoformat() if rule.until else "",
        )

    # --- into a booking body --------------------------------------------------

    def start(self) -> datetime | None:
        day, at = parse_date(self.date), parse_time(self.time)
        return datetime.combine(day, at, tzinfo=LOCAL_TZ).astimezone(UTC) if day and at else None

    def to_body(self) -> tuple[dict[str, Any], dict[str, FieldError]]:
        """The API's booking body, and the errors of what could not be read, by slot."""
        errors: dict[str, FieldError] = {}
        body: dict[str, Any] = {"title": self.title, "host_endpoint_id": self.host, "media": {"max_tier": self.max_tier}}
        day, at = parse_date(self.date), parse_time(self.time)
        if day is None:
            errors["start"] = FieldError.of("start", "date_format")
        elif at is None:
            errors["start"] = FieldError.of("start", "time_format")
        else:
            body["start"] = format_utc(datetime.combine(day, at, tzinfo=LOCAL_TZ))
        minutes = _whole(self.duration)
        if minutes is None:
            errors["duration"] = FieldError.of("duration", "whole_number")
        else:
            body["duration_minutes"] = minutes
        if self.who == "all":
            body["selector"] = {"kind": "all"}
        elif self.who == "provinces":
            body["selector"] = {"kind": "provinces", "province_codes": [int(c) for c in self.provinces]}
        elif self.who == "communes":
            body["selector"] = {"kind": "communes", "commune_ids": list(self.communes)}
        else:
            body["selector"] = {"kind": "group", "group": self.group}
        rule, rule_errors = self.rrule_text(day)
        errors.update(rule_errors)
        body["recurrence"] = rule
        if self.override:
            body["override_conflicts"] = True
        if self.record != "auto":
            body["record"] = self.record == "yes"
        return body, errors

    def rrule_text(self, day: date | None) -> tuple[str | None, dict[str, FieldError]]:
        """The RRULE the recurrence fields describe (None: a single meeting), and its errors."""
        if self.repeat == "none":
            return None, {}
        if self.repeat == "custom":
            return self.rrule or None, {}
        errors: dict[str, FieldError] = {}
        parts = [f"FREQ={self.repeat.upper()}"]
        interval = _whole(self.interval)
        if interval is None or interval < 1:
            errors["interval"] = FieldError.of("interval", "whole_number")
        elif interval != 1:
            parts.append(f"INTERVAL={interval}")
        if self.ends == "until":
            until = parse_date(self.until)
            if until is None:
                errors["until"] = FieldError.of("until", "date_format")
            else:
                parts.append(f"UNTIL={until:%Y%m%d}")  # a date: the whole day in Vietnam counts
        else:
            count = _whole(self.count)
            if count is None or count < 1:
                errors["count"] = FieldError.of("count", "whole_number")
            else:
                parts.append(f"COUNT={count}")
        if self.repeat == "weekly":
            days = self.weekdays or ([WEEKDAYS[day.weekday()]] if day else [])
            if days:
                parts.append("BYDAY=" + ",".join(days))
        return ";".join(parts), errors

    def changes_for(self, meeting: Meeting, body: dict[str, Any]) -> dict[str, Any]:
        """`body` without start and recurrence when they are unchanged: a series under way keeps both."""
        trimmed = dict(body)
        if "start" in body and _same_start(body["start"], meeting.start):
            del trimmed["start"]
        if _same_rule(body.get("recurrence"), meeting):
            trimmed.pop("recurrence", None)
        return trimmed


def _same_start(text: str, start: datetime) -> bool:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")) == start
    except ValueError:
        return False


def _same_rule(text: str | None, meeting: Meeting) -> bool:
    if text is None or meeting.recurrence is None:
        return text is None and meeting.recurrence is None
    try:
        return parse_rrule(text).to_rrule() == meeting.recurrence.to_rrule()
    except RecurrenceError:
        return False


def slot_errors(exc: ValidationFailed | list[FieldError]) -> dict[str, FieldError]:
    """Domain errors by form slot, the first of each; unknown fields go to "form"."""
    found: dict[str, FieldError] = {}
    for error in exc.errors if isinstance(exc, ValidationFailed) else exc:
        slot = _DOMAIN_SLOTS.get(error.field, "form")
        if slot == "repeat":
            slot = _RULE_CODE_SLOTS.get(error.code) or next((s for part, s in _RULE_PART_SLOTS if error.reason.startswith(part)), slot)
        found.setdefault(slot, error)
    return found
