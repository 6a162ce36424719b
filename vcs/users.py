"""Organizer, ops and viewer accounts with Argon2id password hashes."""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import asdict, dataclass

import redis.asyncio as aioredis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from vcs import keys
from vcs.divisions import province_code as canonical_province
from vcs.errors import FieldError, NotFound, ValidationFailed
from vcs.roles import Principal, Role

__all__ = ["User", "Users"]

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MIN_PASSWORD = 10

_hasher = PasswordHasher()  # argon2id with the library's current recommended cost


@dataclass(frozen=True)
class User:
    username: str
    role: Role
    province_code: str | None
    password_hash: str
    disabled: bool = False
    full_name: str = ""
    created: int = 0

    def principal(self) -> Principal:
        return Principal(self.username, self.role, self.province_code)

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "role": self.role.value}, ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str) -> User:
        data = json.loads(raw)
        return cls(**{**data, "role": Role(data["role"])})


def validate_account(username: str, password: str | None, role: str, province: str | None) -> tuple[Role, str | None]:
    errors = []
    if not USERNAME.match(username or ""):
        errors.append(FieldError("username", "2-64 characters: lowercase letters, digits, . _ -"))
    if password is not None and len(password) < MIN_PASSWORD:
        errors.append(FieldError("password", f"at least {MIN_PASSWORD} characters"))
    try:
        parsed_role = Role(role)
    except ValueError:
        errors.append(FieldError("role", f"must be one of {', '.join(r.value for r in Role)}"))
        parsed_role = None
    code = None
    if province:
        code = canonical_province(province)
        if code is None:
            errors.append(FieldError("province", f"unknown province code {province!r}"))
        elif parsed_role is not Role.ORGANIZER:
            errors.append(FieldError("province", "only organizers are scoped to a province"))
    if errors:
        raise ValidationFailed(errors)
    return parsed_role, code


class Users:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def add(self, username: str, password: str, role: str, province: str | None = None, full_name: str = "") -> User:
        parsed_role, code = validate_account(username, password, role, province)
        # hashing takes tens of milliseconds of CPU: keep it off the event loop
        password_hash = await asyncio.to_thread(_hasher.hash, password)
        user = User(username, parsed_role, code, password_hash, False, full_name, int(time.time()))
        if not await self.redis.hsetnx(keys.USERS, username, user.to_json()):
            raise ValidationFailed(FieldError("username", "already taken"))
        return user

    async def get(self, username: str) -> User:
        raw = await self.redis.hget(keys.USERS, username)
        if raw is None:
            raise NotFound(f"no user {username!r}")
        return User.from_json(raw)

    async def all(self) -> list[User]:
        return sorted((User.from_json(v) for v in (await self.redis.hgetall(keys.USERS)).values()), key=lambda u: u.username)

    async def save(self, user: User) -> None:
        await self.redis.hset(keys.USERS, user.username, user.to_json())

    async def check_password(self, username: str, password: str) -> User | None:
        """The user if the password is right and the account enabled; None otherwise."""
        raw = await self.redis.hget(keys.USERS, username)
        if raw is None:
            await asyncio.to_thread(_hasher.hash, password)  # spend the same time as a real check: no username probing by timing
            return None
        user = User.from_json(raw)
        try:
            await asyncio.to_thread(_hasher.verify, user.password_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        return None if user.disabled else user
