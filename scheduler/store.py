"""Meetings in Redis: one JSON document per meeting, written with optimistic locking per meeting.

Every write bumps `MEETINGS_VERSION` and publishes on `MEETINGS_CHANGED`, so the
scheduler leader rebuilds its jobs and agents' schedules refresh without polling.

An update is a check-and-set on the meeting's own document: it is written only
if the document is still the one the change was computed from, otherwise the
change is applied again to the new document. Writes to other meetings (the
scheduler's status writes, other organizers' bookings) never get in the way.
A change that changes nothing writes nothing, and a write may be guarded by a
key that must still hold a value (the scheduler's lease: a leader that lost it
writes no status).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

import redis.asyncio as aioredis

from scheduler.meeting import Meeting
from vcs import keys
from vcs.errors import Conflict, NotFound

__all__ = ["GuardFailed", "MeetingStore", "changed_meeting"]

MAX_RETRIES = 20

# KEYS: meetings hash, version counter[, guard key]. ARGV: meeting id, the document as read, the new
# document, the change channel, the change message[, the guard's value]. 1 = written, 0 = the
# document changed since it was read, -1 = the guard key no longer holds its value.
_CHECK_AND_SET = """
if KEYS[3] and redis.call('GET', KEYS[3]) ~= ARGV[6] then return -1 end
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
"""


class GuardFailed(Exception):
    """A guarded write was refused: its guard key no longer holds the expected value."""


class MeetingStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._version: str | None = None
        self._meetings: dict[str, Meeting] = {}
        self._documents: dict[str, str] = {}  # as read, to parse again only what changed

    async def version(self) -> str:
        return await self.redis.get(keys.MEETINGS_VERSION) or "0"

    async def all(self) -> dict[str, Meeting]:
        """Every meeting by id, re-read only when the version counter moved."""
        version = await self.version()
        if version != self._version:
            documents = await self.redis.hgetall(keys.MEETINGS)
            known, parsed = self._documents, self._meetings
            self._meetings = {
                mid: parsed[mid] if known.get(mid) == doc else Meeting.from_json(json.loads(doc))
                for mid, doc in documents.items()
            }
            self._documents = documents
            self._version = version
        return self._meetings

    async def get_many(self, meeting_ids: Iterable[str]) -> dict[str, Meeting]:
        """These meetings by id; ids with no meeting are left out."""
        ids = list(meeting_ids)
        documents = await self.redis.hmget(keys.MEETINGS, ids) if ids else []
        return {mid: Meeting.from_json(json.loads(doc)) for mid, doc in zip(ids, documents, strict=True) if doc is not None}

    async def get(self, meeting_id: str) -> Meeting:
        raw = await self.redis.hget(keys.MEETINGS, meeting_id)
        if raw is None:
            raise NotFound(f"no meeting {meeting_id!r}")
        return Meeting.from_json(json.loads(raw))

    async def create(self, meeting: Meeting) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hsetnx(keys.MEETINGS, meeting.id, _dump(meeting))
            created, = await pipe.execute()
        if not created:
            raise Conflict(f"meeting {meeting.id} already exists")
        await self._changed(meeting.id)

    async def update(self, meeting_id: str, change: Callable[[Meeting], Meeting], *, guard: tuple[str, str] | None = None) -> Meeting:
        """Apply `change` to the stored meeting atomically; applied again when another writer changed it first.

        `guard`: (key, value) that must still hold for the write to happen, else `GuardFailed`.
        """
        guard_keys, guard_args = ([guard[0]], [guard[1]]) if guard else ([], [])
        for _ in range(MAX_RETRIES):
            raw = await self.redis.hget(keys.MEETINGS, meeting_id)
            if raw is None:
                raise NotFound(f"no meeting {meeting_id!r}")
            current = Meeting.from_json(json.loads(raw))
            updated = change(current)
            if updated == current:
                return current
            written = await self.redis.eval(
                _CHECK_AND_SET, 2 + len(guard_keys), keys.MEETINGS, keys.MEETINGS_VERSION, *guard_keys,
                meeting_id, raw, _dump(updated), keys.MEETINGS_CHANGED, _message(meeting_id), *guard_args,
            )
            if written == -1:
                raise GuardFailed(f"{guard[0] if guard else ''} changed; meeting {meeting_id} not written")
            if written:
                return updated
        raise Conflict(f"meeting {meeting_id} is being changed by someone else; try again")

    async def _changed(self, meeting_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(keys.MEETINGS_VERSION)
            pipe.publish(keys.MEETINGS_CHANGED, _message(meeting_id))
            await pipe.execute()


def _dump(meeting: Meeting) -> str:
    return json.dumps(meeting.to_json(), ensure_ascii=False, separators=(",", ":"))


def _message(meeting_id: str) -> str:
    return json.dumps({"meeting": meeting_id})


def changed_meeting(data: str | bytes) -> str | None:
    """The meeting a `MEETINGS_CHANGED` message names; None when it names none (anything may have changed)."""
    try:
        message = json.loads(data)
    except ValueError:
        return None
    meeting_id = message.get("meeting") if isinstance(message, dict) else None
    return meeting_id if isinstance(meeting_id, str) else None
