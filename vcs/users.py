"""Organizer, ops and viewer accounts with Argon2id password hashes."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import TypeVar

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

# Argon2id at OWASP's "m=19 MiB, t=2, p=1": one lane, so a hash (26 ms here)
# takes one core, and one thread for all hashing, so a burst of sign-ins takes
# at most one core from the event loop (the library default, p=4, took both).
_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
_hashing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="password-hash")
_T = TypeVar("_T")

# KEYS: users hash. ARGV: username, the account as read, the new account.
_REPLACE_IF_UNCHANGED = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end
"""


async def _off_loop(work: Callable[..., _T], *args: str) -> _T:
    return await asyncio.get_running_loop().run_in_executor(_hashing, work, *args)


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
        errors.append(FieldError.of("username", "username_format"))
    if password is not None and len(password) < MIN_PASSWORD:
        errors.append(FieldError.of("password", "too_short", min=MIN_PASSWORD))
    try:
        parsed_role = Role(role)
    except ValueError:
        errors.append(FieldError.of("role", "one_of", choices=", ".join(r.value for r in Role)))
        parsed_role = None
    code = None
    if province:
        code = canonical_province(province)
        if code is None:
            errors.append(FieldError.of("province", "unknown_province", province=province))
        elif parsed_role is not Role.ORGANIZER:
            errors.append(FieldError.of("province", "province_scope"))
    if errors:
        raise ValidationFailed(errors)
    return parsed_role, code


class Users:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def add(self, username: str, password: str, role: str, province: str | None = None, full_name: str = "") -> User:
        parsed_role, code = validate_account(username, password, role, province)
        password_hash = await _off_loop(_hasher.hash, password)
        user = User(username, parsed_role, code, password_hash, False, full_name, int(time.time()))
        if not await self.redis.hsetnx(keys.USERS, username, user.to_json()):
            raise ValidationFailed(FieldError.of("username", "taken"))
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
            await _off_loop(_hasher.hash, password)  # spend the same time as a real check: no username probing by timing
            return None
        user = User.from_json(raw)
        try:
            await _off_loop(_hasher.verify, user.password_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        if user.disabled:
            return None
        if _hasher.check_needs_rehash(user.password_hash):
            # a hash made with other parameters is replaced while the password is at hand,
            # unless the account changed meanwhile (disabled, say): then at the next sign-in
            user = replace(user, password_hash=await _off_loop(_hasher.hash, password))
            await self.redis.eval(_REPLACE_IF_UNCHANGED, 1, keys.USERS, user.username, raw, user.to_json())
        return user

    async def set_disabled(self, username: str, disabled: bool) -> User:
        """Disable or enable an account. A disabled one cannot sign in and its API tokens stop working;
        its browser sessions are ended by the caller (they live with the web UI)."""
        user = replace(await self.get(username), disabled=disabled)
        await self.save(user)
        return user

    async def set_password(self, username: str, password: str) -> User:
        user = await self.get(username)
        validate_account(username, password, user.role.value, user.province_code)
        user = replace(user, password_hash=await _off_loop(_hasher.hash, password))
        await self.save(user)
        return user
