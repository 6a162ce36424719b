"""Booking rules against a real Redis: conflicts with stored meetings, edits racing other writers."""

import asyncio
from datetime import UTC, datetime, timedelta

from scheduler.booking import BookingService
from scheduler.meeting import OccurrenceStatus
from scheduler.participants import Groups
from scheduler.store import MeetingStore
from vcs.registry import Registry
from vcs.roles import Principal, Role

ADMIN = Principal("admin", Role.ADMIN)
NOW = datetime.now(UTC).replace(microsecond=0)


def body(commune_ids: list[str], hours_ahead: int = 2, **changes) -> dict:
    start = NOW + timedelta(hours=hours_ahead)
    return {"title": "Giao ban", "start": start.isoformat(), "duration_minutes": 60, "selector": {"kind": "communes", "commune_ids": commune_ids}, **changes}


async def service(redis) -> BookingService:
    registry = Registry(redis)
    await registry.seed()
    return BookingService(MeetingStore(redis), registry, Groups(redis))


async def test_cancelled_and_past_meetings_do_not_clash_and_live_ones_do(redis):
    booking = await service(redis)
    cancelled = (await booking.create(ADMIN, body(["00070"]), NOW)).meeting
    await booking.cancel(ADMIN, cancelled.id, None, NOW)
    later = await booking.create(ADMIN, body(["00070"], hours_ahead=5), NOW)
    again = await booking.preview(ADMIN, booking.meeting_from_body(ADMIN, body(["00070", "00004"]), NOW), NOW)
    assert again.conflicts == []  # the cancelled meeting held 00070 at that time
    clash = await booking.preview(ADMIN, booking.meeting_from_body(ADMIN, body(["00004", "00070"], hours_ahead=5), NOW), NOW)
    assert {(c.meeting_id, c.endpoint_id) for c in clash.conflicts} == {(later.meeting.id, "00070"), (later.meeting.id, "central")}


async def test_an_edit_keeps_a_status_written_while_it_was_checked(redis):
    booking = await service(redis)
    created = (await booking.create(ADMIN, body(["00070"]), NOW)).meeting
    store = MeetingStore(redis)

    async def scheduler_step():
        await store.update(created.id, lambda m: m.with_status(m.start, OccurrenceStatus.PREPARING, now=NOW))

    # the scheduler's write lands while the edit reads the registry and checks for conflicts
    edited, _ = await asyncio.gather(booking.update(ADMIN, created.id, {"title": "Giao ban (sửa)"}, NOW), scheduler_step())
    stored = await store.get(created.id)
    assert stored.title == "Giao ban (sửa)" and stored.status_of(stored.start) is OccurrenceStatus.PREPARING
    assert edited.meeting == stored
