from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from scheduler.ics import calendar_feed, escape_text, fold_line, meeting_to_ics
from scheduler.meeting import Meeting, ParticipantSelector
from scheduler.recurrence import parse_rrule

T = datetime(2025, 7, 7, 1, 0, tzinfo=UTC)
CREATED = datetime(2025, 7, 1, 2, 3, 4, tzinfo=UTC)
UPDATED = datetime(2025, 7, 2, 5, 6, 7, tzinfo=UTC)


def make(**changes) -> Meeting:
    values = dict(
        id="m-42",
        title="Hội nghị trực tuyến toàn quốc",
        organizer="u-1",
        host_endpoint_id="central",
        start=T,
        duration=timedelta(minutes=90),
        selector=ParticipantSelector("all"),
        created_at=CREATED,
        updated_at=UPDATED,
    )
    return Meeting(**(values | changes))


def unfold(text: str) -> list[str]:
    """Content lines as a reader sees them (RFC 5545 section 3.1)."""
    assert text.endswith("\r\n")
    return text.replace("\r\n ", "").split("\r\n")[:-1]


def properties(text: str) -> dict[str, str]:
    return dict(line.split(":", 1) for line in unfold(text) if not line.startswith(("BEGIN", "END")))


def unescape(value: str) -> str:
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m[1] in "nN" else m[1], value)


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("Họp, giao ban; quý III", "Họp\\, giao ban\\; quý III"),
        ("C:\\tai-lieu", "C:\\\\tai-lieu"),
        ("dòng 1\ndòng 2\r\ndòng 3\rdòng 4", "dòng 1\\ndòng 2\\ndòng 3\\ndòng 4"),
        ("a\x00b\x07c\td", "abc\td"),
        ('"Đặc khu" Côn Đảo: 100%', '"Đặc khu" Côn Đảo: 100%'),  # colon and quotes need no escape in TEXT
    ],
)
def test_escape_text(raw, escaped):
    assert escape_text(raw) == escaped


@pytest.mark.parametrize(
    "line",
    [
        "SUMMARY:" + "a" * 67,  # exactly 75 octets: not folded
        "SUMMARY:" + "a" * 68,  # 76: folded once
        "SUMMARY:" + "Hội nghị trực tuyến giữa Trung ương với 3.321 xã, phường, đặc khu " * 4,
        "DESCRIPTION:" + "ệ" * 100,  # three octets each: a fold must not split one
        "X:" + "😀" * 40,  # four octets each
    ],
)
def test_fold_line_limits_octets_and_unfolds_to_the_original(line):
    folded = fold_line(line)
    physical = folded.split("\r\n")
    assert all(len(p.encode("utf-8")) <= 75 for p in physical)
    assert all(p.startswith(" ") for p in physical[1:])
    assert folded.replace("\r\n ", "") == line
    expected_lines = 1 if len(line.encode()) <= 75 else 1 + -(-(len(line.encode()) - 75) // 74)
    if line.isascii():
        assert len(physical) == expected_lines


def test_fold_boundaries_exact():
    assert fold_line("X:" + "a" * 73) == "X:" + "a" * 73
    assert fold_line("X:" + "a" * 74) == "X:" + "a" * 73 + "\r\n a"
    # 2 + 24*3 = 74 octets, the next 3-octet character does not fit in 75
    assert fold_line("X:" + "ệ" * 25) == "X:" + "ệ" * 24 + "\r\n ệ"


def test_single_meeting_ics():
    text = meeting_to_ics(make(), host_name="Điểm cầu Trung ương", url="https://vcs.example/m/m-42")
    assert "\n" not in text.replace("\r\n", "")
    assert unfold(text) == [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//vcs//Lich hop truc tuyen//VI",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        "UID:m-42@vcs",
        "DTSTAMP:20250702T050607Z",
        "CREATED:20250701T020304Z",
        "LAST-MODIFIED:20250702T050607Z",
        "DTSTART:20250707T010000Z",
        "DTEND:20250707T023000Z",
        "SUMMARY:Hội nghị trực tuyến toàn quốc",
        "DESCRIPTION:Chủ trì: Điểm cầu Trung ương\\nTham gia: https://vcs.example/m/m-42",
        "URL:https://vcs.example/m/m-42",
        "STATUS:CONFIRMED",
        "TRANSP:OPAQUE",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    assert text.encode("utf-8").decode("utf-8") == text


def test_recurring_meeting_has_rrule_and_exdates():
    meeting = make(
        recurrence=parse_rrule("FREQ=WEEKLY;BYDAY=MO;UNTIL=20251231"),
        cancelled=frozenset({T + timedelta(days=21), T + timedelta(days=7)}),
    )
    props = properties(meeting_to_ics(meeting, host_name="Trung ương"))
    assert props["RRULE"] == "FREQ=WEEKLY;UNTIL=20251231T165959Z;BYDAY=MO"
    assert props["EXDATE"] == "20250714T010000Z,20250728T010000Z"
    assert props["STATUS"] == "CONFIRMED"
    assert "URL" not in props


@pytest.mark.parametrize(
    ("rule", "written"),
    [
        ("FREQ=WEEKLY;COUNT=10", "FREQ=WEEKLY;COUNT=10"),
        # open-ended: bounded at the last occurrence we will hold (261 weeks, within five years)
        ("FREQ=WEEKLY", "FREQ=WEEKLY;UNTIL=20300701T010000Z"),
        # an UNTIL beyond the five-year span is bounded the same way
        ("FREQ=WEEKLY;UNTIL=20991231", "FREQ=WEEKLY;UNTIL=20300701T010000Z"),
        # COUNT beyond the span: 1,000 months would be 83 years
        ("FREQ=MONTHLY;COUNT=1000", "FREQ=MONTHLY;UNTIL=20300707T010000Z"),
        ("FREQ=DAILY", "FREQ=DAILY;UNTIL=20280401T010000Z"),  # the 1,000th day
    ],
)
def test_rrule_is_bounded_where_expansion_stops(rule, written):
    assert properties(meeting_to_ics(make(recurrence=parse_rrule(rule)), host_name="x"))["RRULE"] == written


def test_cancelled_single_meeting_is_marked_cancelled():
    props = properties(meeting_to_ics(make(cancelled=frozenset({T})), host_name="Trung ương"))
    assert props["STATUS"] == "CANCELLED"
    assert "EXDATE" not in props


def test_title_escaping_and_long_vietnamese_text_survive_folding():
    title = "Hội nghị sơ kết 6 tháng; triển khai nhiệm vụ, giải pháp trọng tâm \\ quý III/2025 của UBND các xã, phường"
    text = meeting_to_ics(make(title=title), host_name="Hà Nội, điểm cầu chính")
    raw = text.encode("utf-8")
    assert all(len(line) <= 75 for line in raw.split(b"\r\n"))
    for line in raw.split(b"\r\n"):
        line.decode("utf-8")  # no line ends inside a multi-byte character
    props = properties(text)
    assert unescape(props["SUMMARY"]) == title
    assert props["SUMMARY"].count("\\,") == 2 and props["SUMMARY"].count("\\;") == 1
    assert unescape(props["DESCRIPTION"]) == "Chủ trì: Hà Nội, điểm cầu chính"


def test_url_with_a_line_break_is_refused():
    with pytest.raises(ValueError):
        meeting_to_ics(make(), host_name="x", url="https://a\r\nX-EVIL:1")


def test_calendar_feed_orders_events_and_names_hosts():
    meetings = [
        make(id="later", start=T + timedelta(days=2), host_endpoint_id="hall-01"),
        make(id="first", start=T),
        make(id="unknown-host", start=T + timedelta(days=3), host_endpoint_id="hall-99"),
    ]
    text = calendar_feed(
        meetings,
        calendar_name="Lịch họp: Phường Ba Đình",
        host_names={"central": "Trung ương", "hall-01": "Hà Nội"},
        url_for=lambda m: f"https://vcs.example/m/{m.id}",
    )
    lines = unfold(text)
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-1] == "END:VCALENDAR"
    assert "X-WR-CALNAME:Lịch họp: Phường Ba Đình" in lines
    assert "REFRESH-INTERVAL;VALUE=DURATION:PT1H" in lines
    assert [line for line in lines if line.startswith("UID:")] == ["UID:first@vcs", "UID:later@vcs", "UID:unknown-host@vcs"]
    descriptions = [unescape(line.split(":", 1)[1]) for line in lines if line.startswith("DESCRIPTION:")]
    assert [d.splitlines()[0] for d in descriptions] == ["Chủ trì: Trung ương", "Chủ trì: Hà Nội", "Chủ trì: hall-99"]
    assert lines.count("BEGIN:VEVENT") == lines.count("END:VEVENT") == 3


def test_empty_feed_is_a_valid_calendar():
    lines = unfold(calendar_feed([], calendar_name="Trống"))
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-1] == "END:VCALENDAR"
    assert "BEGIN:VEVENT" not in lines
