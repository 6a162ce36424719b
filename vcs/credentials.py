"""Endpoint secrets: random, shown once, stored only as a hash, rotatable.

A secret is 32 random bytes, so a plain SHA-256 resists guessing as well as a
slow hash would, and keeps 3,321 agents' logins cheap for the server.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

import redis.asyncio as aioredis

from vcs import keys

__all__ = ["EndpointCredentials", "hash_secret"]

SCHEME = "sha256$"


def hash_secret(secret: str) -> str:
    return SCHEME + hashlib.sha256(secret.encode()).hexdigest()


class EndpointCredentials:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def rotate(self, endpoint_ids: Iterable[str]) -> dict[str, str]:
        """New secrets for these endpoints, returned once; the old ones stop working at once."""
        issued = {endpoint_id: secrets.token_urlsafe(32) for endpoint_id in endpoint_ids}
        if issued:
            await self.redis.hset(keys.ENDPOINT_SECRETS, mapping={e: hash_secret(s) for e, s in issued.items()})
        return issued

    async def verify(self, endpoint_id: str, secret: str) -> bool:
        stored = await self.redis.hget(keys.ENDPOINT_SECRETS, endpoint_id)
        return stored is not None and hmac.compare_digest(stored, hash_secret(secret))

    async def has_secret(self, endpoint_id: str) -> bool:
        return bool(await self.redis.hexists(keys.ENDPOINT_SECRETS, endpoint_id))
