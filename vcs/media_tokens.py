"""Short-lived signed media tokens for the SFU's signaling endpoints.

A media token is a JWT signed with the deployment secret (HS256 only; ``alg:
none`` and every other algorithm are refused). It names:

- ``sub``: the endpoint id (a commune room, a province hall, the studio);
- ``room``: the conference room, or ``"*"`` for a ``control`` token;
- ``role``: ``publish`` (WHIP), ``subscribe`` (WHEP), ``control`` (the
  node's floor and admin API, used by the orchestrator) or ``relay`` (the
  credential a relay node presents to its origin: ``sub`` is the relay's
  node id, ``node`` the origin's);
- ``node`` (optional): the SFU node the token is for; a node refuses a token
  naming another node. Tokens without it are good on any node (a single-node
  deployment, older agents);
- ``aud``: the audience, ``vcs-sfu`` unless told otherwise;
- ``iat`` / ``nbf`` / ``exp``: issue time, not-before and expiry.

Exception tree (translated to HTTP by the SFU app, in one place)::

    MediaTokenError
     +-- TokenInvalid     401: missing, malformed, tampered, wrong algorithm,
     |                         wrong audience, not yet valid or expired
     +-- TokenForbidden   403: a valid token for another room, role or node
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt

__all__ = [
    "ALGORITHM",
    "DEFAULT_AUDIENCE",
    "ROLES",
    "MediaClaims",
    "MediaTokenError",
    "TokenForbidden",
    "TokenInvalid",
    "mint_media_token",
    "verify_media_token",
]

ALGORITHM = "HS256"
DEFAULT_AUDIENCE = "vcs-sfu"
ROLES = ("publish", "subscribe", "control", "relay")
ANY_ROOM = "*"
MAX_TTL = 24 * 3600
LEEWAY_S = 5


class MediaTokenError(Exception):
    """Base class: the token cannot be used for this request."""

    status_code = 401


class TokenInvalid(MediaTokenError):
    """The token is not a valid media token at all (HTTP 401)."""

    status_code = 401


class TokenForbidden(MediaTokenError):
    """The token is valid but does not grant this room or role (HTTP 403)."""

    status_code = 403


@dataclass(frozen=True)
class MediaClaims:
    identity: str
    room: str
    role: str
    audience: str
    issued_at: int
    not_before: int
    expires_at: int
    token_id: str
    host: bool = False  # a publish token of the room's host: its first WHIP makes it the program
    node: str | None = None  # the node id the token is for; None: any node


def mint_media_token(
    secret: str,
    *,
    room: str,
    identity: str,
    role: str,
    ttl: int = 300,
    audience: str = DEFAULT_AUDIENCE,
    now: float | None = None,
    host: bool = False,
    node: str | None = None,
) -> str:
    """Return a signed media token valid for ``ttl`` seconds from ``now``.

    ``host``: a publish token of the room's host (the orchestrator mints it for
    the meeting's host endpoint only); a room names no other publisher host
    by itself, so a commune that publishes first does not take the program.
    ``node``: the only SFU node that accepts the token; a ``relay`` token
    (a relay's credential towards its origin) must name the origin.
    """
    if not secret:
        raise ValueError("a media token needs a non-empty secret")
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not identity:
        raise ValueError("identity must not be empty")
    if not room or (room == ANY_ROOM and role != "control"):
        raise ValueError("room must be named ('*' is only for control tokens)")
    if not 0 < ttl <= MAX_TTL:
        raise ValueError(f"ttl must be between 1 and {MAX_TTL} seconds")
    if host and role != "publish":
        raise ValueError("only a publish token may name the host")
    if node is not None and not node:
        raise ValueError("node must not be empty")
    if role == "relay" and node is None:
        raise ValueError("a relay token must name the origin node it is for")
    issued = int(time.time() if now is None else now)
    claims = {
        "sub": identity,
        "room": room,
        "role": role,
        "aud": audience,
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl,
        "jti": uuid.uuid4().hex,
    }
    if host:
        claims["host"] = True
    if node is not None:
        claims["node"] = node
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_media_token(
    secret: str,
    token: str,
    *,
    room: str,
    role: str | tuple[str, ...],
    audience: str = DEFAULT_AUDIENCE,
    now: float | None = None,
    node: str | None = None,
) -> MediaClaims:
    """Check ``token`` and that it grants ``role`` (or one of several) in ``room``.

    A ``control`` token is accepted for ``role="control"`` only; its room may
    be ``"*"`` (every room). ``node``: the id of the node checking; a token
    whose ``node`` claim names another node is refused.
    """
    if not token or not secret:
        raise TokenInvalid("missing token")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise TokenInvalid(f"malformed token: {exc}") from None
    if header.get("alg") != ALGORITHM:
        raise TokenInvalid(f"algorithm {header.get('alg')!r} is not allowed")
    options = {"require": ["sub", "room", "role", "aud", "exp", "nbf", "iat"]}
    try:
        if now is None:
            payload = jwt.decode(
                token,
                secret,
                algorithms=[ALGORITHM],
                audience=audience,
                options=options,
                leeway=LEEWAY_S,
            )
        else:
            payload = jwt.decode(
                token,
                secret,
                algorithms=[ALGORITHM],
                audience=audience,
                options={**options, "verify_exp": False, "verify_nbf": False},
            )
            _check_times(payload, now)
    except jwt.PyJWTError as exc:
        raise TokenInvalid(str(exc)) from None
    claims = _claims(payload)
    roles = (role,) if isinstance(role, str) else role
    if claims.role not in roles:
        raise TokenForbidden(f"token role {claims.role!r} does not allow {' or '.join(map(repr, roles))}")
    if claims.room != room and not (claims.role == "control" and claims.room == ANY_ROOM):
        raise TokenForbidden("token is for another room")
    if node is not None and claims.node is not None and claims.node != node:
        raise TokenForbidden("token is for another node")
    return claims


def _check_times(payload: dict, now: float) -> None:
    try:
        nbf = int(payload["nbf"])
        exp = int(payload["exp"])
    except (TypeError, ValueError):
        raise TokenInvalid("nbf and exp must be integers") from None
    if now + LEEWAY_S < nbf:
        raise TokenInvalid("token is not yet valid")
    if now - LEEWAY_S >= exp:
        raise TokenInvalid("token has expired")


def _claims(payload: dict) -> MediaClaims:
    sub, room, role = payload.get("sub"), payload.get("room"), payload.get("role")
    if not all(isinstance(v, str) and v for v in (sub, room, role)):
        raise TokenInvalid("sub, room and role must be non-empty strings")
    node = payload.get("node")
    if node is not None and not (isinstance(node, str) and node):
        raise TokenInvalid("node must be a non-empty string")
    if role not in ROLES:
        raise TokenInvalid(f"unknown role {role!r}")
    try:
        return MediaClaims(
            identity=sub,
            room=room,
            role=role,
            audience=str(payload["aud"]),
            issued_at=int(payload["iat"]),
            not_before=int(payload["nbf"]),
            expires_at=int(payload["exp"]),
            token_id=str(payload.get("jti", "")),
            host=payload.get("host") is True and role == "publish",
            node=node,
        )
    except (TypeError, ValueError):
        raise TokenInvalid("malformed time claims") from None
