"""/api/v1/auth/token: a user signs in with username and password and gets a short-lived API token.

The same throttle as the web sign-in applies, so the API is no side door for
password guessing; the token dies with its TTL, on DELETE, or when the
account is disabled.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vcs.audit import Action
from vcs.audit import record as audit
from vcs.errors import Unauthorized
from vcs.login_throttle import SIGN_IN, LoginThrottle
from web.auth import api_principal, bearer_token, client_address
from web.requests import json_body, required_strings
from web.services import services

__all__ = ["routes"]

TOKEN_TTL = 12 * 3600


async def sign_in(request: Request) -> Response:
    svc = services(request)
    body = await json_body(request)
    username, password = required_strings(body, "username", "password")
    client = client_address(request)
    throttle = LoginThrottle(svc.redis, SIGN_IN)
    user = await throttle.attempt(username, client, lambda: svc.users.check_password(username, password[:1024]))
    if user is None:
        await audit(svc.redis, username[:64], Action.AUTH_LOGIN_FAILED, details={"client": client, "via": "api"})
        raise Unauthorized("wrong username or password, or the account is disabled")
    token = await svc.api_tokens.create(user.role, user.province_code, user.username, user=user.username, ttl=TOKEN_TTL)
    await audit(svc.redis, user.username, Action.AUTH_LOGIN, details={"client": client, "via": "api"})
    return JSONResponse(
        {"token": token, "expires_in": TOKEN_TTL, "role": user.role.value, "province": user.province_code},
        headers={"Cache-Control": "no-store"},
    )


async def sign_out(request: Request) -> Response:
    principal = await api_principal(request)
    await services(request).api_tokens.revoke(bearer_token(request))
    await audit(services(request).redis, principal.name, Action.AUTH_LOGOUT, details={"via": "api"})
    return Response(status_code=204)


routes = [
    Route("/auth/token", sign_in, methods=["POST"]),
    Route("/auth/token", sign_out, methods=["DELETE"]),
]
