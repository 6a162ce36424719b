"""The UI's cookies and their flags, in one place.

Every cookie is HttpOnly and SameSite=Lax; it is also Secure when the request
came over HTTPS (uvicorn sets the scheme from X-Forwarded-Proto only for the
proxies its `--forwarded-allow-ips` trusts) or the deployment's public URL is
https.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from web.services import services
from web.ui import i18n, sessions

__all__ = [
    "CSRF_COOKIE",
    "LANG_COOKIE",
    "clear_csrf_cookie",
    "clear_session_cookie",
    "is_https",
    "set_csrf_cookie",
    "set_lang_cookie",
    "set_session_cookie",
]

CSRF_COOKIE = "vcs_csrf"  # the CSRF token of a visitor who is not signed in (sign-in, language forms)
LANG_COOKIE = i18n.COOKIE
LANG_MAX_AGE = 365 * 24 * 3600


def is_https(request: Request) -> bool:
    return request.url.scheme == "https" or services(request).settings.public_url.startswith("https://")


def _set(response: Response, request: Request, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", secure=is_https(request), httponly=True, samesite="lax")


def _clear(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(name, path="/", secure=is_https(request), httponly=True, samesite="lax")


def set_session_cookie(response: Response, request: Request, token: str) -> None:
    # a browser-session cookie: closing the browser drops it; the server ends it anyway after MAX_AGE
    _set(response, request, sessions.COOKIE, token, None)


def clear_session_cookie(response: Response, request: Request) -> None:
    _clear(response, request, sessions.COOKIE)


def set_csrf_cookie(response: Response, request: Request, token: str) -> None:
    _set(response, request, CSRF_COOKIE, token, None)


def clear_csrf_cookie(response: Response, request: Request) -> None:
    _clear(response, request, CSRF_COOKIE)


def set_lang_cookie(response: Response, request: Request, lang: str) -> None:
    _set(response, request, LANG_COOKIE, lang, LANG_MAX_AGE)
