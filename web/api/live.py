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
from vcs.errors import NotFound
from vcs.roles import Role
from web.api.meetings import parse_occurrence, visible_meeting
from web.auth import api_principal
from web.requests import json_body
from web.services import Services, services

__all__ = ["live_events", "routes", "visible_occurrence"]

MIN_INTERVAL = 0.5  # seconds between two updates of one stream
REFRESH = 5.0  # seconds: media presence is read from the SFU nodes' heartbeats, not pushed


async def visible_occurrence(request: Request) -> tuple[Meeting, datetime]:
    svc = services(request)
    meeting = await visible_meeting(request)
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
    meeting, occurrence = await visible_occurrence(request)
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
            if svc.stopping.is_set():
                return  # the server is stopping: the browser reconnects to whichever server answers
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
    meeting, occurrence = await visible_occurrence(request)
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


async def set_floor(request: Request) -> Response:
    """Give the floor to one participant (its audio and video go to everyone), or take it back."""
    principal = await api_principal(request)
    principal.require(Role.ADMIN, Role.ORGANIZER)
    meeting, occurrence = await visible_occurrence(request)
    svc = services(request)
    await svc.booking.check_scope(principal, meeting, await svc.roster.participants(meeting.id))  # before reading the body
    if request.method == "DELETE":
        endpoint_id = None
    else:
        given = (await json_body(request)).get("endpoint_id")
        endpoint_id = given if isinstance(given, str) else ""  # "" is nobody's id: refused as not a participant
    occ = await svc.floor.hand(principal, meeting, occurrence, endpoint_id, via="api", now=svc.clock())
    return JSONResponse({"meeting_id": meeting.id, "occurrence": occ, "floor": endpoint_id})


routes += [
    Route("/meetings/{meeting_id}/floor", set_floor, methods=["POST", "DELETE"]),
    Route("/meetings/{meeting_id}/occurrences/{occurrence}/floor", set_floor, methods=["POST", "DELETE"]),
]
