from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduler.meeting import (
    MediaProfile,
    Meeting,
    OccurrenceStatus,
    ParticipantSelector,
    format_utc,
    occurrence_key,
    validate_new_meeting,
)
from scheduler.recurrence import parse_rrule
from vcs.errors import FieldError, ValidationFailed

NOW = datetime(2025, 7, 1, 0, 0, tzinfo=UTC)
START = datetime(2025, 7, 7, 1, 0, tzinfo=UTC)  # Monday 08:00 in Hanoi


def make(**changes) -> Meeting:
    base = Meeting(
        id="m-1",
        title="Hội nghị giao ban tháng 7",
        organizer="u-vpcp",
        host_endpoint_id="central",
        start=START,
        duration=timedelta(minutes=90),
        selector=ParticipantSelector("provinces", province_codes=(1, 79)),
        created_at=NOW,
        updated_at=NOW,
    )
    return replace(base, **changes)


def fields(errors: list[FieldError]) -> list[tuple[str, str]]:
    return [(e.field, e.reason) for e in errors]


# --- JSON -------------------------------------------------------------------


def test_json_is_plain_and_round_trips():
    meeting = make(
        recurrence=parse_rrule("FREQ=WEEKLY;BYDAY=MO;COUNT=4"),
        media=MediaProfile("360p"),
        cancelled=frozenset({START + timedelta(days=7)}),
        statuses={occurrence_key(START): OccurrenceStatus.ENDED},
        override_conflicts=True,
    )
    data = meeting.to_json()
    assert data == {
        "version": 1,
        "id": "m-1",
        "title": "Hội nghị giao ban tháng 7",
        "organizer": "u-vpcp",
        "host_endpoint_id": "central",
        "start": "2025-07-07T01:00:00Z",
        "duration_minutes": 90,
        "recurrence": "FREQ=WEEKLY;COUNT=4;BYDAY=MO",
        "selector": {"kind": "provinces", "province_codes": [1, 79], "commune_ids": [], "group": None},
        "media": {"max_tier": "360p"},
        "cancelled": ["2025-07-14T01:00:00Z"],
        "statuses": {"2025-07-07T01:00:00Z": "ended"},
        "created_at": "2025-07-01T00:00:00Z",
        "updated_at": "2025-07-01T00:00:00Z",
        "override_conflicts": True,
        "cancelled_from": None,
        "record": False,
    }
    assert Meeting.from_json(json.loads(json.dumps(data, ensure_ascii=False))) == meeting


def test_from_json_accepts_offsets_and_registry_province_spelling():
    data = make().to_json() | {"start": "2025-07-07T08:00:00+07:00"}
    data["selector"]["province_codes"] = ["01", "79"]
    meeting = Meeting.from_json(data)
    assert meeting.start == START
    assert meeting.selector.province_codes == (1, 79)


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"title": 42}, "title", "must be a string"),
        ({"title": None}, "title", "is required"),
        ({"selector": {"province_codes": [1]}}, "selector", "is missing 'kind'"),
        ({"selector": {"kind": "provinces", "province_codes": ["Hà Nội"]}}, "selector", "invalid literal for int() with base 10: 'Hà Nội'"),
        ({"start": "2025-07-07T08:00:00"}, "start", "'2025-07-07T08:00:00' has no UTC offset"),
        ({"start": "next monday"}, "start", "Invalid isoformat string: 'next monday'"),
        ({"duration_minutes": "90"}, "duration_minutes", "must be a number"),
        ({"override_conflicts": "false"}, "override_conflicts", "must be true or false"),
        ({"recurrence": "FREQ=YEARLY"}, "recurrence", "FREQ=YEARLY is not supported; use DAILY, WEEKLY or MONTHLY"),
        ({"statuses": {"2025-07-07T01:00:00Z": "paused"}}, "statuses", "'paused' is not a valid OccurrenceStatus"),
    ],
)
def test_from_json_names_the_bad_field(change, field, reason):
    with pytest.raises(ValidationFailed) as caught:
        Meeting.from_json(make().to_json() | change)
    assert fields(caught.value.errors) == [(field, reason)]


def test_from_json_missing_field():
    data = make().to_json()
    del data["organizer"]
    with pytest.raises(ValidationFailed) as caught:
        Meeting.from_json(data)
    assert caught.value.errors[0].field == "organizer"


# --- occurrences and statuses -------------------------------------------------


def test_status_of_defaults_and_updates():
    meeting = make(recurrence=parse_rrule("FREQ=WEEKLY;COUNT=3"))
    second = START + timedelta(days=7)
    assert meeting.status_of(second) is OccurrenceStatus.SCHEDULED
    live = meeting.with_status(second, OccurrenceStatus.LIVE, now=START + timedelta(days=7))
    assert live.status_of(second) is OccurrenceStatus.LIVE
    assert live.updated_at == START + timedelta(days=7)
    assert meeting.status_of(second) is OccurrenceStatus.SCHEDULED  # the original is unchanged


def test_cancel_occurrence_is_idempotent_and_removes_it():
    meeting = make(recurrence=parse_rrule("FREQ=WEEKLY;COUNT=3"))
    second = START + timedelta(days=7)
    once = meeting.cancel_occurrence(second, now=NOW)
    twice = once.cancel_occurrence(second, now=NOW)
    assert once == twice
    assert once.occurrences() == [START, START + timedelta(days=14)]
    assert once.status_of(second) is OccurrenceStatus.CANCELLED


def test_cancel_refuses_a_time_outside_the_series():
    meeting = make(recurrence=parse_rrule("FREQ=WEEKLY;COUNT=3"))
    with pytest.raises(ValueError, match="not an occurrence"):
        meeting.cancel_occurrence(START + timedelta(days=1), now=NOW)
    with pytest.raises(ValueError, match="not an occurrence"):
        meeting.cancel_occurrence(START + timedelta(days=21), now=NOW)  # COUNT=3 ends before


def test_meeting_is_immutable_and_hashable():
    meeting = make()
    with pytest.raises(AttributeError):
        meeting.title = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        meeting.statuses["x"] = OccurrenceStatus.LIVE  # type: ignore[index]
    assert hash(meeting) == hash(make())


def test_naive_times_are_refused():
    with pytest.raises(ValueError, match="aware"):
        make(start=datetime(2025, 7, 7, 8, 0))


def test_format_utc_is_one_spelling_per_instant():
    hanoi = datetime(2025, 7, 7, 8, 0, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
    assert format_utc(hanoi) == "2025-07-07T01:00:00Z"
    assert occurrence_key(hanoi) == occurrence_key(START)


# --- validation ---------------------------------------------------------------


def test_valid_meeting_has_no_errors():
    assert validate_new_meeting(make(), now=NOW, provinces={"01", "79"}, endpoints={"central"}) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"title": "   "}, [("title", "must not be empty")]),
        ({"title": "a" * 201}, [("title", "must be at most 200 characters (has 201)")]),
        ({"title": "Họp\nkhẩn"}, [("title", "must be a single line without control characters")]),
        ({"id": "m 1"}, [("id", "must be 1-64 letters, digits, '-' or '_'")]),
        ({"organizer": ""}, [("organizer", "must not be empty")]),
        ({"host_endpoint_id": "hall-99"}, [("host_endpoint_id", "unknown endpoint 'hall-99'")]),
        ({"start": NOW}, [("start", "must be in the future")]),
        ({"start": NOW - timedelta(days=1)}, [("start", "must be in the future")]),
        ({"start": START + timedelta(microseconds=30)}, [("start", "must be on a whole second")]),
        ({"start": datetime(2031, 1, 1, tzinfo=UTC)}, [("start", "must be within 5 years from now")]),
        ({"duration": timedelta(minutes=4)}, [("duration_minutes", "must be between 5 minutes and 12 hours")]),
        ({"duration": timedelta(hours=12, minutes=1)}, [("duration_minutes", "must be between 5 minutes and 12 hours")]),
        ({"duration": timedelta(minutes=30, seconds=20)}, [("duration_minutes", "must be a whole number of minutes")]),
        ({"media": MediaProfile("4k")}, [("media.max_tier", "must be one of 720p, 360p, 180p, audio")]),
        (
            {"recurrence": parse_rrule("FREQ=WEEKLY;BYDAY=TU")},
            [("recurrence", "the start date is not one the rule selects")],
        ),
        (
            {"recurrence": parse_rrule("FREQ=DAILY;UNTIL=20250706T000000Z")},
            [("recurrence", "UNTIL is before the start")],
        ),
        (
            {"cancelled": frozenset({START + timedelta(hours=1)})},
            [("cancelled", "2025-07-07T02:00:00Z is not an occurrence of the series")],
        ),
        ({"cancelled": frozenset({START})}, [("cancelled", "every occurrence is cancelled")]),
    ],
)
def test_validation_errors(changes, expected):
    errors = validate_new_meeting(make(**changes), now=NOW, provinces={1, 79}, endpoints={"central"})
    assert fields(errors) == expected


@pytest.mark.parametrize(("minutes", "ok"), [(5, True), (720, True), (4, False), (721, False)])
def test_duration_bounds_are_inclusive(minutes, ok):
    errors = validate_new_meeting(make(duration=timedelta(minutes=minutes)), now=NOW)
    assert (errors == []) is ok


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        (ParticipantSelector("all"), []),
        (ParticipantSelector("communes", commune_ids=("00004", "26734")), []),
        (ParticipantSelector("group", group="mien-nui"), []),
        (ParticipantSelector("everyone"), [("selector.kind", "must be one of all, provinces, communes, group")]),
        (ParticipantSelector("all", province_codes=(1,)), [("selector.province_codes", "must be empty when kind is 'all'")]),
        (ParticipantSelector("provinces"), [("selector.province_codes", "must list at least one province")]),
        (ParticipantSelector("provinces", province_codes=(1, 1)), [("selector.province_codes", "lists a province twice")]),
        (ParticipantSelector("provinces", province_codes=(1, 99)), [("selector.province_codes", "unknown province code(s): 99")]),
        (
            ParticipantSelector("communes", commune_ids=("00004",), group="x"),
            [("selector.group", "must be empty when kind is 'communes'")],
        ),
        (ParticipantSelector("communes", commune_ids=("99999",)), [("selector.commune_ids", "unknown commune code(s): 99999")]),
        (ParticipantSelector("group", group=" "), [("selector.group", "must name a group")]),
        (ParticipantSelector("group", group="nowhere"), [("selector.group", "unknown group 'nowhere'")]),
    ],
)
def test_selector_validation(selector, expected):
    errors = validate_new_meeting(
        make(selector=selector),
        now=NOW,
        provinces=["01", "79"],
        communes={"00004", "26734"},
        groups={"mien-nui"},
    )
    assert fields(errors) == expected


def test_without_registry_codes_are_not_checked_for_existence():
    meeting = make(selector=ParticipantSelector("provinces", province_codes=(99,)), host_endpoint_id="anything")
    assert validate_new_meeting(meeting, now=NOW) == []


def test_cancel_series_keeps_the_past_and_drops_the_rest():
    from datetime import UTC, datetime, timedelta

    from scheduler.meeting import Meeting, OccurrenceStatus, ParticipantSelector
    from scheduler.recurrence import parse_rrule

    start = datetime(2025, 9, 1, 1, 0, tzinfo=UTC)
    meeting = Meeting(
        "daily", "Giao ban", "admin", "central", start, timedelta(hours=1), ParticipantSelector("all"),
        recurrence=parse_rrule("FREQ=DAILY"),
    )
    now = start + timedelta(days=2, minutes=30)  # the third occurrence is under way
    cancelled = meeting.cancel_series(now=now)
    assert cancelled.occurrences(window_start=start, limit=10) == [start, start + timedelta(days=1)]
    assert cancelled.status_of(start + timedelta(days=2)) is OccurrenceStatus.CANCELLED
    assert cancelled.status_of(start + timedelta(days=40)) is OccurrenceStatus.CANCELLED
    assert Meeting.from_json(cancelled.to_json()) == cancelled
    assert cancelled.cancel_series(now=now + timedelta(days=1)) == cancelled
    assert not cancelled.is_cancelled and meeting.cancel_series(now=start - timedelta(days=1)).is_cancelled
