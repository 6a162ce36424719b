"""What each lifecycle step of an occurrence does, run exactly once across all schedulers.

A step is one recoverable unit. The leader first claims it (a claim hash
holding its fencing token, written atomically with a check that it still holds
the lease); then it makes the step's effects, each one idempotent: the SFU room
opened or ended (recorded in the claim once the node answered), the meeting's
status (written only if it differs, guarded by the lease), the agents' notice
(published and recorded in one script, so at most once). The done marker is
written last. A step claimed but not done (a crash, a lost lease, a Redis
error) is claimed again by the next attempt or the next leader, which makes
only the effects not yet recorded.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import redis.asyncio as aioredis

from scheduler.lifecycle import Phase, lifecycle_times
from scheduler.meeting import Meeting, OccurrenceStatus, format_utc
from scheduler.reports import Reports
from scheduler.rooms import assign_room
from scheduler.roster import Roster
from scheduler.sfu_control import SfuControl, SfuUnavailable
from scheduler.store import GuardFailed, MeetingStore
from vcs import keys
from vcs.errors import NotFound

__all__ = ["LifecycleActions", "notify_agents", "undone"]

log = logging.getLogger(__name__)

LOG_LENGTH = 1000
MARKER_TTL = 8 * 24 * 3600

# KEYS: lease, done marker, claim. ARGV: lease value, fence, marker ttl.
# Returns 1 = claimed (a claim by an earlier fence is taken over), 0 = already done, -1 = lease lost.
_CLAIM = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[3], 'fence', ARGV[2])
redis.call('EXPIRE', KEYS[3], ARGV[3])
return 1
"""
# KEYS: lease, done marker, claim. ARGV: lease value, channel, message, fence.
# 1 = published now, 0 = published before (or the step is done), -1 = lease lost.
_NOTIFY_ONCE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if redis.call('EXISTS', KEYS[2]) == 1 or redis.call('HEXISTS', KEYS[3], 'notified') == 1 then return 0 end
redis.call('PUBLISH', ARGV[2], ARGV[3])
redis.call('HSET', KEYS[3], 'notified', ARGV[4])
return 1
"""
# KEYS: done marker, claim, log. ARGV: fence, log entry, marker ttl. 1 = marked now, 0 = already done.
_DONE = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[3]) then return 0 end
redis.call('DEL', KEYS[2])
redis.call('LPUSH', KEYS[3], ARGV[2])
redis.call('LTRIM', KEYS[3], 0, %d)
return 1
""" % (LOG_LENGTH - 1)

_STATUS = {
    Phase.READINESS: OccurrenceStatus.PREPARING,
    Phase.WARMUP: OccurrenceStatus.PREPARING,
    Phase.LIVE: OccurrenceStatus.LIVE,
    Phase.ENDED: OccurrenceStatus.ENDED,
}
_EVENT = {Phase.READINESS: "readiness", Phase.WARMUP: "join", Phase.LIVE: "start", Phase.ENDED: "leave"}


async def notify_agents(redis: aioredis.Redis, endpoints: list[str] | str, event: dict) -> None:
    await redis.publish(keys.AGENT_NOTIFY, json.dumps({"endpoints": endpoints, "event": event}))


class LeaseLost(Exception):
    """The step's leader no longer holds the lease: another leader completes the step."""


class LifecycleActions:
    def __init__(
        self, store: MeetingStore, roster: Roster, *, public_url: str, sfu: SfuControl | None = None, reports: Reports | None = None
    ) -> None:
        self.store = store
        self.reports = reports
        self.roster = roster
        self.redis = store.redis
        self.public_url = public_url
        self.sfu = sfu

    async def run(self, meeting_id: str, occurrence: datetime, phase: Phase, lease_value: str, fence: int, now: datetime) -> str:
        """Run one step; returns "done", "skipped" (already done, or cancelled) or "lease-lost".

        Safe to call again after any failure: the effects already made are not made twice.
        """
        try:
            meeting = await self.store.get(meeting_id)
        except NotFound:
            return "skipped"
        status = meeting.status_of(occurrence)
        if status is OccurrenceStatus.CANCELLED and phase is not Phase.ENDED:
            return "skipped"
        occ = format_utc(occurrence)
        done_key, claim_key = keys.phase_done(meeting_id, occ, phase.value), keys.phase_claim(meeting_id, occ, phase.value)
        claimed = await self.redis.eval(_CLAIM, 3, keys.SCHEDULER_LEASE, done_key, claim_key, lease_value, fence, MARKER_TTL)
        if claimed == -1:
            return "lease-lost"
        if claimed == 0:
            return "skipped"
        log.info("occurrence %s %s: %s (fence %d)", meeting_id, occ, phase.value, fence)
        try:
            await self._effects(meeting, occurrence, phase, status, lease_value, fence, now, claim_key, done_key)
        except LeaseLost:
            return "lease-lost"
        entry = json.dumps({"meeting": meeting_id, "occurrence": occ, "phase": phase.value, "fence": fence, "at": format_utc(now)})
        await self.redis.eval(_DONE, 3, done_key, claim_key, keys.LIFECYCLE_LOG, fence, entry, MARKER_TTL)
        return "done"

    async def _effects(
        self, meeting: Meeting, occurrence: datetime, phase: Phase, status: OccurrenceStatus,
        lease_value: str, fence: int, now: datetime, claim_key: str, done_key: str,
    ) -> None:
        times = lifecycle_times(occurrence, meeting.duration)
        if phase in (Phase.WARMUP, Phase.ENDED) and not await self.redis.hexists(claim_key, "room"):
            room = await assign_room(self.redis, meeting.id, occurrence, times.end, self.public_url)
            record = {"meeting_id": meeting.id, "occurrence": format_utc(occurrence)} if meeting.record else None
            await self._steer_room(room, meeting.host_endpoint_id, opening=phase is Phase.WARMUP, record=record)
            await self.redis.hset(claim_key, "room", fence)  # a fact, recorded even by a leader that lost its lease
        if phase is Phase.ENDED and self.reports is not None and status is not OccurrenceStatus.CANCELLED:
            await self.reports.finalize(meeting, occurrence, now)  # kept once: a second run returns the kept one
        # resolved before the status write, which moves the meetings version (a status changes no participant)
        targets = sorted(await self.roster.participants(meeting.id) | {meeting.host_endpoint_id})
        if status is not OccurrenceStatus.CANCELLED:
            target = _STATUS[phase]

            def change(m: Meeting) -> Meeting:
                return m if m.status_of(occurrence) in (target, OccurrenceStatus.CANCELLED) else m.with_status(occurrence, target, now=now)

            try:
                await self.store.update(meeting.id, change, guard=(keys.SCHEDULER_LEASE, lease_value))
            except GuardFailed:
                raise LeaseLost from None
        occ = format_utc(occurrence)
        event = {"type": _EVENT[phase], "meeting_id": meeting.id, "occurrence": occ, "start": occ, "end": format_utc(times.end)}
        message = json.dumps({"endpoints": targets, "event": event})
        sent = await self.redis.eval(_NOTIFY_ONCE, 3, keys.SCHEDULER_LEASE, done_key, claim_key, lease_value, keys.AGENT_NOTIFY, message, fence)
        if sent == -1:
            raise LeaseLost

    async def _steer_room(self, room, host: str, *, opening: bool, record: dict | None = None) -> None:
        """Open the room for its host at warm-up, end it at the end; agents' own joins still work without it."""
        if self.sfu is None:
            return
        try:
            if opening:
                await self.sfu.open_room(room, host, record)
            else:
                await self.sfu.end_room(room)
        except SfuUnavailable as exc:
            log.warning("room %s: %s", room.room, exc)


async def undone(redis: aioredis.Redis, steps: list[tuple[str, datetime, Phase]]) -> list[bool]:
    """For each (meeting id, occurrence, phase): True when its done marker is missing (one round trip)."""
    if not steps:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for meeting_id, occurrence, phase in steps:
            pipe.exists(keys.phase_done(meeting_id, format_utc(occurrence), phase.value))
        found = await pipe.execute()
    return [not exists for exists in found]


def utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)
