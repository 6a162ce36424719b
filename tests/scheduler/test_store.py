"""The meeting store's optimistic locking: per meeting, against a real Redis."""

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from scheduler import store as store_module
from scheduler.meeting import Meeting, OccurrenceStatus, ParticipantSelector
from scheduler.store import MeetingStore
from vcs import keys
from vcs.errors import NotFound

START = datetime(2030, 9, 2, 1, 0, tzinfo=UTC)


def meeting(meeting_id: str) -> Meeting:
    return Meeting(meeting_id, "Giao ban", "admin", "central", START, timedelta(hours=1), ParticipantSelector("communes", commune_ids=("00070",)))


def retitle(title: str, calls: list[str]):
    def change(stored: Meeting) -> Meeting:
        calls.append(title)
        return replace(stored, title=title)

    return change


async def stored_meetings(redis, *meeting_ids: str) -> list[Meeting]:
    store = MeetingStore(redis)
    return [await store.get(m) for m in meeting_ids]


async def test_concurrent_writes_to_different_meetings_do_not_conflict_and_to_one_meeting_do(redis, monkeypatch):
    store = MeetingStore(redis)
    for meeting_id in ("a", "b"):
        await store.create(meeting(meeting_id))
    await asyncio.gather(redis.ping(), redis.ping(), redis.ping())  # three pooled connections: the reads below overlap
    monkeypatch.setattr(store_module, "MAX_RETRIES", 1)  # no second attempt: a conflict shows as the error
    calls: list[str] = []
    results = await asyncio.gather(
        store.update("a", retitle("first", calls)),
        store.update("a", retitle("second", calls)),
        store.update("b", retitle("other", calls)),
        return_exceptions=True,
    )
    # the two writers of "a" read the same document: the one that wrote second would have overwritten the first
    assert [type(r).__name__ for r in results[:2]].count("Conflict") == 1
    assert isinstance(results[2], Meeting) and results[2].title == "other"
    a, b = await stored_meetings(redis, "a", "b")
    assert a.title in ("first", "second") and b.title == "other"
    assert sorted(calls) == ["first", "other", "second"]  # each change computed once, none retried


async def test_a_lost_race_on_one_meeting_is_applied_again_to_the_winner(redis):
    store = MeetingStore(redis)
    await store.create(meeting("a"))
    await asyncio.gather(redis.ping(), redis.ping())
    now = START - timedelta(days=1)
    statuses = []

    def status(stored: Meeting) -> Meeting:
        statuses.append(stored.title)
        return stored.with_status(START, OccurrenceStatus.PREPARING, now=now)

    calls: list[str] = []
    await asyncio.gather(store.update("a", retitle("Giao ban tháng 9", calls)), store.update("a", status))
    [a] = await stored_meetings(redis, "a")
    assert a.title == "Giao ban tháng 9" and a.status_of(START) is OccurrenceStatus.PREPARING  # no update lost
    assert len(calls) + len(statuses) == 3  # the loser computed its change again, on the winner's document


async def test_an_unknown_meeting_is_not_found(redis):
    with pytest.raises(NotFound):
        await MeetingStore(redis).update("missing", lambda m: m)


async def test_every_write_moves_the_version_and_names_the_meeting(redis):
    store = MeetingStore(redis)
    pubsub = redis.pubsub()
    await pubsub.subscribe(keys.MEETINGS_CHANGED)
    await pubsub.get_message(timeout=1)  # the subscription's confirmation
    await store.create(meeting("a"))
    await store.update("a", lambda m: replace(m, title="x"))
    assert await store.version() == "2"
    messages = [await pubsub.get_message(ignore_subscribe_messages=True, timeout=1) for _ in range(2)]
    assert [json.loads(m["data"]) for m in messages] == [{"meeting": "a"}, {"meeting": "a"}]
    await pubsub.aclose()
