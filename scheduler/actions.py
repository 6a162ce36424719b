"""What each lifecycle step of an occurrence does, run at most once across all schedulers.

A step first claims its marker key in Redis, atomically with a check that the
caller still holds the leader lease; a second leader, a retry or a catch-up
finds the marker taken and does nothing. The step then updates the meeting's
status and tells the agents through the notification channel.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis

from scheduler.lifecycle import Phase, lifecycle_times
from scheduler.meeting import OccurrenceStatus, format_utc
from scheduler.rooms import assign_room
from scheduler.sfu_control import SfuControl, SfuUnavailable
from scheduler.roster import Roster
from scheduler.store import MeetingStore
from vcs import keys
from vcs.errors import NotFound

__all__ = ["LifecycleActions", "notify_agents"]

log = logging.getLogger(__name__)

LOG_LENGTH = 1000
MARKER_TTL = 8 * 24 * 3600

# KEYS: lease, marker, log. ARGV: lease value, fence, log entry, marker ttl.
# 1 = claimed, 0 = already done, -1 = lease lost.
_CLAIM = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'EX', ARGV[4]) then
  redis.call('LPUSH', KEYS[3], ARGV[3])
  redis.call('LTRIM', KEYS[3], 0, %d)
  return 1
end
return 0
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


class LifecycleActions:
    def __init__(self, store: MeetingStore, roster: Roster, *, public_url: str, sfu: SfuControl | None = None) -> None:
        self.store = store
        self.roster = roster
        self.redis = store.redis
        self.public_url = public_url
        self.sfu = sfu

    async def run(self, meeting_id: str, occurrence: datetime, phase: Phase, lease_value: str, fence: int, now: datetime) -> str:
        """Run one step; returns "done", "skipped" (already run or cancelled) or "lease-lost"."""
        try:
            meeting = await self.store.get(meeting_id)
        except NotFound:
            return "skipped"
        status = meeting.status_of(occurrence)
        if status is OccurrenceStatus.CANCELLED and phase is not Phase.ENDED:
            return "skipped"
        occ = format_utc(occurrence)
        entry = json.dumps({"meeting": meeting_id, "occurrence": occ, "phase": phase.value, "fence": fence, "at": format_utc(now)})
        claimed = await self.redis.eval(
            _CLAIM, 3, keys.SCHEDULER_LEASE, keys.phase_done(meeting_id, occ, phase.value), keys.LIFECYCLE_LOG,
            lease_value, fence, entry, MARKER_TTL,
        )
        if claimed == -1:
            return "lease-lost"
        if claimed == 0:
            return "skipped"
        log.info("occurrence %s %s: %s (fence %d)", meeting_id, occ, phase.value, fence)
        times = lifecycle_times(occurrence, meeting.duration)
        if phase in (Phase.WARMUP, Phase.ENDED):
            room = await assign_room(self.redis, meeting_id, occurrence, times.end, self.public_url)
            await self._steer_room(room, meeting.host_endpoint_id, opening=phase is Phase.WARMUP)
        # resolved before the status write, which moves the meetings version (a status changes no participant)
        targets = sorted(await self.roster.participants(meeting_id) | {meeting.host_endpoint_id})
        if status is not OccurrenceStatus.CANCELLED:
            await self.store.update(meeting_id, lambda m: m.with_status(occurrence, _STATUS[phase], now=now))
        event = {"type": _EVENT[phase], "meeting_id": meeting_id, "occurrence": occ, "start": occ, "end": format_utc(times.end)}
        await notify_agents(self.redis, targets, event)
        return "done"


    async def _steer_room(self, room, host: str, *, opening: bool) -> None:
        """Open the room for its host at warm-up, end it at the end; agents' own joins still work without it."""
        if self.sfu is None:
            return
        try:
            if opening:
                await self.sfu.open_room(room, host)
            else:
                await self.sfu.end_room(room)
        except SfuUnavailable as exc:
            log.warning("room %s: %s", room.room, exc)


def phases_due(start: datetime, duration: timedelta, now: datetime) -> list[tuple[Phase, datetime]]:
    """The steps whose time has come, in order (a late leader runs them at once)."""
    return [(phase, at) for phase, at in lifecycle_times(start, duration).events() if at <= now]


def utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)
