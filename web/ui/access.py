"""Who is signed in, and the guard every UI page goes through.

    @page(*LINK_EDITORS)
    async def edit_link(request: Request, me: SignedIn) -> Response: ...

`page(*roles)` wraps a handler so that, before it runs:
  - a visitor without a live session is sent to the sign-in page (303),
  - a signed-in user whose role is not listed gets the 403 page (no roles: everyone),
  - an unsafe method (POST...) has its form read (within `max_body` bytes, else 413)
    and must carry the session's CSRF token, else 403 (code "csrf").
Pages are never cached. Errors, the guard's and the handler's, become HTML
pages in the UI app's exception handlers (`web.ui.error_pages`).
`public_page()` is the same for pages open to visitors (me may be None).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from vcs.errors import Forbidden, NotFound
from vcs.roles import Principal, Role
from vcs.users import User
from web.requests import bounded
from web.services import services
from web.ui import csrf
from web.ui.sessions import COOKIE, Session, Sessions

__all__ = ["MAX_FORM_BYTES", "SignedIn", "page", "public_page", "signed_in"]

MAX_FORM_BYTES = 64 * 1024
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_ME = "vcs.ui.me"


@dataclass(frozen=True)
class SignedIn:
    user: User
    session: Session

    @property
    def principal(self) -> Principal:
        return self.user.principal()

    @property
    def username(self) -> str:
        return self.user.username


async def signed_in(request: Request) -> SignedIn | None:
    """The user behind this request's session cookie, once per request; None when there is none."""
    if _ME in request.scope:
        return request.scope[_ME]
    me = None
    token = request.cookies.get(COOKIE)
    if token:
        svc = services(request)
        sessions = Sessions(svc.redis)
        session = await sessions.get(token, svc.clock())
        if session is not None:
            try:
                user = await svc.users.get(session.username)
            except NotFound:
                user = None
            if user is None or user.disabled:
                # disabling revokes at once; this catches a session created in the same instant
                await sessions.revoke_user(session.username)
            else:
                me = SignedIn(user, session)
    request.scope[_ME] = me
    return me


Handler = Callable[[Request, SignedIn], Awaitable[Response]]
PublicHandler = Callable[[Request, SignedIn | None], Awaitable[Response]]


def _guard(handler: Callable, roles: tuple[Role, ...], public: bool, max_body: int) -> Callable[[Request], Awaitable[Response]]:
    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        me = await signed_in(request)
        if me is None and not public:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            where = "/login" if request.method not in SAFE_METHODS or target == "/" else f"/login?next={quote(target, safe='')}"
            return RedirectResponse(where, status_code=303)
        if roles and (me is None or me.user.role not in roles):
            raise Forbidden("this role may not open this page")
        form = None
        try:
            if request.method not in SAFE_METHODS:
                request = bounded(request, max_body)
                form = await request.form()
                if not csrf.valid(request, form):
                    raise Forbidden("the form's CSRF token is missing or wrong", code="csrf")
            response = await handler(request, me)
        finally:
            if form is not None:
                await form.close()
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    return endpoint


def page(*roles: Role, max_body: int = MAX_FORM_BYTES) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Guard a page for signed-in users of these roles (none named: every role)."""
    return lambda handler: _guard(handler, roles, False, max_body)


def public_page(max_body: int = MAX_FORM_BYTES) -> Callable[[PublicHandler], Callable[[Request], Awaitable[Response]]]:
    """Guard a page visitors may open too (sign-in, language): CSRF and error pages, no sign-in."""
    return lambda handler: _guard(handler, (), True, max_body)
