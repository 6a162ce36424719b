"""Who is calling: API bearer tokens for people and tools, agent tokens for endpoints."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from vcs.agent_tokens import verify_agent_token
from vcs.errors import Unauthorized
from vcs.roles import Principal
from web.services import services

__all__ = ["api_principal", "agent_endpoint", "bearer_token", "client_address"]


def client_address(conn: HTTPConnection) -> str:
    """The caller's address as the server sees it (uvicorn takes X-Forwarded-For only from its trusted proxies)."""
    return conn.client.host if conn.client else "unknown"


def bearer_token(conn: HTTPConnection) -> str:
    header = conn.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer token")
    return token.strip()


async def api_principal(conn: HTTPConnection) -> Principal:
    cached = conn.scope.get("vcs.principal")
    if cached is None:
        cached = await services(conn).api_tokens.authenticate(bearer_token(conn))
        conn.scope["vcs.principal"] = cached
    return cached


def agent_endpoint(conn: HTTPConnection) -> str:
    svc = services(conn)
    return verify_agent_token(svc.settings.secret_key, bearer_token(conn), now=svc.clock())
