"""iCalendar (RFC 5545) for meetings, so organizers and rooms see them in any calendar.

All times are written in UTC (no VTIMEZONE needed); clients show them in their
own zone. A series is one VEVENT with its RRULE and an EXDATE per cancelled
occurrence, so a cancellation shows up as a gap rather than a second event.
An open-ended rule is written with the UNTIL where our expansion stops (five
years or 1,000 occurrences), so calendars show only meetings that will happen.
Text is escaped and lines folded at 75 octets without splitting a UTF-8
character, because Vietnamese titles are mostly multi-byte.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime

from scheduler.meeting import Meeting
from scheduler.recurrence import MAX_OCCURRENCES, MAX_SPAN, Recurrence, occurrences
from vcs.local_time import LOCAL_TZ_NAME

__all__ = [
    "MAX_LINE_OCTETS",
    "PRODID",
    "calendar_feed",
    "escape_text",
    "fold_line",
    "format_ics_utc",
    "meeting_to_ics",
]

PRODID = "-//vcs//Lich hop truc tuyen//VI"
MAX_LINE_OCTETS = 75
CRLF = "\r\n"
REFRESH = "PT1H"  # how often feed subscribers should poll


def escape_text(value: str) -> str:
    """A TEXT value: backslash, semicolon, comma and newline escaped; other controls dropped."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    out = []
    for ch in value:
        if ch in "\\;,":
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t" or (ch >= " " and ch != "\x7f"):
            out.append(ch)
    return "".join(out)


def fold_line(line: str) -> str:
    """Fold one content line so no physical line exceeds 75 octets (CRLF not counted)."""
    pieces: list[str] = []
    current: list[str] = []
    size, limit = 0, MAX_LINE_OCTETS
    for ch in line:
        octets = len(ch.encode("utf-8"))
        if size + octets > limit:
            pieces.append("".join(current))
            current, size, limit = [], 0, MAX_LINE_OCTETS - 1  # the leading space counts
        current.append(ch)
        size += octets
    pieces.append("".join(current))
    return (CRLF + " ").join(pieces)


def format_ics_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _uri(url: str) -> str:
    if any(ch <= " " or ch == "\x7f" for ch in url):
        raise ValueError("url must not contain spaces or control characters")
    return url


def _rule_as_expanded(meeting: Meeting, rule: Recurrence) -> Recurrence:
    """The rule, bounded where our expansion stops, so no client shows a meeting nobody will hold."""
    series = occurrences(meeting.start, rule)
    if meeting.cancelled_from is not None:
        held = [start for start in series if start < meeting.cancelled_from]
        if len(held) < len(series):
            return replace(rule, count=None, until=held[-1] if held else meeting.start)
    if len(series) < MAX_OCCURRENCES and (
        (rule.count is not None and len(series) == rule.count)
        or (rule.until is not None and rule.until <= meeting.start + MAX_SPAN)
    ):
        return rule
    return replace(rule, count=None, until=series[-1])


def _event_lines(meeting: Meeting, host_name: str, url: str | None, uid_domain: str) -> list[str]:
    stamp = meeting.updated_at or meeting.created_at or meeting.start
    lines = [
        "BEGIN:VEVENT",
        f"UID:{meeting.id}@{uid_domain}",
        f"DTSTAMP:{format_ics_utc(stamp)}",
    ]
    if meeting.created_at:
        lines.append(f"CREATED:{format_ics_utc(meeting.created_at)}")
    if meeting.updated_at:
        lines.append(f"LAST-MODIFIED:{format_ics_utc(meeting.updated_at)}")
    lines += [
        f"DTSTART:{format_ics_utc(meeting.start)}",
        f"DTEND:{format_ics_utc(meeting.start + meeting.duration)}",
    ]
    if meeting.recurrence is not None:
        lines.append(f"RRULE:{_rule_as_expanded(meeting, meeting.recurrence).to_rrule()}")
        if meeting.cancelled:
            lines.append("EXDATE:" + ",".join(format_ics_utc(c) for c in sorted(meeting.cancelled)))
    description = f"Chủ trì: {host_name}"
    if url:
        description += f"\nTham gia: {url}"
    lines += [f"SUMMARY:{escape_text(meeting.title)}", f"DESCRIPTION:{escape_text(description)}"]
    if url:
        lines.append(f"URL:{_uri(url)}")
    whole_event_cancelled = meeting.is_cancelled
    lines += [f"STATUS:{'CANCELLED' if whole_event_cancelled else 'CONFIRMED'}", "TRANSP:OPAQUE", "END:VEVENT"]
    return lines


def _calendar(events: list[list[str]], extra: list[str]) -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{PRODID}", "CALSCALE:GREGORIAN", "METHOD:PUBLISH"]
    lines += extra
    for event in events:
        lines += event
    lines.append("END:VCALENDAR")
    return "".join(fold_line(line) + CRLF for line in lines)


def meeting_to_ics(meeting: Meeting, *, host_name: str, url: str | None = None, uid_domain: str = "vcs") -> str:
    """One meeting as a complete VCALENDAR object (an .ics attachment or download)."""
    return _calendar([_event_lines(meeting, host_name, url, uid_domain)], [])


def calendar_feed(
    meetings: Iterable[Meeting],
    *,
    calendar_name: str,
    host_names: Mapping[str, str] | None = None,
    url_for: Callable[[Meeting], str | None] | None = None,
    uid_domain: str = "vcs",
) -> str:
    """An endpoint's (or organizer's) subscribable feed: one VEVENT per meeting, by start.

    `host_names` maps host endpoint ids to display names (the id is shown when
    missing); `url_for` gives each meeting's join or detail link.
    """
    names = host_names or {}
    ordered = sorted(meetings, key=lambda m: (m.start, m.id))
    events = [
        _event_lines(m, names.get(m.host_endpoint_id, m.host_endpoint_id), url_for(m) if url_for else None, uid_domain)
        for m in ordered
    ]
    extra = [
        f"X-WR-CALNAME:{escape_text(calendar_name)}",
        f"X-WR-TIMEZONE:{LOCAL_TZ_NAME}",
        f"REFRESH-INTERVAL;VALUE=DURATION:{REFRESH}",
        f"X-PUBLISHED-TTL:{REFRESH}",
    ]
    return _calendar(events, extra)
