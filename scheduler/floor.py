"""Handing the floor of an occurrence: one operation for the API and the UI.

Giving the floor to a participant sends its audio and video to everyone; taking
it back (None) returns the program to the host. A participant served by a
relay has its camera brought to the origin first (``scheduler.uplinks``), and
released when the floor moves on; that relay is told the floor too, so it stops
sending the speaker its own voice. The SFU node of the occurrence's room is told
first: when it cannot be reached or the room is not open (SfuUnavailable),
nothing is recorded. Then the floor is stored with the
occurrence's room, the live views are told, the agents are notified, and the
audit log gets one `meeting.floor` entry.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Literal

import redis.asyncio as aioredis

from scheduler.actions import notify_agents
from scheduler.agent_schedule import ScheduleBuilder
from scheduler.booking import BookingService
from scheduler.meeting import Meeting, format_utc
from scheduler.rooms import RoomAssignment
from scheduler.roster import Roster
from scheduler.sfu_control import SfuControl
from scheduler.uplinks import Uplinks
from vcs import audit, keys
from vcs.errors import FieldError, SfuUnavailable, ValidationFailed
from vcs.roles import Principal

__all__ = ["Floor"]

log = logging.getLogger(__name__)


class Floor:
    def __init__(
        self,
        redis: aioredis.Redis,
        roster: Roster,
        booking: BookingService,
        schedules: ScheduleBuilder,
        sfu_control: SfuControl,
        uplinks: Uplinks | None = None,
    ) -> None:
        self.redis = redis
        self.roster = roster
        self.booking = booking
        self.schedules = schedules
        self.sfu_control = sfu_control
        self.uplinks = uplinks or Uplinks(sfu_control)

    async def hand(
        self,
        principal: Principal,
        meeting: Meeting,
        occurrence: datetime,
        endpoint_id: str | None,
        *,
        via: Literal["api", "ui"],
        now: float | None = None,
    ) -> str:
        """Give the floor to a participant (None: take it back); the occurrence key.

        Raises Forbidden (outside the caller's scope or role), ValidationFailed
        (not a participant) and SfuUnavailable (the node did not take it).
        """
        participants = await self.roster.participants(meeting.id)
        await self.booking.check_scope(principal, meeting, participants)
        if endpoint_id is not None and endpoint_id not in participants:
            raise ValidationFailed(FieldError("endpoint_id", "must be a participant of this meeting"))
        room = await self.schedules.room(meeting, occurrence)
        occ = format_utc(occurrence)
        previous = await self.redis.hget(keys.occurrence_room(meeting.id, occ), "floor")
        relay = None
        if endpoint_id is not None:
            relay = await self.uplinks.bring(room, meeting.id, occurrence, endpoint_id)
        await self.sfu_control.give_floor(room, endpoint_id)
        if relay is not None:
            await self._tell_relay(room, relay, endpoint_id)
        await self.redis.hset(keys.occurrence_room(meeting.id, occ), "floor", endpoint_id or "")
        if previous and previous != endpoint_id:
            await self._take_back_on_relay(room, meeting.id, occurrence, previous, keep=relay)
            await self.uplinks.release(room, meeting.id, occurrence, previous)
        await self.redis.publish(keys.LIVE_CHANGED, json.dumps({"meeting": meeting.id, "occurrence": occ}))
        targets = sorted(participants | {meeting.host_endpoint_id})
        await notify_agents(self.redis, targets, {"type": "floor", "meeting_id": meeting.id, "occurrence": occ, "endpoint_id": endpoint_id})
        details = {"via": via, "occurrence": occ, "endpoint_id": endpoint_id, "action": "give" if endpoint_id else "take"}
        await audit.record(self.redis, principal.name, audit.Action.MEETING_FLOOR, meeting.id, details, now=now)
        return occ

    async def _take_back_on_relay(
        self, room: RoomAssignment, meeting_id: str, occurrence: datetime, previous: str, keep: str | None
    ) -> None:
        """The previous speaker's relay forgets the floor (unless it now serves the new speaker)."""
        relay = await self.uplinks.relay_of(meeting_id, occurrence, previous)
        if relay is not None and relay != keep and relay.rstrip("/") != room.node_url:
            await self._tell_relay(room, relay, None)

    async def _tell_relay(self, room: RoomAssignment, relay: str, endpoint_id: str | None) -> None:
        """Best effort: the floor is the origin's; a relay that misses it only sends its speaker its own voice back."""
        try:
            await self.sfu_control.give_floor(RoomAssignment(room.room, relay.rstrip("/")), endpoint_id)
        except SfuUnavailable as exc:
            log.warning("relay %s not told of the floor (%s): %s", relay, endpoint_id, exc)
