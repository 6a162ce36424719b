"""/api/v1/agent: how an endpoint's agent logs in with its secret and reports it is alive.

Failed logins are counted per endpoint in a short window; past the limit the
endpoint must wait (429 with Retry-After), which slows guessing to a crawl
without locking out a room whose secret is right.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vcs import keys
from vcs.agent_tokens import DEFAULT_TTL, mint_agent_token
from vcs.errors import FieldError, TooManyRequests, Unauthorized, ValidationFailed
from web.auth import agent_endpoint
from web.requests import json_body
from web.services import services

__all__ = ["routes"]

FAILURE_WINDOW = 60  # seconds
MAX_FAILURES = 5


async def login(request: Request) -> Response:
    svc = services(request)
    body = await json_body(request)
    endpoint_id, secret = body.get("endpoint_id"), body.get("secret")
    if not isinstance(endpoint_id, str) or not isinstance(secret, str) or not endpoint_id or not secret:
        raise ValidationFailed([FieldError("endpoint_id", "required"), FieldError("secret", "required")])
    failures_key = keys.agent_login_failures(endpoint_id[:64])
    failures = int(await svc.redis.get(failures_key) or 0)
    if failures >= MAX_FAILURES:
        retry = await svc.redis.ttl(failures_key)
        raise TooManyRequests("too many failed logins for this endpoint", retry_after=max(retry, 1))
    if not await svc.credentials.verify(endpoint_id, secret):
        async with svc.redis.pipeline(transaction=True) as pipe:
            pipe.incr(failures_key)
            pipe.expire(failures_key, FAILURE_WINDOW, nx=True)
            await pipe.execute()
        raise Unauthorized("wrong endpoint id or secret")
    now = svc.clock()
    token = mint_agent_token(svc.settings.secret_key, endpoint_id, now=now)
    return JSONResponse({"token": token, "expires_in": DEFAULT_TTL, "server_time": now})


async def heartbeat(request: Request) -> Response:
    svc = services(request)
    endpoint_id = agent_endpoint(request)
    now = svc.clock()
    await svc.presence.heartbeat(endpoint_id, now)
    # the agent measures its clock skew against this and schedules by server time
    return JSONResponse({"endpoint_id": endpoint_id, "server_time": now})


routes = [
    Route("/agent/login", login, methods=["POST"]),
    Route("/agent/heartbeat", heartbeat, methods=["POST"]),
]
