"""The audit log page (admin, ops): newest first, filtered by actor and action."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from vcs import audit
from web.services import services
from web.ui.access import SignedIn, page
from web.ui.i18n import ACTION_LABELS
from web.ui.nav import AUDITORS
from web.ui.rendering import render

__all__ = ["audit_page"]

LIMIT = 200


@page(*AUDITORS)
async def audit_page(request: Request, me: SignedIn) -> Response:
    actor = request.query_params.get("actor", "").strip()[:100]
    action = request.query_params.get("action", "").strip()[:100]
    entries = await audit.recent(services(request).redis, LIMIT, action=action or None, actor=actor or None)
    return render(
        request,
        "audit.html",
        {"entries": entries, "actor": actor, "action": action, "actions": sorted(ACTION_LABELS), "limit": LIMIT},
        section="audit",
    )
