"""Liveness, readiness and the OpenAPI document."""

from __future__ import annotations

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from web.openapi import openapi_document
from web.services import services

__all__ = ["healthz", "openapi", "readyz"]


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "alive"})


async def readyz(request: Request) -> Response:
    try:
        await services(request).redis.ping()
    except (RedisError, OSError) as exc:
        return JSONResponse({"status": "not ready", "redis": str(exc)}, status_code=503)
    return JSONResponse({"status": "ready", "redis": "ok"})


async def openapi(request: Request) -> Response:
    return JSONResponse(openapi_document())
