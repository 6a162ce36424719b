"""The home page after sign-in: who is online in each province, and the day's meetings."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from vcs.endpoints import CENTRAL_ID
from web.api.provinces import province_summaries
from web.services import services
from web.ui.access import SignedIn, page
from web.ui.meeting_views import today_items
from web.ui.rendering import render

__all__ = ["today"]


@page()
async def today(request: Request, me: SignedIn) -> Response:
    svc = services(request)
    now = svc.clock()
    rows = await province_summaries(request)
    if me.principal.scoped:
        rows = [r for r in rows if r["code"] == me.principal.province_code]
    for row in rows:
        row["share"] = row["online"] / row["communes"] if row["communes"] else 0.0
    communes = sum(r["communes"] for r in rows)
    online = sum(r["online"] for r in rows)
    central_online = svc.presence.is_online(await svc.presence.last_seen_of(CENTRAL_ID), now)
    return render(
        request,
        "today.html",
        {
            "now": now,
            "rows": rows,
            "communes": communes,
            "online": online,
            "share": online / communes if communes else 0.0,
            "halls_online": sum(1 for r in rows if r["hall_online"]),
            "central_online": central_online,
            "meetings": await today_items(svc, me.principal),
        },
        section="today",
    )
