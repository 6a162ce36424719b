"""Short-lived session tokens an agent gets by logging in with its endpoint secret.

Heartbeats and the control WebSocket carry this token instead of the secret,
so the secret crosses the network once per session.
"""

from __future__ import annotations

import time

import jwt

from vcs.errors import Unauthorized

__all__ = ["AGENT_AUDIENCE", "mint_agent_token", "verify_agent_token"]

AGENT_AUDIENCE = "vcs-agent"
ALGORITHM = "HS256"
DEFAULT_TTL = 3600


def mint_agent_token(secret_key: str, endpoint_id: str, *, ttl: int = DEFAULT_TTL, now: float | None = None) -> str:
    issued = int(time.time() if now is None else now)
    claims = {"sub": endpoint_id, "aud": AGENT_AUDIENCE, "iat": issued, "nbf": issued, "exp": issued + ttl}
    return jwt.encode(claims, secret_key, algorithm=ALGORITHM)


def verify_agent_token(secret_key: str, token: str, *, now: float | None = None) -> str:
    """The endpoint id the token was issued to; Unauthorized if it is not valid now.

    Times are checked here rather than by PyJWT so that `now` can be an input.
    """
    try:
        claims = jwt.decode(
            token,
            secret_key,
            algorithms=[ALGORITHM],
            audience=AGENT_AUDIENCE,
            options={"require": ["sub", "aud", "exp", "nbf"], "verify_exp": False, "verify_nbf": False},
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"invalid agent token: {exc}") from None
    current = time.time() if now is None else now
    if not claims["nbf"] <= current < claims["exp"]:
        raise Unauthorized("agent token expired or not yet valid")
    return str(claims["sub"])
