"""The live view of an occurrence: the provinces as a tile map, the counters, the floor.

| path                                   | roles             | what                                     |
|----------------------------------------|-------------------|------------------------------------------|
| GET /meetings/{id}/live[?occurrence=]  | every role        | the current or next occurrence (or one)  |
| GET /meetings/{id}/live/events         | every role        | Server-Sent Events for live.js           |
| POST /meetings/{id}/floor              | admin, organizer  | give the floor to a participant          |
| POST /meetings/{id}/floor/take         | admin, organizer  | take it back                             |

The page shows the state when it loads and a refresh link; static/live.js
subscribes to the events (the session cookie authenticates them, as any
page) and updates the tiles and counters in place. The floor forms work
without JavaScript and call the SFU through the same code as the API
(`scheduler.floor.Floor`); when the node cannot be reached or the room is
not open yet, the page says so instead of failing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from scheduler.lifecycle import current_or_next_occurrence
from scheduler.meeting import MEDIA_TIERS, Meeting, format_utc
from vcs import keys
from vcs.errors import NotFound, SfuUnavailable, ValidationFailed
from vcs.names import fold
from web.api.live import live_events
from web.services import Services, services
from web.ui.access import SignedIn, page
from web.ui.i18n import N_
from web.ui.meeting_views import can_manage, display_status, named_occurrence, now_utc
from web.ui.nav import BOOKERS, EVERYONE
from web.ui.pages_meetings import managed_meeting, visible_meeting
from web.ui.rendering import render
from web.ui.sessions import Sessions
from web.ui.tilemap import share_class, tiles

__all__ = ["floor_give", "floor_take", "live_page", "live_stream"]

MAX_PICKER = 300  # participants listed in the floor picker; beyond that, search
MAX_MATCHES = 20
SESSION_CHECK = 30.0  # seconds between two checks that the stream's session is still alive


def _occurrence(meeting: Meeting, raw: object, now: datetime) -> datetime | None:
    """The occurrence named (its UTC start), else the current or next one; 404 for a start the series lacks."""
    return named_occurrence(raw, meeting) or current_or_next_occurrence(meeting, now)


def _live_url(meeting: Meeting, occurrence: datetime | None, **extra: str) -> str:
    params = {"occurrence": format_utc(occurrence)} if occurrence else {}
    params.update({k: v for k, v in extra.items() if v})
    return f"/meetings/{meeting.id}/live" + (f"?{urlencode(params)}" if params else "")


def tile_rows(summary: dict) -> list[dict]:
    provinces = summary.get("provinces", {})
    rows = []
    for tile in tiles():
        counts = provinces.get(tile.code, {})
        expected, joined = counts.get("expected", 0), counts.get("joined", 0)
        rows.append(
            {
                "tile": tile,
                "expected": expected,
                "joined": joined,
                "online": counts.get("online", 0),
                "failed": counts.get("failed", 0),
                "share": joined / expected if expected else 0.0,
                "css": share_class(joined, expected),
            }
        )
    return rows


@page(*EVERYONE)
async def live_page(request: Request, me: SignedIn) -> Response:
    svc = services(request)
    meeting = await visible_meeting(request, me)
    now = now_utc(svc)
    occurrence = _occurrence(meeting, request.query_params.get("occurrence"), now)
    manage = await can_manage(svc, me.principal, meeting)
    context: dict = {"meeting": meeting, "occurrence": occurrence, "can_manage": manage, "now": svc.clock()}
    if occurrence is None:
        return render(request, "meetings/live.html", context, section="meetings")
    summary = await svc.live.summary(meeting, occurrence, svc.clock())
    endpoints = await svc.registry.all()
    tiers = summary["tiers"]
    context.update(
        summary=summary,
        status=display_status(meeting, occurrence, now),
        occurrence_key=format_utc(occurrence),
        starts_at=occurrence.timestamp(),
        ends_at=(occurrence + meeting.duration).timestamp(),
        tiles=tile_rows(summary),
        tiers=[(t, tiers[t]) for t in [*MEDIA_TIERS, "none", "unknown"] if tiers.get(t)],
        floor_name=endpoints[summary["floor"]].name if summary["floor"] in endpoints else summary["floor"],
        events_url=f"/meetings/{meeting.id}/live/events?{urlencode({'occurrence': format_utc(occurrence)})}",
        refresh_url=_live_url(meeting, occurrence),
    )
    if manage:
        participants = await svc.roster.participants(meeting.id)
        q = " ".join(request.query_params.get("q", "")[:100].split())
        people = sorted((endpoints[p] for p in participants if p in endpoints), key=lambda e: (e.province_code or "", e.name))
        matches = []
        if q:
            words = fold(q).split()
            matches = [e for e in people if all(w in e.folded_name for w in words)][:MAX_MATCHES]
        province_names = {t.code: t.name for t in tiles()}
        context.update(
            q=q,
            picker=[(e.id, f"{e.name} · {province_names.get(e.province_code or '', '')}") for e in people] if len(people) <= MAX_PICKER else [],
            matches=[(e.id, e.name, province_names.get(e.province_code or "", "")) for e in matches],
            participant_count=len(people),
        )
    return render(request, "meetings/live.html", context, section="meetings")


async def _while_signed_in(svc: Services, session_key: str, events: AsyncIterator[str]) -> AsyncIterator[str]:
    """Pass the events on until the session ends (sign-out, disabled user, timeout)."""
    loop = asyncio.get_running_loop()
    checked = loop.time()
    try:
        async for chunk in events:
            if loop.time() - checked > SESSION_CHECK:
                if not await svc.redis.exists(keys.ui_session(session_key)):
                    return
                checked = loop.time()
            yield chunk
    finally:
        with contextlib.suppress(Exception):
            await events.aclose()  # type: ignore[attr-defined]


@page(*EVERYONE)
async def live_stream(request: Request, me: SignedIn) -> Response:
    svc = services(request)
    meeting = await visible_meeting(request, me)
    occurrence = _occurrence(meeting, request.query_params.get("occurrence"), now_utc(svc))
    if occurrence is None:
        raise NotFound("the meeting has no current or upcoming occurrence")
    return StreamingResponse(
        _while_signed_in(svc, me.session.key, live_events(svc, meeting.id, occurrence)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _hand(request: Request, me: SignedIn, take: bool) -> Response:
    svc = services(request)
    meeting = await managed_meeting(request, me)
    form = await request.form()
    occurrence = _occurrence(meeting, form.get("occurrence"), now_utc(svc))
    if occurrence is None:
        raise NotFound("the meeting has no current or upcoming occurrence")
    raw = form.get("endpoint_id")
    endpoint_id = None if take else (raw.strip()[:20] if isinstance(raw, str) else "")
    sessions = Sessions(svc.redis)
    back = RedirectResponse(_live_url(meeting, occurrence), status_code=303)
    try:
        await svc.floor.hand(me.principal, meeting, occurrence, endpoint_id, via="ui", now=svc.clock())
    except SfuUnavailable as exc:
        await sessions.set_flash(
            me.session,
            N_("The floor was not handed over: the meeting's media server (SFU) did not take it. The room may not be open yet, the commune may not be in it, or the server cannot be reached. ({detail})"),
            "error",
            detail=exc.message,
        )
        return back
    except ValidationFailed:
        await sessions.set_flash(me.session, N_("Choose a commune taking part in this meeting."), "error")
        return back
    name = (await svc.registry.get(endpoint_id)).name if endpoint_id else ""
    if take:
        await sessions.set_flash(me.session, N_("The floor is back with the host."))
    else:
        await sessions.set_flash(me.session, N_("{name} has the floor."), name=name)
    return back


@page(*BOOKERS)
async def floor_give(request: Request, me: SignedIn) -> Response:
    return await _hand(request, me, take=False)


@page(*BOOKERS)
async def floor_take(request: Request, me: SignedIn) -> Response:
    return await _hand(request, me, take=True)
