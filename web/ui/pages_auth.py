"""Sign-in, sign-out and the language switch."""

from __future__ import annotations

import math

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from vcs import audit
from vcs.errors import TooManyRequests
from vcs.login_throttle import SIGN_IN, LoginThrottle
from web.auth import client_address
from web.services import services
from web.ui import i18n
from web.ui.access import SignedIn, page, public_page
from web.ui.cookies import clear_csrf_cookie, clear_session_cookie, set_lang_cookie, set_session_cookie
from web.ui.forms import safe_next, text
from web.ui.i18n import N_
from web.ui.rendering import render
from web.ui.sessions import Sessions

__all__ = ["login_form", "login_submit", "logout", "set_language"]


def _login_page(request: Request, next_path: str, username: str = "", error: str = "", status: int = 200, **params: object) -> Response:
    headers = {"Retry-After": str(params["retry_after"])} if status == 429 else None
    return render(
        request,
        "login.html",
        {"next": next_path, "username": username, "error": error, "error_params": params},
        section="login",
        status=status,
        headers=headers,
    )


@public_page()
async def login_form(request: Request, me: SignedIn | None) -> Response:
    next_path = safe_next(request.query_params.get("next"))
    if me is not None:
        return RedirectResponse(next_path, status_code=303)
    return _login_page(request, next_path)


@public_page()
async def login_submit(request: Request, me: SignedIn | None) -> Response:
    svc = services(request)
    form = await request.form()
    username = text(form, "username", 100).lower()
    password = form.get("password") if isinstance(form.get("password"), str) else ""
    next_path = safe_next(form.get("next"))
    if not username or not password:
        return _login_page(request, next_path, username, N_("Enter your username and password."), 422)
    client = client_address(request)
    throttle = LoginThrottle(svc.redis, SIGN_IN)
    try:
        user = await throttle.attempt(username, client, lambda: svc.users.check_password(username, password[:1024]))
    except TooManyRequests as refused:
        wait = refused.retry_after
        minutes = max(1, math.ceil(wait / 60))
        return _login_page(
            request, next_path, username, N_("Too many failed sign-in attempts. Try again in {minutes} min."), 429, minutes=minutes, retry_after=wait
        )
    if user is None:
        await audit.record(svc.redis, username[:64], audit.Action.AUTH_LOGIN_FAILED, details={"client": client}, now=svc.clock())
        return _login_page(request, next_path, username, N_("Wrong username or password."))
    if me is not None:  # signing in again from a signed-in browser: end the old session first
        await Sessions(svc.redis).revoke(me.session)
    token, _ = await Sessions(svc.redis).create(user.username, svc.clock(), client)
    await audit.record(svc.redis, user.username, audit.Action.AUTH_LOGIN, details={"client": client}, now=svc.clock())
    response = RedirectResponse(next_path, status_code=303)
    set_session_cookie(response, request, token)
    clear_csrf_cookie(response, request)
    return response


@page()
async def logout(request: Request, me: SignedIn) -> Response:
    svc = services(request)
    await Sessions(svc.redis).revoke(me.session)
    await audit.record(svc.redis, me.username, audit.Action.AUTH_LOGOUT, details={"client": client_address(request)}, now=svc.clock())
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response, request)
    return response


@public_page()
async def set_language(request: Request, me: SignedIn | None) -> Response:
    form = await request.form()
    response = RedirectResponse(safe_next(form.get("next")), status_code=303)
    set_lang_cookie(response, request, i18n.resolve(text(form, "lang", 10)))
    return response
