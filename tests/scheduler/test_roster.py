"""The roster: participants and each endpoint's current meetings, kept fresh by the version counters."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from scheduler.meeting import Meeting, ParticipantSelector
from scheduler.participants import Groups
from scheduler.roster import Roster
from scheduler.store import MeetingStore
from vcs import keys
from vcs.registry import Registry

NOW = datetime(2030, 9, 2, 1, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def meeting(meeting_id: str, start: datetime, selector: ParticipantSelector) -> Meeting:
    return Meeting(meeting_id, "Giao ban", "admin", "hall-01", start, HOUR, selector)


async def roster_with(redis, *meetings: Meeting) -> Roster:
    registry = Registry(redis)
    await registry.seed()
    store = MeetingStore(redis)
    for m in meetings:
        await store.create(m)
    return Roster(store, registry, Groups(redis), clock=NOW.timestamp)


async def test_only_current_meetings_are_in_schedules_and_every_meeting_has_participants(redis):
    communes = ParticipantSelector("communes", commune_ids=("00070", "00004"))
    upcoming = meeting("upcoming", NOW + HOUR, communes)
    under_way = meeting("under-way", NOW - HOUR / 2, communes)
    held = meeting("held", NOW - 2 * HOUR, communes)
    cancelled = meeting("cancelled", NOW + 2 * HOUR, communes).cancel_series(now=NOW)
    roster = await roster_with(redis, upcoming, under_way, held, cancelled)
    assert [m.id for m in await roster.meetings_of("00070")] == ["under-way", "upcoming"]
    assert [m.id for m in await roster.meetings_of("hall-01")] == ["under-way", "upcoming"]
    for meeting_id in ("upcoming", "held", "cancelled"):  # a live view of a past occurrence, a late report
        assert await roster.participants(meeting_id) == {"00070", "00004"}
        assert await roster.endpoints_of(meeting_id) == {"00070", "00004", "hall-01"}
    assert await roster.participants("unknown") == frozenset() and await roster.endpoints_of("unknown") == frozenset()
    assert await roster.current_endpoints() == {m: {"00070", "00004", "hall-01"} for m in ("upcoming", "under-way")}


async def test_a_change_of_meeting_group_or_registry_is_seen(redis):
    by_group = meeting("by-group", NOW + HOUR, ParticipantSelector("group", group="ban-chi-dao"))
    by_province = meeting("by-province", NOW + HOUR, ParticipantSelector("provinces", province_codes=(1,)))
    roster = await roster_with(redis, by_group, by_province)
    await Groups(redis).save("ban-chi-dao", ["00070"], roster.registry)
    hanoi = await roster.participants("by-province")
    assert await roster.participants("by-group") == {"00070"}

    await Groups(redis).save("ban-chi-dao", ["00070", "00004"], roster.registry)
    assert await roster.participants("by-group") == {"00070", "00004"}
    assert [m.id for m in await roster.meetings_of("00004")] == ["by-group", "by-province"]

    await roster.store.update("by-group", lambda m: replace(m, selector=ParticipantSelector("communes", commune_ids=("00008",))))
    assert await roster.participants("by-group") == {"00008"}
    assert [m.id for m in await roster.meetings_of("00004")] == ["by-province"]

    await roster.store.update("by-province", lambda m: m.cancel_series(now=NOW))
    assert await roster.meetings_of("00004") == [] and await roster.participants("by-province") == hanoi

    await redis.hdel(keys.ENDPOINTS, "00004")  # a commune merged away (there is no API for it yet)
    await redis.incr(keys.REGISTRY_VERSION)
    assert await roster.participants("by-province") == hanoi - {"00004"}
    await roster.registry.seed()
    assert await roster.participants("by-province") == hanoi
