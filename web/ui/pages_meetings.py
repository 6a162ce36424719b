"""Meetings: the week calendar and the list, one meeting, its calendar file, cancelling.

| path                              | roles             | what                                         |
|-----------------------------------|-------------------|----------------------------------------------|
| GET /meetings[?view=week&week=]   | every role        | Monday-Sunday week (Vietnam time), prev/next |
| GET /meetings?view=list[&from=]   | every role        | 30 days of occurrences from a date           |
| GET /meetings/{id}                | every role        | one meeting, its occurrences and its plan    |
| GET /meetings/{id}.ics            | every role        | iCalendar                                    |
| GET, POST /meetings/{id}/cancel   | admin, organizer  | confirm, then cancel the series or one       |

Booking and editing are in `pages_booking`; the live view in `pages_live`.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import partial

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from scheduler.ics import meeting_to_ics
from scheduler.meeting import Meeting, format_utc
from scheduler.recurrence import Frequency
from vcs import audit
from vcs.divisions import provinces
from vcs.errors import Forbidden, ValidationFailed
from vcs.local_time import LOCAL_TZ
from vcs.roles import Principal, Role
from web.services import services
from web.ui import pages_reports
from web.ui import i18n
from web.ui.access import SignedIn, page
from web.ui.booking_form import fits_the_form, parse_date
from web.ui.formats import format_date, format_datetime
from web.ui.i18n import N_
from web.ui.meeting_views import (
    can_manage,
    check_visible,
    display_status,
    local_day_start,
    monday_of,
    named_occurrence,
    now_utc,
    occurrence_rows,
    preview_view,
    visible_meetings,
)
from web.ui.nav import BOOKERS, EVERYONE
from web.ui.rendering import language, render
from web.ui.sessions import Sessions

__all__ = [
    "cancel_confirm",
    "cancel_submit",
    "managed_meeting",
    "meeting_detail",
    "meeting_ics",
    "meetings_page",
    "rule_summary",
    "selector_summary",
    "visible_meeting",
]

LIST_DAYS = 30
DETAIL_OCCURRENCES = 12
PAST_OCCURRENCES = 10  # started occurrences listed with their report and recording
WEEKDAY_NAMES = (N_("Monday"), N_("Tuesday"), N_("Wednesday"), N_("Thursday"), N_("Friday"), N_("Saturday"), N_("Sunday"))


def _today(request: Request) -> date:
    return now_utc(services(request)).astimezone(LOCAL_TZ).date()


def _day_param(request: Request, name: str, default: date) -> date:
    """A date from the query string; anything unreadable or far off means the default (a view, not a form)."""
    found = parse_date(request.query_params.get(name, "")[:20])
    return found if found and abs(found.year - default.year) <= 50 else default


@page(*EVERYONE)
async def meetings_page(request: Request, me: SignedIn) -> Response:
    svc = services(request)
    now = now_utc(svc)
    today = _today(request)
    view = "list" if request.query_params.get("view") == "list" else "week"
    meetings = await visible_meetings(svc, me.principal)
    context: dict = {"view": view, "can_book": me.user.role in BOOKERS, "today": today}
    if view == "week":
        monday = monday_of(_day_param(request, "week", today))
        rows = await occurrence_rows(svc, meetings, local_day_start(monday), local_day_start(monday + timedelta(days=7)), now)
        days = [monday + timedelta(days=i) for i in range(7)]
        context.update(
            monday=monday,
            sunday=days[-1],
            days=[{"date": d, "name": WEEKDAY_NAMES[i], "rows": [r for r in rows if r.local_date == d]} for i, d in enumerate(days)],
            prev_url=f"/meetings?view=week&week={monday - timedelta(days=7)}",
            next_url=f"/meetings?view=week&week={monday + timedelta(days=7)}",
            this_week_url="/meetings?view=week",
            count=len(rows),
        )
    else:
        first = _day_param(request, "from", today)
        last = first + timedelta(days=LIST_DAYS)
        rows = await occurrence_rows(svc, meetings, local_day_start(first), local_day_start(last), now)
        context.update(
            rows=rows,
            first=first,
            last=last - timedelta(days=1),
            prev_url=f"/meetings?view=list&from={first - timedelta(days=LIST_DAYS)}",
            next_url=f"/meetings?view=list&from={last}",
        )
    return render(request, "meetings/index.html", context, section="meetings")


async def visible_meeting(request: Request, me: SignedIn) -> Meeting:
    """The meeting in the path: 404 page when unknown, 403 page when outside the user's province."""
    svc = services(request)
    meeting = await svc.meetings.get(request.path_params["meeting_id"])
    await check_visible(svc, me.principal, meeting)
    return meeting


async def managed_meeting(request: Request, me: SignedIn) -> Meeting:
    """The meeting in the path, which this user must be allowed to change (else the 403 page)."""
    meeting = await visible_meeting(request, me)
    if not await can_manage(services(request), me.principal, meeting):
        raise Forbidden("not in this user's scope")
    return meeting


def rule_summary(meeting: Meeting, lang: str) -> str:
    """The recurrence in words: "Every week on Monday, Wednesday; 10 times"."""
    rule = meeting.recurrence
    t = partial(i18n.gettext, lang)
    if rule is None:
        return t(N_("Once"))
    if not fits_the_form(rule):
        return t(N_("Custom rule: {rule}"), rule=rule.to_rrule())
    n = rule.interval
    local = meeting.start.astimezone(LOCAL_TZ)
    if rule.freq is Frequency.DAILY:
        text = t(N_("Every day")) if n == 1 else t(N_("Every {n} days"), n=n)
    elif rule.freq is Frequency.WEEKLY:
        weekdays = sorted(d.weekday for d in rule.by_day) or [local.weekday()]
        names = ", ".join(t(WEEKDAY_NAMES[d]) for d in weekdays)
        text = t(N_("Every week on {days}"), days=names) if n == 1 else t(N_("Every {n} weeks on {days}"), n=n, days=names)
    else:
        text = t(N_("Every month on day {day}"), day=local.day) if n == 1 else t(N_("Every {n} months on day {day}"), n=n, day=local.day)
    if rule.count:
        return text + "; " + t(N_("{count} times"), count=rule.count)
    if rule.until:
        return text + "; " + t(N_("until {date}"), date=format_date(rule.until.timestamp()))
    return text


async def selector_summary(request: Request, meeting: Meeting) -> dict:
    """Who takes part, for people: everyone, the provinces by name, or the first communes by name."""
    svc = services(request)
    selector = meeting.selector
    endpoints = await svc.registry.all()
    names: list[str] = []
    if selector.kind == "provinces":
        names = [svc.registry.province_name(f"{c:02d}") for c in selector.province_codes]
    elif selector.kind == "communes":
        names = [endpoints[c].name if c in endpoints else c for c in selector.commune_ids]
    return {"kind": selector.kind, "names": names, "group": selector.group, "count": len(await svc.roster.participants(meeting.id))}


@page(*EVERYONE)
async def meeting_detail(request: Request, me: SignedIn) -> Response:
    svc = services(request)
    meeting = await visible_meeting(request, me)
    now = now_utc(svc)
    rows = await occurrence_rows(svc, [meeting], now, now + timedelta(days=5 * 366), now)
    host = (await svc.registry.all()).get(meeting.host_endpoint_id)
    plan = None
    try:
        # the plan as it stands (an admin's view of conflicts: this page shows, it does not check scope)
        preview = await svc.booking.preview(Principal(me.username, Role.ADMIN), meeting, now, is_new=False)
        plan = preview_view(preview, await svc.registry.all())
    except ValidationFailed:
        pass  # nothing left to plan: every occurrence cancelled or over
    started = [s for s in meeting.occurrences(window_start=now - timedelta(days=366), window_end=now) if s <= now][-PAST_OCCURRENCES:]
    past = await pages_reports.recording_rows(svc, meeting, list(reversed(started)))
    return render(
        request,
        "meetings/detail.html",
        {
            "meeting": meeting,
            "host_name": host.name if host else meeting.host_endpoint_id,
            "rule": rule_summary(meeting, language(request)),
            "who": await selector_summary(request, meeting),
            "rows": rows[:DETAIL_OCCURRENCES],
            "more": max(0, len(rows) - DETAIL_OCCURRENCES),
            "can_manage": await can_manage(svc, me.principal, meeting),
            "is_cancelled": meeting.is_cancelled,
            "plan": plan,
            "province_names": {p.code: p.name for p in provinces()},
            "first_start": meeting.start.timestamp(),
            "past": past,
        },
        section="meetings",
    )


@page(*EVERYONE)
async def meeting_ics(request: Request, me: SignedIn) -> Response:
    svc = services(request)
    meeting = await visible_meeting(request, me)
    host = await svc.registry.get(meeting.host_endpoint_id)
    text = meeting_to_ics(meeting, host_name=host.name, url=f"{svc.settings.public_url}/meetings/{meeting.id}")
    return Response(text, media_type="text/calendar; charset=utf-8", headers={"Content-Disposition": f'attachment; filename="{meeting.id}.ics"'})


@page(*BOOKERS)
async def cancel_confirm(request: Request, me: SignedIn) -> Response:
    svc = services(request)
    meeting = await managed_meeting(request, me)
    occurrence = named_occurrence(request.query_params.get("occurrence"), meeting)
    now = now_utc(svc)
    remaining = meeting.occurrences(window_start=now - meeting.duration, limit=1001)
    return render(
        request,
        "meetings/cancel.html",
        {
            "meeting": meeting,
            "occurrence": occurrence,
            "occurrence_key": format_utc(occurrence) if occurrence else "",
            "occurrence_at": occurrence.timestamp() if occurrence else None,
            "occurrence_status": display_status(meeting, occurrence, now) if occurrence else "",
            "remaining": len(remaining),
            "recurring": meeting.recurrence is not None,
        },
        section="meetings",
    )


@page(*BOOKERS)
async def cancel_submit(request: Request, me: SignedIn) -> Response:
    svc = services(request)
    meeting = await managed_meeting(request, me)
    form = await request.form()
    occurrence = named_occurrence(form.get("occurrence"), meeting) if form.get("scope") == "occurrence" else None
    sessions = Sessions(svc.redis)
    try:
        await svc.booking.cancel(me.principal, meeting.id, occurrence, now_utc(svc))
    except ValidationFailed as exc:  # the occurrence has ended in the meantime
        await sessions.set_flash(me.session, N_("Nothing was cancelled: {reason}"), "error", reason=i18n.reason(language(request), exc.errors[0]) if exc.errors else "")
        return RedirectResponse(f"/meetings/{meeting.id}", status_code=303)
    details = {"via": "ui", "title": meeting.title, "scope": "occurrence" if occurrence else "series"}
    if occurrence:
        details["occurrence"] = format_utc(occurrence)
    await audit.record(svc.redis, me.username, audit.Action.MEETING_CANCEL, meeting.id, details, now=svc.clock())
    if occurrence:
        await sessions.set_flash(me.session, N_("The meeting of {time} is cancelled."), time=format_datetime(occurrence.timestamp()))
    else:
        await sessions.set_flash(me.session, N_("Meeting {title} is cancelled."), title=meeting.title)
    return RedirectResponse(f"/meetings/{meeting.id}", status_code=303)

