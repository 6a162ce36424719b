"""Booking and changing a meeting through a form that works without JavaScript.

| path                          | roles             | what                                          |
|-------------------------------|-------------------|-----------------------------------------------|
| GET /meetings/new[?q=...]     | admin, organizer  | the empty form (a query string pre-fills it)  |
| POST /meetings/new            | admin, organizer  | action=search, preview ("Xem trước") or save  |
| GET, POST /meetings/{id}/edit | admin, organizer  | the same for a booked meeting in scope        |

Every submit re-renders the form with what was typed: a commune search
shows its matches, a preview shows the conflicts and the bandwidth plan, an
error sits next to its field. Saving runs the same checks as the API
(`BookingService`); with conflicts only an admin may book anyway, by ticking
the override box the preview shows. A province organizer is offered only its
own province, its communes and its hall.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from scheduler.booking import Preview
from scheduler.meeting import MEDIA_TIERS, Meeting, format_utc
from scheduler.recurrence import WEEKDAYS
from vcs import audit
from vcs.divisions import provinces
from vcs.endpoints import CENTRAL_ID, EndpointKind, hall_id
from vcs.errors import Conflict, FieldError, ValidationFailed
from vcs.local_time import LOCAL_TZ
from vcs.registry import EndpointQuery
from vcs.roles import Role
from web.services import services
from web.ui.access import SignedIn, page
from web.ui.booking_form import BookingInputs, slot_errors
from web.ui.i18n import N_
from web.ui.meeting_views import now_utc, preview_view
from web.ui.nav import BOOKERS
from web.ui.pages_meetings import WEEKDAY_NAMES, managed_meeting
from web.ui.rendering import render
from web.ui.sessions import Sessions

__all__ = ["edit_form", "edit_submit", "new_form", "new_submit"]

MAX_RESULTS = 30  # commune search matches shown at once
ACTIONS = ("search", "preview", "save")


async def _form_page(
    request: Request,
    me: SignedIn,
    inputs: BookingInputs,
    *,
    meeting: Meeting | None = None,
    errors: dict[str, FieldError] | None = None,
    preview: Preview | None = None,
    notice: str = "",
    status: int = 200,
) -> Response:
    svc = services(request)
    endpoints = await svc.registry.all()
    scope = me.principal.province_code
    counts: dict[str, int] = {}
    for e in endpoints.values():
        if e.kind is EndpointKind.COMMUNE:
            counts[e.province_code or ""] = counts.get(e.province_code or "", 0) + 1
    shown_provinces = [p for p in provinces() if scope is None or p.code == scope]
    province_names = {p.code: p.name for p in provinces()}
    selected = [endpoints[c] for c in inputs.communes if c in endpoints and endpoints[c].kind is EndpointKind.COMMUNE]
    results, total = [], 0
    if inputs.q:
        found = await svc.registry.query(EndpointQuery(province_code=scope, kind=EndpointKind.COMMUNE, search=inputs.q))
        total = len(found)
        results = [e for e in found if e.id not in inputs.communes][:MAX_RESULTS]
    if scope is None:
        hosts = [CENTRAL_ID] + [hall_id(p.code) for p in provinces()]
    else:
        hosts = [hall_id(scope)]
    return render(
        request,
        "meetings/form.html",
        {
            "mode": "edit" if meeting else "new",
            "meeting": meeting,
            "action_url": f"/meetings/{meeting.id}/edit" if meeting else "/meetings/new",
            "values": inputs,
            "errors": errors or {},
            "provinces": [{"code": p.code, "name": p.name, "communes": counts.get(p.code, 0)} for p in shown_provinces],
            "all_communes": sum(counts.values()),
            "scoped": scope is not None,
            "selected": [{"id": e.id, "name": e.name, "province": province_names.get(e.province_code or "", "")} for e in selected],
            "results": [{"id": e.id, "name": e.name, "province": province_names.get(e.province_code or "", "")} for e in results],
            "result_total": total,
            "hosts": [(h, endpoints[h].name if h in endpoints else h) for h in hosts],
            "tiers": MEDIA_TIERS,
            "weekdays": list(zip(WEEKDAYS, WEEKDAY_NAMES, strict=True)),
            "preview": preview_view(preview, endpoints) if preview else None,
            "is_admin": me.user.role is Role.ADMIN,
            "notice": notice,
        },
        section="meetings",
        status=status,
    )


def _action(form) -> str:
    action = form.get("action")
    return action if action in ACTIONS else "preview"


async def _submit(request: Request, me: SignedIn, current: Meeting | None) -> Response:
    svc = services(request)
    form = await request.form()
    inputs = BookingInputs.read(form)
    action = _action(form)
    if action == "search":
        return await _form_page(request, me, inputs, meeting=current)
    body, errors = inputs.to_body()
    is_admin = me.user.role is Role.ADMIN
    body["override_conflicts"] = False
    now = now_utc(svc)
    if current is not None:
        body = inputs.changes_for(current, body)
    if errors:
        # check the rest too, so every error shows at once: stand-ins for what could not be read
        if "start" in errors:
            body["start"] = format_utc(current.start if current else now + timedelta(days=1))
        if "duration" in errors:
            body["duration_minutes"] = 60
        if "start" in errors or {"interval", "count", "until"} & errors.keys():
            body["recurrence"] = None
    try:
        meeting = svc.booking.meeting_from_body(me.principal, body, now, base=current)
        started = current is not None and current.start <= now
        preview = await svc.booking.preview(me.principal, meeting, now, is_new=not started)
    except ValidationFailed as exc:
        errors = {**slot_errors(exc), **errors}
    if errors:
        return await _form_page(request, me, inputs, meeting=current, errors=errors, status=422)
    clashes = bool(preview.conflicts or preview.capacity_short)
    if action == "preview":
        return await _form_page(request, me, replace(inputs, override=False), meeting=current, preview=preview)
    if clashes and not (is_admin and inputs.override):
        notice = N_("Not saved: the booking conflicts with other meetings or exceeds the SFU capacity. Change it, or ask an administrator.")
        if is_admin:
            notice = N_("Not saved: the booking conflicts with other meetings or exceeds the SFU capacity. Change it, or tick the box to book anyway.")
        return await _form_page(request, me, replace(inputs, override=False), meeting=current, preview=preview, notice=notice, status=409)
    body["override_conflicts"] = clashes
    try:
        if current is None:
            saved = await svc.booking.create(me.principal, body, now)
        else:
            saved = await svc.booking.update(me.principal, current.id, body, now)
    except Conflict:  # someone booked the same rooms in the meantime: show the new preview
        preview = await svc.booking.preview(me.principal, meeting, now, is_new=not started)
        notice = N_("Not saved: another booking took some of these rooms a moment ago. Check the conflicts below.")
        return await _form_page(request, me, replace(inputs, override=False), meeting=current, preview=preview, notice=notice, status=409)
    except ValidationFailed as exc:
        return await _form_page(request, me, inputs, meeting=current, errors=slot_errors(exc), status=422)
    meeting = saved.meeting
    sessions = Sessions(svc.redis)
    details = {"via": "ui", "title": meeting.title, "participants": len(saved.participants)}
    if clashes:
        details["override_conflicts"] = {"conflicts": len(saved.conflicts), "capacity_short": saved.capacity_short}
    if current is None:
        await audit.record(svc.redis, me.username, audit.Action.MEETING_BOOK, meeting.id, details, now=svc.clock())
        await sessions.set_flash(me.session, N_("Meeting {title} booked for {count} communes."), title=meeting.title, count=len(saved.participants))
    else:
        details["changes"] = _changes(current, meeting)
        await audit.record(svc.redis, me.username, audit.Action.MEETING_CHANGE, meeting.id, details, now=svc.clock())
        await sessions.set_flash(me.session, N_("Meeting {title} saved."), title=meeting.title)
    return RedirectResponse(f"/meetings/{meeting.id}", status_code=303)


# form field => attribute: kept from the defaults when a pre-filling link does not name it
_PREFILLED = {"date": "date", "time": "time", "duration": "duration", "host": "host", "province": "provinces"}
_COMPARED = ("title", "start", "duration_minutes", "recurrence", "selector", "host_endpoint_id", "media", "override_conflicts")


def _changes(before: Meeting, after: Meeting) -> dict[str, list]:
    old, new = before.to_json(), after.to_json()
    return {name: [old[name], new[name]] for name in _COMPARED if old[name] != new[name]}


@page(*BOOKERS)
async def new_form(request: Request, me: SignedIn) -> Response:
    svc = services(request)
    today = datetime.fromtimestamp(svc.clock(), LOCAL_TZ).date()
    scope = me.principal.province_code
    inputs = BookingInputs.defaults(today=today, host=hall_id(scope) if scope else CENTRAL_ID, province=scope)
    params = request.query_params
    if params:  # a link that pre-fills the form (a commune search, say): what it names, the defaults for the rest
        defaults = {attr: getattr(inputs, attr) for name, attr in _PREFILLED.items() if name not in params}
        inputs = replace(BookingInputs.read(params), **defaults)
    return await _form_page(request, me, inputs)


@page(*BOOKERS)
async def new_submit(request: Request, me: SignedIn) -> Response:
    return await _submit(request, me, None)


@page(*BOOKERS)
async def edit_form(request: Request, me: SignedIn) -> Response:
    meeting = await managed_meeting(request, me)
    return await _form_page(request, me, BookingInputs.of_meeting(meeting), meeting=meeting)


@page(*BOOKERS)
async def edit_submit(request: Request, me: SignedIn) -> Response:
    return await _submit(request, me, await managed_meeting(request, me))
