"""The one place where exceptions become HTTP responses.

Domain errors carry their status (`vcs.errors`); a lost Redis is 503; anything
unexpected is logged with its traceback and answered 500 without details.
"""

from __future__ import annotations

import json
import logging

from redis.exceptions import RedisError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from vcs.errors import TooManyRequests, VcsError

__all__ = ["EXCEPTION_HANDLERS"]

log = logging.getLogger(__name__)


async def _vcs_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, VcsError)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyRequests) else None
    if exc.status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="vcs"'}
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def _bad_json(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": f"body is not valid JSON: {exc}"}, status_code=400)


async def _redis_down(request: Request, exc: Exception) -> Response:
    log.warning("Redis error on %s %s: %s", request.scope.get("method", "WEBSOCKET"), request.url.path, exc)
    return JSONResponse({"error": "storage unavailable, try again"}, status_code=503, headers={"Retry-After": "2"})


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.scope.get("method", "WEBSOCKET"), request.url.path)
    return JSONResponse({"error": "internal error"}, status_code=500)


EXCEPTION_HANDLERS = {
    VcsError: _vcs_error,
    HTTPException: _http_error,
    json.JSONDecodeError: _bad_json,
    RedisError: _redis_down,
    ConnectionError: _redis_down,
    Exception: _unexpected,
}
