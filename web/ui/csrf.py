"""CSRF protection for every UI form: a per-session token in a hidden field.

A signed-in browser's token lives in its server-side session; a visitor who
is not signed in yet (the sign-in and language forms) gets a random token in
an HttpOnly cookie and must send the same value in the form. Every unsafe
request without the right token is refused with 403 before its handler runs
(see `web.ui.access.page`). In a template: `{{ csrf_input }}` inside the form.
"""

from __future__ import annotations

import hmac
import secrets

from markupsafe import Markup
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from web.ui.cookies import CSRF_COOKIE, set_csrf_cookie

__all__ = ["FIELD", "attach_cookie", "hidden_input", "token_for", "valid"]

FIELD = "csrf"
_SESSION = "vcs.ui.me"  # where web.ui.access caches the signed-in user (or None) for this request
_NEW = "vcs.ui.csrf_new"


def token_for(request: Request) -> str:
    me = request.scope.get(_SESSION)
    if me is not None:
        return me.session.csrf
    token = request.cookies.get(CSRF_COOKIE) or request.scope.get(_NEW)
    if not token:
        token = secrets.token_urlsafe(32)
        request.scope[_NEW] = token  # attach_cookie() hands it to the browser with the response
    return token


def hidden_input(request: Request) -> Markup:
    return Markup('<input type="hidden" name="{}" value="{}">').format(FIELD, token_for(request))


def valid(request: Request, form: FormData) -> bool:
    me = request.scope.get(_SESSION)
    expected = me.session.csrf if me is not None else request.cookies.get(CSRF_COOKIE, "")
    given = form.get(FIELD)
    if not expected or not isinstance(given, str) or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def attach_cookie(request: Request, response: Response) -> None:
    token = request.scope.get(_NEW)
    if token:
        set_csrf_cookie(response, request, token)
