"""The one place where exceptions become HTTP responses of the API (the UI has its own pages: `web.ui.error_pages`).

Domain errors carry their status and code (`vcs.errors`); the body is
{"error": English message, "code": stable code} plus "fields" (422) or
"conflicts" (409). A lost Redis is 503; anything unexpected is logged with its
traceback and answered 500 without details. That answer is sent from outside
every middleware, so it carries the security headers itself.
"""

from __future__ import annotations

import json
import logging

from redis.exceptions import RedisError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from vcs.errors import TooManyRequests, VcsError
from web.security_headers import SECURITY_HEADERS

__all__ = ["EXCEPTION_HANDLERS", "STORAGE_RETRY_AFTER", "log_unexpected"]

log = logging.getLogger(__name__)

STORAGE_RETRY_AFTER = "2"


def _headers(exc: VcsError) -> dict[str, str] | None:
    if isinstance(exc, TooManyRequests):
        return {"Retry-After": str(exc.retry_after)}
    if exc.status == 401:
        return {"WWW-Authenticate": 'Bearer realm="vcs"'}
    return None


async def _vcs_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, VcsError)
    return JSONResponse(exc.body(), status_code=exc.status, headers=_headers(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail, "code": f"http_{exc.status_code}"}, status_code=exc.status_code, headers=exc.headers)


async def _bad_json(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": f"body is not valid JSON: {exc}", "code": "bad_json"}, status_code=400)


async def _redis_down(request: Request, exc: Exception) -> Response:
    log.warning("Redis error on %s %s: %s", request.scope.get("method", "WEBSOCKET"), request.url.path, exc)
    return JSONResponse(
        {"error": "storage unavailable, try again", "code": "storage_unavailable"}, status_code=503, headers={"Retry-After": STORAGE_RETRY_AFTER}
    )


def log_unexpected(request: Request) -> None:
    log.exception("unhandled error on %s %s", request.scope.get("method", "WEBSOCKET"), request.url.path)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log_unexpected(request)
    return JSONResponse({"error": "internal error", "code": "internal"}, status_code=500, headers=SECURITY_HEADERS)


EXCEPTION_HANDLERS = {
    VcsError: _vcs_error,
    HTTPException: _http_error,
    json.JSONDecodeError: _bad_json,
    RedisError: _redis_down,
    ConnectionError: _redis_down,
    Exception: _unexpected,
}
