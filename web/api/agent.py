"""/api/v1/agent: how an endpoint's agent logs in with its secret and reports it is alive.

Logins go through the login throttle (`vcs.login_throttle.AGENT_LOGIN`): an
address that keeps guessing one endpoint's secret waits (429 with
Retry-After), the endpoint itself is only slowed down, so its room with the
right secret always gets in.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vcs.agent_tokens import DEFAULT_TTL, mint_agent_token
from vcs.errors import Unauthorized
from vcs.login_throttle import AGENT_LOGIN, LoginThrottle
from web.auth import agent_endpoint, client_address
from web.requests import json_body, required_strings
from web.services import services

__all__ = ["routes"]

async def login(request: Request) -> Response:
    svc = services(request)
    body = await json_body(request)
    endpoint_id, secret = required_strings(body, "endpoint_id", "secret")
    throttle = LoginThrottle(svc.redis, AGENT_LOGIN)
    if not await throttle.attempt(endpoint_id, client_address(request), lambda: svc.credentials.verify(endpoint_id, secret)):
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
