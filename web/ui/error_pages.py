"""The UI's exception handlers: every error a page raises becomes an HTML page in the visitor's language.

The message is chosen by the error's code (`vcs.errors`), never by its
English text; validation errors list each field with its translated reason.
A lost Redis is 503, anything unexpected 500: logged, and nothing of it shown.
"""

from __future__ import annotations

from redis.exceptions import RedisError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from vcs.errors import TooManyRequests, ValidationFailed, VcsError
from web.errors import STORAGE_RETRY_AFTER, log_unexpected
from web.security_headers import SECURITY_HEADERS
from web.ui import i18n
from web.ui.i18n import N_
from web.ui.rendering import language, render

__all__ = ["EXCEPTION_HANDLERS", "error_page"]

TITLES = {
    400: N_("Bad request"),
    403: N_("Access denied"),
    404: N_("Not found"),
    413: N_("Too large"),
    422: N_("Invalid input"),
    429: N_("Too many requests"),
    500: N_("Internal error"),
    503: N_("Service unavailable"),
}

# error code => what the page says; params come from the error
MESSAGES = {
    "not_found": N_("There is no such page or item."),
    "http_404": N_("There is no such page or item."),
    "forbidden": N_("You do not have permission to open this page."),
    "csrf": N_("The form has expired or did not come from this site. Reload the page and try again."),
    "too_large": N_("The upload is larger than {limit} bytes."),
    "too_many_requests": N_("Too many requests. Try again in {seconds} seconds."),
    "storage_unavailable": N_("The service is briefly unavailable. Try again in a moment."),
    "internal": N_("Something went wrong on our side. It has been logged; try again later."),
}


def error_page(request: Request, status: int, code: str = "", params: dict | None = None, text: str = "") -> Response:
    """An HTML error page: the message of `code` (with `params`) in the visitor's language, or `text` as given."""
    lang = language(request)
    if code in MESSAGES:
        text = i18n.gettext(lang, MESSAGES[code], **(params or {}))
    context = {"status": status, "title": TITLES.get(status, N_("Error")), "text": text}
    if request.method not in ("GET", "HEAD"):
        context["current_path"] = "/"  # the language switch must not lead to a GET of a POST-only path
    return render(request, "error.html", context, status=status, headers={"Cache-Control": "no-store"})


async def _vcs_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, VcsError)
    text = ""
    if isinstance(exc, ValidationFailed):
        lang = language(request)
        text = "; ".join(f"{e.field}: {i18n.reason(lang, e)}" for e in exc.errors)
    response = error_page(request, exc.status, exc.code, exc.params, text)
    if isinstance(exc, TooManyRequests):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_page(request, exc.status_code, f"http_{exc.status_code}")


async def _storage_down(request: Request, exc: Exception) -> Response:
    response = error_page(request, 503, "storage_unavailable")
    response.headers["Retry-After"] = STORAGE_RETRY_AFTER
    return response


async def _unexpected(request: Request, exc: Exception) -> Response:
    log_unexpected(request)
    try:
        response = error_page(request, 500, "internal")
    except Exception:  # the page itself failed: a bare one, still without details
        response = HTMLResponse("<!doctype html><title>500</title><h1>500</h1>", status_code=500)
    response.headers.update(SECURITY_HEADERS)  # sent from outside the app's middleware
    return response


EXCEPTION_HANDLERS = {
    VcsError: _vcs_error,
    HTTPException: _http_error,
    RedisError: _storage_down,
    ConnectionError: _storage_down,
    Exception: _unexpected,
}
