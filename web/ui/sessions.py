"""Server-side browser sessions in Redis behind an opaque cookie.

The cookie holds 32 random bytes; Redis keeps the session under the SHA-256 of
that value (a copy of the store hands out no sessions), with the username, the
session's CSRF token and a one-shot flash message. A session ends when it is
idle for `idle_timeout` (the key expires), when it is older than `max_age`,
on sign-out, or when its user is disabled: every user has an index of its
sessions so that all of them go at once.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass

import redis.asyncio as aioredis

from vcs import keys

__all__ = ["COOKIE", "IDLE_TIMEOUT", "MAX_AGE", "Session", "Sessions"]

COOKIE = "vcs_session"
IDLE_TIMEOUT = 8 * 3600  # seconds without a request before the session ends
MAX_AGE = 24 * 3600  # seconds after sign-in when the session ends whatever happens


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    key: str  # the sha256 of the cookie value, never the value itself
    username: str
    csrf: str
    created: float
    flash: dict | None = None


class Sessions:
    def __init__(self, redis: aioredis.Redis, idle_timeout: int = IDLE_TIMEOUT, max_age: int = MAX_AGE) -> None:
        self.redis = redis
        self.idle_timeout = idle_timeout
        self.max_age = max_age

    async def create(self, username: str, now: float, client: str = "") -> tuple[str, Session]:
        """A new session: the cookie value (give it to the browser once) and the session."""
        token = secrets.token_urlsafe(32)
        session = Session(_hash(token), username, secrets.token_urlsafe(32), now)
        index = keys.ui_user_sessions(username)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                keys.ui_session(session.key),
                mapping={"username": username, "csrf": session.csrf, "created": repr(now), "client": client},
            )
            pipe.expire(keys.ui_session(session.key), self.idle_timeout)
            pipe.sadd(index, session.key)
            pipe.expire(index, self.max_age)
            await pipe.execute()
        return token, session

    async def get(self, token: str, now: float) -> Session | None:
        """The live session for this cookie value (its idle timer restarts), or None."""
        if not token or len(token) > 128:
            return None
        key = keys.ui_session(_hash(token))
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(key)
            pipe.expire(key, self.idle_timeout)
            data, _ = await pipe.execute()
        if not data or "username" not in data:
            return None
        created = float(data.get("created") or 0)
        if now - created > self.max_age:
            await self._delete(_hash(token), data["username"])
            return None
        flash = None
        if data.get("flash"):
            await self.redis.hdel(key, "flash")
            try:
                flash = json.loads(data["flash"])
            except json.JSONDecodeError:
                flash = None
        return Session(_hash(token), data["username"], data.get("csrf", ""), created, flash)

    async def set_flash(self, session: Session, message: str, kind: str = "success", **params: object) -> None:
        """A message for the next page this session sees (`message` is an English msgid)."""
        payload = json.dumps({"message": message, "kind": kind, "params": params}, ensure_ascii=False, default=str)
        await self.redis.hset(keys.ui_session(session.key), "flash", payload)

    async def revoke(self, session: Session) -> None:
        await self._delete(session.key, session.username)

    async def revoke_user(self, username: str) -> int:
        """End every session of this user at once; the number ended."""
        index = keys.ui_user_sessions(username)
        members = await self.redis.smembers(index)
        async with self.redis.pipeline(transaction=True) as pipe:
            for key in members:
                pipe.delete(keys.ui_session(key))
            pipe.delete(index)
            results = await pipe.execute()
        return sum(results[:-1])

    async def count_user(self, username: str) -> int:
        """Live sessions of this user (index members whose session has not expired)."""
        members = await self.redis.smembers(keys.ui_user_sessions(username))
        if not members:
            return 0
        return await self.redis.exists(*(keys.ui_session(m) for m in members))

    async def _delete(self, session_key: str, username: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.ui_session(session_key))
            pipe.srem(keys.ui_user_sessions(username), session_key)
            await pipe.execute()
