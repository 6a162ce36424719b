"""The host console: a presenter without studio hardware publishes from the browser.

| path                                | roles                     | what                                  |
|-------------------------------------|---------------------------|---------------------------------------|
| GET /meetings/{id}/host             | admin, organizer in scope | camera and microphone, start and stop |
| POST /meetings/{id}/host/session    | admin, organizer in scope | media tokens for the host, as JSON    |
| POST /meetings/{id}/host/watch      | admin, organizer in scope | one commune's camera for a tile, JSON |

static/host.js opens the camera when the page loads, and on "start" posts
the form's CSRF token to /host/session. The answer names the occurrence's
room on its SFU node (`assign_room`, the same choice agents get) with a
publish token and a subscribe token for the meeting's host endpoint, minted
here for the signed-in user, valid until the occurrence ends. The browser
publishes over WHIP (POST application/sdp to `whip_url`) and previews the
program the communes receive over WHEP. The page's CSP allows connections
to the SFU node's origin as well as its own (the same origin under `vcs serve`).

Below, the communes of the occurrence, 9 or 16 at a time (static/host_grid.js
pages and filters by province in the browser): each tile on the page posts
the form's CSRF token and the commune's id to /host/watch, which brings the
commune's own camera to the origin as the watch API does
(`web.api.live.watch_view`), and plays it over WHEP. Changing the page or
leaving it deletes the tiles' WHEP resources; the origin then closes the
uplinks nobody watches.
"""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from scheduler.lifecycle import current_or_next_occurrence
from scheduler.meeting import format_utc
from vcs import audit
from vcs.divisions import provinces
from vcs.errors import SfuUnavailable
from vcs.media_tokens import MAX_TTL, mint_media_token
from web.api.live import watch_view
from web.security_headers import CONTENT_SECURITY_POLICY
from web.services import services
from web.ui.access import SignedIn, page
from web.ui.i18n import N_, gettext
from web.ui.meeting_views import now_utc
from web.ui.nav import BOOKERS
from web.ui.pages_meetings import managed_meeting
from web.ui.rendering import language, render

__all__ = ["HOST_LEAD", "host_console", "host_session", "host_watch"]

HOST_LEAD = timedelta(minutes=30)  # the host may go on air this long before the start
TOKEN_MARGIN = timedelta(minutes=5)
_HOST = re.compile(r"[a-z0-9.-]+|[0-9a-f:.]+")  # urlsplit lowercases and unbrackets it


def origin_of(url: str) -> str | None:
    """scheme://host[:port] of an http(s) URL, or None for anything that could bend the CSP."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not _HOST.fullmatch(host):
        return None
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def csp_with(origin: str | None) -> str:
    if not origin:
        return CONTENT_SECURITY_POLICY
    return CONTENT_SECURITY_POLICY.replace("connect-src 'self'", f"connect-src 'self' {origin}")


@page(*BOOKERS)
async def host_console(request: Request, me: SignedIn) -> Response:
    svc = services(request)
    meeting = await managed_meeting(request, me)
    now = now_utc(svc)
    occurrence = current_or_next_occurrence(meeting, now)
    host = (await svc.registry.all()).get(meeting.host_endpoint_id)
    context = {
        "meeting": meeting,
        "occurrence": occurrence,
        "host_name": host.name if host else meeting.host_endpoint_id,
        "lead_minutes": int(HOST_LEAD.total_seconds() // 60),
    }
    origin = None
    if occurrence is not None:
        room = await svc.schedules.room(meeting, occurrence)
        origin = origin_of(room.node_url)
        context.update(await _communes(svc, meeting))
        context.update(
            starts_at=occurrence.timestamp(),
            ends_at=(occurrence + meeting.duration).timestamp(),
            opens_at=(occurrence - HOST_LEAD).timestamp(),
            room=room.room,
        )
    return render(request, "meetings/host.html", context, section="meetings", headers={"Content-Security-Policy": csp_with(origin)})


@page(*BOOKERS)
async def host_session(request: Request, me: SignedIn) -> Response:
    svc = services(request)
    meeting = await managed_meeting(request, me)
    now = now_utc(svc)
    occurrence = current_or_next_occurrence(meeting, now)
    lang = language(request)
    if occurrence is None:
        return JSONResponse({"error": gettext(lang, N_("This meeting has no current or upcoming occurrence."))}, status_code=409)
    if now < occurrence - HOST_LEAD:
        message = gettext(lang, N_("Broadcasting opens {minutes} minutes before the start."), minutes=int(HOST_LEAD.total_seconds() // 60))
        return JSONResponse({"error": message}, status_code=409)
    room = await svc.schedules.room(meeting, occurrence)
    end = occurrence + meeting.duration + TOKEN_MARGIN
    ttl = max(60, min(MAX_TTL, int((end - now).total_seconds())))

    def token(role: str) -> str:
        return mint_media_token(
            svc.settings.secret_key, room=room.room, identity=meeting.host_endpoint_id, role=role, ttl=ttl, now=svc.clock(), host=role == "publish"
        )

    occ = format_utc(occurrence)
    details = {"via": "ui", "occurrence": occ, "room": room.room, "identity": meeting.host_endpoint_id}
    await audit.record(svc.redis, me.username, audit.Action.MEETING_HOST, meeting.id, details, now=svc.clock())
    return JSONResponse(
        {
            "meeting_id": meeting.id,
            "occurrence": occ,
            "room": room.room,
            "identity": meeting.host_endpoint_id,
            "whip_url": room.whip_url,
            "whep_url": room.whep_url,
            "publish_token": token("publish"),
            "subscribe_token": token("subscribe"),
            "expires_in": ttl,
        }
    )


async def _communes(svc, meeting) -> dict:
    """The occurrence's communes for the tiles, by province then name, and the provinces to filter by."""
    endpoints = await svc.registry.all()
    participants = await svc.roster.participants(meeting.id)
    people = sorted((endpoints[p] for p in participants if p in endpoints), key=lambda e: (e.province_code or "", e.name))
    names = {p.code: p.name for p in provinces()}
    codes = sorted({e.province_code for e in people if e.province_code})
    return {
        "communes": [{"id": e.id, "name": e.name, "province": e.province_code or "", "province_name": names.get(e.province_code or "", "")} for e in people],
        "commune_provinces": [(code, names.get(code, code)) for code in codes],
    }


@page(*BOOKERS)
async def host_watch(request: Request, me: SignedIn) -> Response:
    """One tile: the commune's own camera brought to the origin, and the host's WHEP URL and token for it."""
    svc = services(request)
    meeting = await managed_meeting(request, me)
    occurrence = current_or_next_occurrence(meeting, now_utc(svc))
    lang = language(request)
    if occurrence is None:
        return JSONResponse({"error": gettext(lang, N_("This meeting has no current or upcoming occurrence."))}, status_code=409)
    endpoint_id = (await request.form()).get("endpoint_id")
    if not isinstance(endpoint_id, str) or endpoint_id not in await svc.roster.participants(meeting.id):
        return JSONResponse({"error": gettext(lang, N_("This commune does not take part in the meeting."))}, status_code=422)
    try:
        return JSONResponse(await watch_view(svc, meeting, occurrence, endpoint_id))
    except SfuUnavailable:
        return JSONResponse({"error": gettext(lang, N_("The commune's camera cannot be reached now."))}, status_code=502)
