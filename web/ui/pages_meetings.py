"""Meetings: a placeholder until the meetings pages (phase 2) replace it.

The route, the nav entry ("meetings") and the layout are in place; the phase 2
handlers keep the path /meetings and render with section="meetings".
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from web.ui.access import SignedIn, page
from web.ui.rendering import render

__all__ = ["meetings_placeholder"]


@page()
async def meetings_placeholder(request: Request, me: SignedIn) -> Response:
    return render(request, "meetings.html", section="meetings")
