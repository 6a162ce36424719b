"""The booking form's pure parts: reading what people type, building the RRULE, placing errors; the tile map."""

import re
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from starlette.datastructures import FormData, QueryParams

from scheduler.meeting import Meeting, ParticipantSelector
from scheduler.recurrence import parse_rrule
from vcs.divisions import provinces
from vcs.errors import FieldError, ValidationFailed
from web.ui import tilemap
from web.ui.booking_form import BookingInputs, parse_date, parse_time, slot_errors

VN_OFFSET = timedelta(hours=7)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-09-02", date(2026, 9, 2)),
        ("02/09/2026", date(2026, 9, 2)),
        ("2/9/2026", date(2026, 9, 2)),
        ("02.09.2026", date(2026, 9, 2)),
        ("31/02/2026", None),
        ("0001-01-01", None),  # far years would overflow the time zone arithmetic
        ("9/2/26", None),
        ("", None),
    ],
)
def test_dates_as_people_type_them(text, expected):
    assert parse_date(text) == expected


def test_times_as_people_type_them():
    assert parse_time("08:00") == time(8, 0) and parse_time("8h30") == time(8, 30) and parse_time("14.05") == time(14, 5)
    assert parse_time("24:00") is None and parse_time("8") is None and parse_time("") is None


def test_the_body_is_what_the_api_takes():
    form = FormData(
        [
            ("title", " Giao ban "), ("date", "02/09/2026"), ("time", "08:00"), ("duration", "1.000"),
            ("who", "communes"), ("commune", "00070"), ("commune", "00070"), ("commune", "<x>"), ("province", "01"),
            ("repeat", "weekly"), ("weekday", "WE"), ("weekday", "MO"), ("weekday", "XX"), ("ends", "until"), ("until", "30/09/2026"),
            ("host", "hall-01"), ("max_tier", "audio"), ("override", "yes"),
        ]
    )
    body, errors = BookingInputs.read(form).to_body()
    assert errors == {}
    assert body == {
        "title": "Giao ban",
        "host_endpoint_id": "hall-01",
        "media": {"max_tier": "audio"},
        "start": "2026-09-02T01:00:00Z",  # 08:00 in Vietnam
        "duration_minutes": 1000,  # "1.000" is a thousand
        "selector": {"kind": "communes", "commune_ids": ["00070"]},
        "recurrence": "FREQ=WEEKLY;UNTIL=20260930;BYDAY=MO,WE",
        "override_conflicts": True,
    }
    assert parse_rrule(body["recurrence"]).until == datetime(2026, 9, 30, 23, 59, 59, tzinfo=UTC) - VN_OFFSET


def _reasons(errors: dict) -> dict[str, str]:
    return {slot: error.reason for slot, error in errors.items()}


def test_recurrence_fields_and_their_errors():
    def rule(**fields) -> tuple:
        inputs = BookingInputs.read(QueryParams({"date": "2026-09-02", "time": "08:00", **fields}))
        return inputs.rrule_text(parse_date(inputs.date))

    assert rule() == (None, {})
    assert rule(repeat="daily", interval="2", ends="count", count="5") == ("FREQ=DAILY;INTERVAL=2;COUNT=5", {})
    assert rule(repeat="weekly", count="3") == ("FREQ=WEEKLY;COUNT=3;BYDAY=WE", {})  # the start's weekday, a Wednesday
    assert rule(repeat="monthly", ends="count", count="12") == ("FREQ=MONTHLY;COUNT=12", {})
    assert _reasons(rule(repeat="daily", interval="0", count="x")[1]) == {"interval": "must be a whole number", "count": "must be a whole number"}
    assert _reasons(rule(repeat="daily", ends="until", until="someday")[1]) == {"until": "enter the date as dd/mm/yyyy"}
    assert rule(repeat="hourly") == (None, {})  # not a choice the form offers: no repeat


def test_a_meeting_reads_back_into_the_form():
    start = datetime(2026, 9, 7, 1, 30, tzinfo=UTC)  # Monday 08:30 in Vietnam
    meeting = Meeting("m1", "Giao ban", "an", "central", start, timedelta(minutes=90), ParticipantSelector("provinces", province_codes=(1, 31)),
                      parse_rrule("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH;UNTIL=20261231"))
    inputs = BookingInputs.of_meeting(meeting)
    assert (inputs.date, inputs.time, inputs.duration, inputs.provinces) == ("2026-09-07", "08:30", "90", ["01", "31"])
    assert (inputs.repeat, inputs.interval, inputs.weekdays, inputs.ends, inputs.until) == ("weekly", "2", ["MO", "TH"], "until", "2026-12-31")
    body, errors = inputs.to_body()
    assert not errors and inputs.changes_for(meeting, body).keys() == {"title", "host_endpoint_id", "media", "duration_minutes", "selector", "record"}
    assert body["record"] is False and inputs.record == "no"  # the form keeps the meeting's recording choice
    odd = Meeting("m2", "x", "an", "central", start, timedelta(minutes=30), ParticipantSelector("all"), parse_rrule("FREQ=MONTHLY;BYDAY=1MO"))
    assert (BookingInputs.of_meeting(odd).repeat, BookingInputs.of_meeting(odd).rrule) == ("custom", "FREQ=MONTHLY;BYDAY=1MO")


def test_domain_errors_land_next_to_their_fields():
    exc = ValidationFailed(
        [
            FieldError.of("selector.province_codes", "no_province"),
            FieldError.of("recurrence", "count_range", max=1000, value=5000),
            FieldError.of("duration_minutes", "duration_range"),
            FieldError.of("cancelled", "all_cancelled"),
            FieldError.of("media.max_tier", "one_of", choices="720p, 360p, 180p, audio"),
        ]
    )
    assert _reasons(slot_errors(exc)) == {
        "participants": "must list at least one province",
        "count": "COUNT must be between 1 and 1000, got 5000",
        "duration": "must be between 5 minutes and 12 hours",
        "form": "every occurrence is cancelled",
        "max_tier": "must be one of 720p, 360p, 180p, audio",
    }


def test_every_province_has_its_own_tile_the_stylesheet_can_place():
    tiles = tilemap.tiles()
    assert {t.code for t in tiles} == {p.code for p in provinces()} and len(tiles) == 34
    assert len({(t.row, t.col) for t in tiles}) == 34
    css = (Path(tilemap.__file__).resolve().parents[1] / "static" / "app.css").read_text()
    for row in range(1, tilemap.ROWS + 1):
        assert f".r{row} {{ grid-row: {row}; }}" in css
    for col in range(1, tilemap.COLUMNS + 1):
        assert f".c{col} {{ grid-column: {col}; }}" in css
    assert re.search(r"grid-template-columns: repeat\((\d+),", css.split(".tilemap {")[1]).group(1) == str(tilemap.COLUMNS)
    # north above south: Hà Nội above Huế above Hồ Chí Minh City above Cà Mau
    row = {t.code: t.row for t in tiles}
    assert row["01"] < row["46"] < row["79"] < row["96"] and row["12"] == 1
    assert {t.short for t in tiles if t.code in ("01", "79", "48")} == {"Hà Nội", "TP HCM", "Đà Nẵng"}
    assert [tilemap.share_class(j, 100) for j in (0, 10, 50, 80, 95, 100)] == ["share-0", "share-1", "share-2", "share-3", "share-4", "share-4"]
    assert tilemap.share_class(0, 0) == "share-none"
