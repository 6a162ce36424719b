"""/api/v1/meetings: book, preview, change, cancel, list and export meetings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from scheduler.ics import calendar_feed, meeting_to_ics
from scheduler.meeting import Meeting, format_utc, parse_utc
from scheduler.visibility import check_visible, touches_province
from vcs.audit import Action
from vcs.audit import record as audit
from vcs.divisions import province_code as canonical_province
from vcs.errors import FieldError, Forbidden, ValidationFailed
from vcs.local_time import LOCAL_TZ, LOCAL_TZ_NAME
from vcs.roles import Role
from web.auth import api_principal
from web.requests import json_body
from web.services import services

__all__ = ["meeting_view", "parse_occurrence", "routes", "visible_meeting"]

MAX_RANGE = timedelta(days=366)


def _local(moment: datetime) -> str:
    return moment.astimezone(LOCAL_TZ).isoformat()


def occurrence_view(meeting: Meeting, start: datetime) -> dict:
    return {
        "meeting_id": meeting.id,
        "title": meeting.title,
        "start": format_utc(start),
        "end": format_utc(start + meeting.duration),
        "start_local": _local(start),
        "status": meeting.status_of(start).value,
    }


def meeting_view(meeting: Meeting, now: datetime, upcoming: int = 10) -> dict:
    window = now - meeting.duration
    next_ones = meeting.occurrences(window_start=window, limit=upcoming)
    return {
        **meeting.to_json(),
        "start_local": _local(meeting.start),
        "timezone": LOCAL_TZ_NAME,
        "next_occurrences": [occurrence_view(meeting, s) for s in next_ones],
    }


def _now(request: Request) -> datetime:
    return datetime.fromtimestamp(services(request).clock(), UTC)


async def create_meeting(request: Request) -> Response:
    principal = await api_principal(request)
    principal.require(Role.ADMIN, Role.ORGANIZER)
    svc = services(request)
    now = _now(request)
    preview = await svc.booking.create(principal, await json_body(request), now)
    meeting = preview.meeting
    await audit(svc.redis, principal.name, Action.MEETING_BOOK, meeting.id, {"via": "api", "title": meeting.title, "participants": len(preview.participants)})
    return JSONResponse(
        {"meeting": meeting_view(meeting, now), **preview.to_dict()},
        status_code=201,
        headers={"Location": f"/api/v1/meetings/{meeting.id}"},
    )


async def preview_meeting(request: Request) -> Response:
    principal = await api_principal(request)
    principal.require(Role.ADMIN, Role.ORGANIZER)
    svc = services(request)
    now = _now(request)
    meeting = svc.booking.meeting_from_body(principal, await json_body(request), now)
    preview = await svc.booking.preview(principal, meeting, now)
    return JSONResponse(preview.to_dict())


async def list_meetings(request: Request) -> Response:
    """Occurrences between `from` and `to` (default: yesterday to 30 days ahead), by start."""
    principal = await api_principal(request)
    svc = services(request)
    now = _now(request)
    params = request.query_params
    errors = []
    try:
        start = parse_utc(params["from"]) if "from" in params else now - timedelta(days=1)
    except ValueError:
        errors.append(FieldError("from", "an ISO 8601 time with offset, e.g. 2025-09-02T08:00:00+07:00"))
        start = now
    try:
        end = parse_utc(params["to"]) if "to" in params else now + timedelta(days=30)
    except ValueError:
        errors.append(FieldError("to", "an ISO 8601 time with offset"))
        end = now
    if not errors and not timedelta(0) < end - start <= MAX_RANGE:
        errors.append(FieldError("to", "must be after from, within a year"))
    province = params.get("province")
    wanted = principal.province_code
    if province is not None:
        wanted = canonical_province(province)
        if wanted is None:
            errors.append(FieldError("province", "unknown province code"))
        elif principal.scoped and wanted != principal.province_code:
            raise Forbidden(f"scoped to province {principal.province_code}")
    if errors:
        raise ValidationFailed(errors)
    endpoints = await svc.registry.all()
    items = []
    for meeting in (await svc.meetings.all()).values():
        # most stored meetings (cancelled, long past) have nothing in the window: their selector is not looked at
        occurrences = meeting.occurrences(window_start=start - meeting.duration, window_end=end)
        if not occurrences:
            continue
        # a province's meetings are the ones its organizers see (scheduler.visibility)
        if wanted is not None and not touches_province(meeting, await svc.roster.participants(meeting.id), endpoints, wanted):
            continue
        items.extend(occurrence_view(meeting, occurrence) for occurrence in occurrences)
    items.sort(key=lambda item: (item["start"], item["meeting_id"]))
    return JSONResponse({"items": items, "total": len(items), "from": format_utc(start), "to": format_utc(end)})


async def visible_meeting(request: Request) -> Meeting:
    """The meeting the path names, if the caller may see it (404 unknown, 403 outside its province)."""
    principal = await api_principal(request)
    svc = services(request)
    meeting = await svc.meetings.get(request.path_params["meeting_id"])
    if principal.scoped:
        await check_visible(principal, meeting, svc.roster, await svc.registry.all())
    return meeting


async def get_meeting(request: Request) -> Response:
    meeting = await visible_meeting(request)
    return JSONResponse(meeting_view(meeting, _now(request)))


async def meeting_plan(request: Request) -> Response:
    principal = await api_principal(request)
    svc = services(request)
    meeting = await visible_meeting(request)
    now = _now(request)
    preview = await svc.booking.preview(principal.__class__(principal.name, Role.ADMIN), meeting, now, is_new=False)
    return JSONResponse(preview.to_dict())


async def update_meeting(request: Request) -> Response:
    principal = await api_principal(request)
    svc = services(request)
    now = _now(request)
    preview = await svc.booking.update(principal, request.path_params["meeting_id"], await json_body(request), now)
    await audit(svc.redis, principal.name, Action.MEETING_CHANGE, preview.meeting.id, {"via": "api", "title": preview.meeting.title})
    return JSONResponse({"meeting": meeting_view(preview.meeting, now), **preview.to_dict()})


async def cancel_meeting(request: Request) -> Response:
    principal = await api_principal(request)
    svc = services(request)
    meeting = await svc.booking.cancel(principal, request.path_params["meeting_id"], None, _now(request))
    await audit(svc.redis, principal.name, Action.MEETING_CANCEL, meeting.id, {"via": "api", "title": meeting.title, "scope": "series"})
    return JSONResponse(meeting_view(meeting, _now(request)))


async def cancel_occurrence(request: Request) -> Response:
    principal = await api_principal(request)
    svc = services(request)
    occurrence = parse_occurrence(request.path_params["occurrence"])
    meeting = await svc.booking.cancel(principal, request.path_params["meeting_id"], occurrence, _now(request))
    details = {"via": "api", "title": meeting.title, "scope": "occurrence", "occurrence": format_utc(occurrence)}
    await audit(svc.redis, principal.name, Action.MEETING_CANCEL, meeting.id, details)
    return JSONResponse(meeting_view(meeting, _now(request)))


def parse_occurrence(text: str) -> datetime:
    try:
        return parse_utc(text)
    except ValueError:
        raise ValidationFailed(FieldError("occurrence", "the occurrence's UTC start, e.g. 2025-09-02T01:00:00Z")) from None


async def meeting_ics(request: Request) -> Response:
    svc = services(request)
    meeting = await visible_meeting(request)
    host = await svc.registry.get(meeting.host_endpoint_id)
    text = meeting_to_ics(meeting, host_name=host.name, url=f"{svc.settings.public_url}/meetings/{meeting.id}")
    return Response(text, media_type="text/calendar; charset=utf-8", headers={"Content-Disposition": f'attachment; filename="{meeting.id}.ics"'})


async def endpoint_feed(request: Request) -> Response:
    """An endpoint's calendar: every meeting it takes part in or hosts that the caller may see."""
    principal = await api_principal(request)
    svc = services(request)
    endpoint = await svc.registry.get(request.path_params["endpoint_id"])
    if endpoint.province_code:
        principal.require_province(endpoint.province_code)
    endpoints = await svc.registry.all()
    mine = []
    for meeting in (await svc.meetings.all()).values():
        participants = await svc.roster.participants(meeting.id)
        if meeting.host_endpoint_id != endpoint.id and endpoint.id not in participants:
            continue
        if principal.scoped and not touches_province(meeting, participants, endpoints, principal.province_code or ""):
            continue  # the central studio's feed, for a province organizer: only its province's meetings
        mine.append(meeting)
    hosts = {m.host_endpoint_id: endpoints[m.host_endpoint_id].name for m in mine if m.host_endpoint_id in endpoints}
    text = calendar_feed(mine, calendar_name=endpoint.name, host_names=hosts)
    return Response(text, media_type="text/calendar; charset=utf-8")


routes = [
    Route("/meetings", list_meetings, methods=["GET"]),
    Route("/meetings", create_meeting, methods=["POST"]),
    Route("/meetings/preview", preview_meeting, methods=["POST"]),
    Route("/meetings/{meeting_id}.ics", meeting_ics, methods=["GET"]),
    Route("/meetings/{meeting_id}", get_meeting, methods=["GET"]),
    Route("/meetings/{meeting_id}", update_meeting, methods=["PATCH"]),
    Route("/meetings/{meeting_id}", cancel_meeting, methods=["DELETE"]),
    Route("/meetings/{meeting_id}/plan", meeting_plan, methods=["GET"]),
    Route("/meetings/{meeting_id}/occurrences/{occurrence}", cancel_occurrence, methods=["DELETE"]),
    Route("/endpoints/{endpoint_id}/calendar.ics", endpoint_feed, methods=["GET"]),
]
