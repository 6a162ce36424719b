"""Bearer tokens for API clients, minted by `vcs token create`.

The token is random and shown once; Redis keeps only its SHA-256, so a copy of
the database does not hand out access. Deleting the hash revokes the token.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time

import redis.asyncio as aioredis

from vcs import keys
from vcs.divisions import province_code as canonical_province
from vcs.errors import FieldError, Unauthorized, ValidationFailed
from vcs.roles import Principal, Role

__all__ = ["ApiTokens", "TOKEN_PREFIX"]

TOKEN_PREFIX = "vcs_"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiTokens:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def create(
        self, role: Role | str, province_code: str | None = None, name: str = "", *, user: str | None = None, ttl: int | None = None
    ) -> str:
        """A new token; `user` ties it to an account (disabling the account disables it), `ttl` makes it expire."""
        role = Role(role)
        if province_code is not None:
            if role is not Role.ORGANIZER:
                raise ValidationFailed(FieldError.of("province", "province_scope"))
            code = canonical_province(province_code)
            if code is None:
                raise ValidationFailed(FieldError.of("province", "unknown_province", province=province_code))
            province_code = code
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        await self.redis.hset(
            keys.api_token(_hash(token)),
            mapping={"role": role.value, "province": province_code or "", "name": name or role.value, "user": user or "", "created": int(time.time())},
        )
        if ttl:
            await self.redis.expire(keys.api_token(_hash(token)), ttl)
        return token

    async def authenticate(self, token: str) -> Principal:
        data = await self.redis.hgetall(keys.api_token(_hash(token)))
        if not data:
            raise Unauthorized("unknown, expired or revoked token")
        if data.get("user"):
            account = await self.redis.hget(keys.USERS, data["user"])
            if account is None or json.loads(account).get("disabled"):
                raise Unauthorized("the account behind this token is disabled")
        return Principal(name=data["name"], role=Role(data["role"]), province_code=data["province"] or None)

    async def revoke(self, token: str) -> bool:
        return bool(await self.redis.delete(keys.api_token(_hash(token))))
