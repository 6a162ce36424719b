"""The long-lived objects a request handler needs, built once per app at startup."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis.asyncio as aioredis
from starlette.requests import HTTPConnection

from vcs.api_tokens import ApiTokens
from vcs.config import Settings
from vcs.credentials import EndpointCredentials
from vcs.presence import Presence
from vcs.registry import Registry
from vcs.users import Users

__all__ = ["Services", "services"]


@dataclass
class Services:
    settings: Settings
    redis: aioredis.Redis
    registry: Registry
    presence: Presence
    api_tokens: ApiTokens
    credentials: EndpointCredentials
    users: Users
    clock: Callable[[], float] = time.time

    @classmethod
    def build(cls, settings: Settings, redis: aioredis.Redis) -> Services:
        return cls(
            settings=settings,
            redis=redis,
            registry=Registry(redis),
            presence=Presence(redis, settings.presence_timeout),
            api_tokens=ApiTokens(redis),
            credentials=EndpointCredentials(redis),
            users=Users(redis),
        )


def services(conn: HTTPConnection) -> Services:
    return conn.app.state.services
