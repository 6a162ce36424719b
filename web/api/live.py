"""Live state of an occurrence: JSON, and a Server-Sent Events stream the live view listens to."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from scheduler.lifecycle import current_or_next_occurrence
from scheduler.meeting import Meeting, format_utc
from vcs import keys
from scheduler.actions import notify_agents
from vcs.audit import record as audit
from vcs.errors import FieldError, NotFound, ValidationFailed
from vcs.roles import Principal, Role
from web.requests import json_body
from web.api.meetings import _check_visible, parse_occurrence
from web.auth import api_principal
from web.services import Services, services

__all__ = ["hand_floor", "live_events", "routes"]

MIN_INTERVAL = 0.5  # seconds between two updates of one stream
REFRESH = 5.0  # seconds: media presence is read from the SFU nodes' heartbeats, not pushed


async def _occurrence(request: Request) -> tuple[Meeting, datetime]:
    svc = services(request)
    meeting = await svc.meetings.get(request.path_params["meeting_id"])
    await _check_visible(request, meeting)
    raw = request.path_params.get("occurrence", "current")
    if raw == "current":
        occurrence = current_or_next_occurrence(meeting, datetime.fromtimestamp(svc.clock(), UTC))
        if occurrence is None:
            raise NotFound("the meeting has no current or upcoming occurrence")
    else:
        occurrence = parse_occurrence(raw)
        if not meeting.is_occurrence(occurrence):
            raise NotFound("no such occurrence")
    return meeting, occurrence


async def live_summary(request: Request) -> Response:
    await api_principal(request)
    meeting, occurrence = await _occurrence(request)
    svc = services(request)
    return JSONResponse(await svc.live.summary(meeting, occurrence, svc.clock()))


async def live_events(svc: Services, meeting_id: str, occurrence: datetime) -> AsyncIterator[str]:
    """Summaries as SSE `data:` lines: one at once, then on every change (at most every half second)."""
    occ = format_utc(occurrence)
    pubsub = svc.redis.pubsub()
    await pubsub.subscribe(keys.LIVE_CHANGED, keys.MEETINGS_CHANGED)
    try:
        loop = asyncio.get_running_loop()
        last_sent = 0.0
        dirty = True
        while True:
            if dirty and loop.time() - last_sent >= MIN_INTERVAL:
                meeting = await svc.meetings.get(meeting_id)
                summary = await svc.live.summary(meeting, occurrence, svc.clock())
                yield f"event: live\ndata: {json.dumps(summary, ensure_ascii=False)}\n\n"
                last_sent, dirty = loop.time(), False
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=MIN_INTERVAL)
            if message is not None:
                data = json.loads(message["data"])
                if data.get("meeting") == meeting_id and data.get("occurrence", occ) == occ:
                    dirty = True
            elif loop.time() - last_sent > REFRESH:
                dirty = True  # a room whose media stopped shows as dropped without anyone reporting it
    finally:
        with contextlib.suppress(Exception):
            await pubsub.aclose()


async def live_stream(request: Request) -> Response:
    await api_principal(request)
    meeting, occurrence = await _occurrence(request)
    return StreamingResponse(
        live_events(services(request), meeting.id, occurrence),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


routes = [
    Route("/meetings/{meeting_id}/live", live_summary, methods=["GET"]),
    Route("/meetings/{meeting_id}/live/stream", live_stream, methods=["GET"]),
    Route("/meetings/{meeting_id}/occurrences/{occurrence}/live", live_summary, methods=["GET"]),
    Route("/meetings/{meeting_id}/occurrences/{occurrence}/live/stream", live_stream, methods=["GET"]),
]


async def hand_floor(svc: Services, principal: Principal, meeting: Meeting, occurrence: datetime, endpoint_id: str | None) -> str:
    """Give the floor to a participant (None: take it back) on the occurrence's SFU room; the occurrence key.

    Shared by the API and the UI. Raises Forbidden (outside the caller's scope),
    ValidationFailed (not a participant) and SfuUnavailable (the node cannot be
    reached or the room is not open): nothing is recorded then.
    """
    participants = await svc.roster.participants(meeting.id)
    await svc.booking.check_scope(principal, meeting, participants)
    if endpoint_id is not None and endpoint_id not in participants:
        raise ValidationFailed(FieldError("endpoint_id", "must be a participant of this meeting"))
    room = await svc.schedules.room(meeting, occurrence)
    await svc.sfu_control.give_floor(room, endpoint_id)
    occ = format_utc(occurrence)
    await svc.redis.hset(keys.occurrence_room(meeting.id, occ), "floor", endpoint_id or "")
    await svc.redis.publish(keys.LIVE_CHANGED, json.dumps({"meeting": meeting.id, "occurrence": occ}))
    targets = sorted(participants | {meeting.host_endpoint_id})
    await notify_agents(svc.redis, targets, {"type": "floor", "meeting_id": meeting.id, "occurrence": occ, "endpoint_id": endpoint_id})
    return occ


async def set_floor(request: Request) -> Response:
    """Give the floor to one participant (its audio and video go to everyone), or take it back."""
    principal = await api_principal(request)
    principal.require(Role.ADMIN, Role.ORGANIZER)
    meeting, occurrence = await _occurrence(request)
    svc = services(request)
    await svc.booking.check_scope(principal, meeting, await svc.roster.participants(meeting.id))
    if request.method == "DELETE":
        endpoint_id = None
    else:
        given = (await json_body(request)).get("endpoint_id")
        endpoint_id = given if isinstance(given, str) else ""  # "" is nobody's id: refused as not a participant
    occ = await hand_floor(svc, principal, meeting, occurrence, endpoint_id)
    await audit(svc.redis, principal.name, "floor.give" if endpoint_id else "floor.take", meeting.id, {"occurrence": occ, "endpoint_id": endpoint_id})
    return JSONResponse({"meeting_id": meeting.id, "occurrence": occ, "floor": endpoint_id})


routes += [
    Route("/meetings/{meeting_id}/floor", set_floor, methods=["POST", "DELETE"]),
    Route("/meetings/{meeting_id}/occurrences/{occurrence}/floor", set_floor, methods=["POST", "DELETE"]),
]
