from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduler.recurrence import (
    LOCAL_TZ,
    MAX_OCCURRENCES,
    MAX_SPAN,
    ByDay,
    Frequency,
    Recurrence,
    RecurrenceError,
    is_synchronized,
    occurrences,
    parse_rrule,
)


def vn(year: int, month: int, day: int, hour: int = 8, minute: int = 0) -> datetime:
    """A wall-clock time in Hanoi, as the aware UTC datetime the functions take."""
    return datetime(year, month, day, hour, minute, tzinfo=LOCAL_TZ).astimezone(UTC)


def local_dates(found: list[datetime]) -> list[str]:
    return [d.astimezone(LOCAL_TZ).date().isoformat() for d in found]


# --- parsing ----------------------------------------------------------------


def test_parse_full_rule():
    rule = parse_rrule("RRULE:FREQ=WEEKLY;INTERVAL=2;COUNT=10;BYDAY=MO,WE;WKST=SU")
    assert rule == Recurrence(
        Frequency.WEEKLY, interval=2, count=10, by_day=(ByDay(0), ByDay(2)), week_start=6
    )


def test_parse_is_case_insensitive_and_tolerates_trailing_semicolon():
    assert parse_rrule("freq=monthly;byday=-1fr;") == Recurrence(Frequency.MONTHLY, by_day=(ByDay(4, -1),))


@pytest.mark.parametrize(
    ("text", "until"),
    [
        ("FREQ=DAILY;UNTIL=20250731T010000Z", datetime(2025, 7, 31, 1, 0, tzinfo=UTC)),
        # a date means the whole local day: 23:59:59 in Hanoi is 16:59:59 UTC
        ("FREQ=DAILY;UNTIL=20250731", datetime(2025, 7, 31, 16, 59, 59, tzinfo=UTC)),
        # a floating time is wall-clock time in Hanoi (UTC+7)
        ("FREQ=DAILY;UNTIL=20250731T080000", datetime(2025, 7, 31, 1, 0, tzinfo=UTC)),
    ],
)
def test_until_forms(text, until):
    assert parse_rrule(text).until == until


@pytest.mark.parametrize(
    "text",
    [
        "FREQ=DAILY",
        "FREQ=DAILY;INTERVAL=3;COUNT=7",
        "FREQ=WEEKLY;UNTIL=20251231T165959Z;BYDAY=MO,TU,WE,TH,FR",
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH;WKST=SU",
        "FREQ=MONTHLY;BYDAY=1MO",
        "FREQ=MONTHLY;COUNT=12;BYDAY=-1FR",
        "FREQ=MONTHLY;BYMONTHDAY=-1",
        "FREQ=MONTHLY;BYMONTHDAY=1,15",
        "FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13",
    ],
)
def test_to_rrule_round_trips(text):
    rule = parse_rrule(text)
    assert rule.to_rrule() == text
    assert parse_rrule(rule.to_rrule()) == rule


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "the rule is empty; it needs at least FREQ"),
        ("INTERVAL=2", "FREQ is required"),
        ("FREQ=YEARLY", "FREQ=YEARLY is not supported; use DAILY, WEEKLY or MONTHLY"),
        ("FREQ=HOURLY", "FREQ=HOURLY is not supported; use DAILY, WEEKLY or MONTHLY"),
        ("FREQ=DAILY;COUNT=5;UNTIL=20251231", "COUNT and UNTIL cannot both be given; use one to end the series"),
        ("FREQ=DAILY;COUNT=0", "COUNT must be a positive integer, got '0'"),
        ("FREQ=DAILY;COUNT=-3", "COUNT must be a positive integer, got '-3'"),
        ("FREQ=DAILY;COUNT=5000", "COUNT must be between 1 and 1000, got 5000"),
        ("FREQ=DAILY;INTERVAL=two", "INTERVAL must be a positive integer, got 'TWO'"),
        ("FREQ=DAILY;INTERVAL=5000", "INTERVAL must be between 1 and 1000, got 5000"),
        ("FREQ=DAILY;FREQ=WEEKLY", "FREQ appears twice"),
        ("FREQ=DAILY;BYHOUR=9", "BYHOUR is not supported"),
        ("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=-1", "BYSETPOS is not supported"),
        ("FREQ=DAILY;COLOR=RED", "unknown rule part COLOR"),
        ("FREQ=DAILY;COUNT", "'COUNT' is not of the form NAME=VALUE"),
        ("FREQ=DAILY;BYDAY=MO", "BYDAY is not supported with FREQ=DAILY; use FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"),
        ("FREQ=WEEKLY;BYDAY=1MO", "BYDAY=1MO: an ordinal before the day is only allowed with FREQ=MONTHLY"),
        ("FREQ=WEEKLY;BYDAY=MO,XX", "BYDAY value 'XX' is not a day such as MO, 1MO or -1FR"),
        ("FREQ=WEEKLY;BYDAY=MO,MO", "BYDAY lists MO twice"),
        ("FREQ=MONTHLY;BYDAY=6MO", "BYDAY=6MO: the ordinal must be 1 to 5 or -1 to -5"),
        ("FREQ=MONTHLY;BYDAY=0MO", "BYDAY value '0MO': the ordinal cannot be 0"),
        ("FREQ=WEEKLY;BYMONTHDAY=1", "BYMONTHDAY is only supported with FREQ=MONTHLY"),
        ("FREQ=MONTHLY;BYMONTHDAY=32", "BYMONTHDAY value 32 is out of range (1 to 31, or -31 to -1)"),
        ("FREQ=MONTHLY;BYMONTHDAY=0", "BYMONTHDAY value 0 is out of range (1 to 31, or -31 to -1)"),
        ("FREQ=MONTHLY;BYMONTHDAY=last", "BYMONTHDAY value 'LAST' is not a day number such as 15 or -1"),
        ("FREQ=DAILY;UNTIL=2025-12-31", "UNTIL=2025-12-31 is not a date (YYYYMMDD) or a UTC time (YYYYMMDDTHHMMSSZ)"),
        ("FREQ=DAILY;UNTIL=20250230", "UNTIL=20250230 is not a valid date or time"),
        ("FREQ=WEEKLY;WKST=XX", "WKST=XX is not one of MO, TU, WE, TH, FR, SA, SU"),
    ],
)
def test_invalid_rules_give_reasons(text, reason):
    with pytest.raises(RecurrenceError) as caught:
        parse_rrule(text)
    assert caught.value.reason == reason


def test_constructor_checks_like_the_parser():
    with pytest.raises(RecurrenceError, match="COUNT and UNTIL"):
        Recurrence(Frequency.DAILY, count=3, until=datetime(2026, 1, 1, tzinfo=UTC))


# --- expansion --------------------------------------------------------------


def test_single_meeting_has_one_occurrence():
    assert occurrences(vn(2025, 7, 1), None) == [vn(2025, 7, 1)]


@pytest.mark.parametrize(
    ("start", "rule", "expected"),
    [
        # the 31st skips months without one (RFC 5545), in a non-leap year
        (vn(2025, 1, 31), "FREQ=MONTHLY;COUNT=4", ["2025-01-31", "2025-03-31", "2025-05-31", "2025-07-31"]),
        # the 30th and 29th skip February only when it is short
        (vn(2025, 1, 30), "FREQ=MONTHLY;COUNT=3", ["2025-01-30", "2025-03-30", "2025-04-30"]),
        (vn(2024, 1, 29), "FREQ=MONTHLY;COUNT=3", ["2024-01-29", "2024-02-29", "2024-03-29"]),
        (vn(2025, 1, 29), "FREQ=MONTHLY;COUNT=3", ["2025-01-29", "2025-03-29", "2025-04-29"]),
        # BYMONTHDAY=-1 is the last day: Feb 28 in 2025, Feb 29 in 2024
        (vn(2025, 1, 31), "FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=4", ["2025-01-31", "2025-02-28", "2025-03-31", "2025-04-30"]),
        (vn(2024, 1, 31), "FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=3", ["2024-01-31", "2024-02-29", "2024-03-31"]),
        # -2 is the day before the last
        (vn(2024, 1, 30), "FREQ=MONTHLY;BYMONTHDAY=-2;COUNT=3", ["2024-01-30", "2024-02-28", "2024-03-30"]),
        # several month days, in order within each month
        (vn(2025, 7, 1), "FREQ=MONTHLY;BYMONTHDAY=15,1;COUNT=4", ["2025-07-01", "2025-07-15", "2025-08-01", "2025-08-15"]),
        # 1MO: first Monday; -1FR: last Friday (July 2025 starts on a Tuesday)
        (vn(2025, 7, 7), "FREQ=MONTHLY;BYDAY=1MO;COUNT=3", ["2025-07-07", "2025-08-04", "2025-09-01"]),
        (vn(2025, 7, 25), "FREQ=MONTHLY;BYDAY=-1FR;COUNT=3", ["2025-07-25", "2025-08-29", "2025-09-26"]),
        # a 5th Monday exists only in some months
        (vn(2025, 6, 30), "FREQ=MONTHLY;BYDAY=5MO;COUNT=3", ["2025-06-30", "2025-09-29", "2025-12-29"]),
        # Friday the 13th: BYDAY and BYMONTHDAY intersect
        (vn(2025, 6, 13), "FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13;COUNT=3", ["2025-06-13", "2026-02-13", "2026-03-13"]),
        # INTERVAL on months
        (vn(2025, 1, 15), "FREQ=MONTHLY;INTERVAL=3;COUNT=4", ["2025-01-15", "2025-04-15", "2025-07-15", "2025-10-15"]),
        # a leap day yearly-by-months: only every 48 months has Feb 29
        (vn(2024, 2, 29), "FREQ=MONTHLY;INTERVAL=12;COUNT=2", ["2024-02-29", "2028-02-29"]),
    ],
)
def test_monthly(start, rule, expected):
    assert local_dates(occurrences(start, parse_rrule(rule))) == expected


@pytest.mark.parametrize(
    ("start", "rule", "expected"),
    [
        (vn(2025, 7, 1), "FREQ=DAILY;COUNT=3", ["2025-07-01", "2025-07-02", "2025-07-03"]),
        (vn(2025, 7, 1), "FREQ=DAILY;INTERVAL=10;COUNT=3", ["2025-07-01", "2025-07-11", "2025-07-21"]),
        # crossing a month end and a leap day
        (vn(2024, 2, 28), "FREQ=DAILY;COUNT=3", ["2024-02-28", "2024-02-29", "2024-03-01"]),
        # UNTIL is inclusive when it lands on an occurrence
        (vn(2025, 7, 1), "FREQ=DAILY;UNTIL=20250703T010000Z", ["2025-07-01", "2025-07-02", "2025-07-03"]),
        # ...and excludes the day whose 08:00 is after it
        (vn(2025, 7, 1), "FREQ=DAILY;UNTIL=20250703T005959Z", ["2025-07-01", "2025-07-02"]),
        # a date UNTIL keeps that whole local day
        (vn(2025, 7, 1, 20), "FREQ=DAILY;UNTIL=20250703", ["2025-07-01", "2025-07-02", "2025-07-03"]),
    ],
)
def test_daily_count_until_interval(start, rule, expected):
    assert local_dates(occurrences(start, parse_rrule(rule))) == expected


@pytest.mark.parametrize(
    ("start", "rule", "expected"),
    [
        # plain weekly keeps the start's weekday (2025-07-01 is a Tuesday)
        (vn(2025, 7, 1), "FREQ=WEEKLY;COUNT=3", ["2025-07-01", "2025-07-08", "2025-07-15"]),
        # BYDAY list, starting mid-week: earlier days of the first week are not before the start
        (vn(2025, 7, 2), "FREQ=WEEKLY;BYDAY=MO,WE,FR;COUNT=5", ["2025-07-02", "2025-07-04", "2025-07-07", "2025-07-09", "2025-07-11"]),
        # INTERVAL=2 with weeks starting Monday
        (vn(2025, 7, 1), "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,SU;COUNT=4", ["2025-07-01", "2025-07-06", "2025-07-15", "2025-07-20"]),
        # WKST=SU moves the week boundary, so the same rule picks a different Sunday (RFC 5545 example)
        (vn(2025, 7, 1), "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,SU;WKST=SU;COUNT=4", ["2025-07-01", "2025-07-13", "2025-07-15", "2025-07-27"]),
        # working days until a date
        (vn(2025, 7, 3), "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;UNTIL=20250708", ["2025-07-03", "2025-07-04", "2025-07-07", "2025-07-08"]),
    ],
)
def test_weekly(start, rule, expected):
    assert local_dates(occurrences(start, parse_rrule(rule))) == expected


def test_wall_clock_time_is_kept_in_local_zone():
    found = occurrences(vn(2025, 7, 1, 7, 30), parse_rrule("FREQ=DAILY;COUNT=2"))
    assert found == [datetime(2025, 7, 1, 0, 30, tzinfo=UTC), datetime(2025, 7, 2, 0, 30, tzinfo=UTC)]
    assert all(d.tzinfo is UTC for d in found)


def test_dst_zone_keeps_wall_clock_across_the_change():
    berlin = ZoneInfo("Europe/Berlin")
    start = datetime(2025, 3, 29, 9, 0, tzinfo=berlin).astimezone(UTC)  # Saturday, CET (UTC+1)
    found = occurrences(start, parse_rrule("FREQ=DAILY;COUNT=2"), tz=berlin)
    # Sunday 09:00 is CEST (UTC+2): 07:00 UTC, not 08:00
    assert found == [datetime(2025, 3, 29, 8, 0, tzinfo=UTC), datetime(2025, 3, 30, 7, 0, tzinfo=UTC)]


def test_dst_gap_time_uses_offset_before_the_gap():
    berlin = ZoneInfo("Europe/Berlin")
    start = datetime(2025, 3, 29, 2, 30, tzinfo=berlin).astimezone(UTC)
    found = occurrences(start, parse_rrule("FREQ=DAILY;COUNT=2"), tz=berlin)
    # 02:30 does not exist on 30 March; RFC 5545 reads it with the pre-gap offset (+01:00)
    assert found[1] == datetime(2025, 3, 30, 1, 30, tzinfo=UTC)
    assert found[1].astimezone(berlin).hour == 3


def test_cancelled_occurrences_are_left_out_but_still_count():
    start = vn(2025, 7, 7)  # Monday
    rule = parse_rrule("FREQ=WEEKLY;COUNT=4")
    found = occurrences(start, rule, cancelled={vn(2025, 7, 14), vn(2025, 7, 28)})
    assert local_dates(found) == ["2025-07-07", "2025-07-21"]


def test_cancelled_matches_instants_in_any_zone():
    start = vn(2025, 7, 7)
    cancelled = {datetime(2025, 7, 8, 8, 0, tzinfo=LOCAL_TZ)}
    assert local_dates(occurrences(start, parse_rrule("FREQ=DAILY;COUNT=3"), cancelled=cancelled)) == [
        "2025-07-07",
        "2025-07-09",
    ]


def test_window_is_half_open_and_limit_applies_after_it():
    start = vn(2025, 7, 1)
    rule = parse_rrule("FREQ=DAILY")
    found = occurrences(start, rule, window_start=vn(2025, 7, 10), window_end=vn(2025, 7, 13))
    assert local_dates(found) == ["2025-07-10", "2025-07-11", "2025-07-12"]
    assert local_dates(occurrences(start, rule, window_start=vn(2025, 7, 10), limit=2)) == ["2025-07-10", "2025-07-11"]


@pytest.mark.parametrize(
    ("rule", "count", "last"),
    [
        ("FREQ=DAILY", MAX_OCCURRENCES, date(2028, 3, 26)),  # the occurrence cap comes first
        ("FREQ=WEEKLY", 261, date(2030, 6, 25)),  # the five-year span comes first
        ("FREQ=MONTHLY", 61, date(2030, 7, 1)),  # the span end itself is included
        ("FREQ=MONTHLY;BYDAY=1MO;BYMONTHDAY=31", 1, date(2025, 7, 1)),  # never matches again: still ends
    ],
)
def test_unbounded_rules_are_capped(rule, count, last):
    start = vn(2025, 7, 1)
    found = occurrences(start, parse_rrule(rule))
    assert len(found) == count
    assert found[-1].astimezone(LOCAL_TZ).date() == last
    assert found[-1] - start <= MAX_SPAN


def test_until_far_away_is_capped_too():
    found = occurrences(vn(2025, 7, 1), parse_rrule("FREQ=WEEKLY;UNTIL=20991231"))
    assert len(found) == 261


def test_start_counts_as_first_occurrence_even_if_unsynchronized():
    start = vn(2025, 7, 1)  # a Tuesday
    rule = parse_rrule("FREQ=WEEKLY;BYDAY=MO;COUNT=3")
    assert local_dates(occurrences(start, rule)) == ["2025-07-01", "2025-07-07", "2025-07-14"]
    assert not is_synchronized(start, rule)
    assert is_synchronized(vn(2025, 7, 7), rule)


@pytest.mark.parametrize(
    ("start", "rule", "synchronized"),
    [
        (vn(2025, 7, 31), "FREQ=MONTHLY;BYMONTHDAY=-1", True),
        (vn(2025, 7, 30), "FREQ=MONTHLY;BYMONTHDAY=-1", False),
        (vn(2025, 7, 25), "FREQ=MONTHLY;BYDAY=-1FR", True),
        (vn(2025, 7, 18), "FREQ=MONTHLY;BYDAY=-1FR", False),
        (vn(2025, 7, 18), "FREQ=DAILY;INTERVAL=3", True),
    ],
)
def test_is_synchronized(start, rule, synchronized):
    assert is_synchronized(start, parse_rrule(rule)) is synchronized


def test_naive_start_is_refused():
    with pytest.raises(ValueError, match="aware"):
        occurrences(datetime(2025, 7, 1, 8), None)


def test_window_deep_into_a_long_series():
    start = vn(2025, 7, 1)
    rule = parse_rrule("FREQ=DAILY")
    assert occurrences(start, rule, window_start=start + timedelta(days=999))[0] == start + timedelta(days=999)
