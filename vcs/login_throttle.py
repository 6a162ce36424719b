"""Throttling of credential checks (agent login, API and UI sign-in) that cannot be turned against the owner.

Three failure counters per kind of login, each living one window from its
first failure, and one count of checks in progress:

- client address + account: past `per_pair` attempts that have not succeeded
  (failed, or still being checked) that pair waits out the window (429). The
  guesser is stopped; the account's owner, from any other address, is not.
- client address: past `per_client` failures (any accounts) the address waits
  out the window. One address cannot spray many accounts.
- client address, in progress: at most `in_flight` credentials from one
  address are checked at once. Many communes share one provider address (NAT)
  and log in together after a power cut: they are not failures, so they only
  wait for a slot, while a sprayer's burst is bounded by the same number.
- account: past `account_free` failures (from anywhere) every attempt on the
  account is slowed down before its credential is checked, by a delay that
  doubles with each further failure up to `max_delay`. Never refused: the
  owner with the right credential always gets through, a few seconds late at
  worst, while guessers spread over many addresses pay the delay on every try.

The hard checks and their counting are one Lua script, so that concurrent
attempts cannot all slip under a limit; a refused attempt is not counted. A
success clears the pair's and the account's counters (an attacker who owns one
account cannot reset an address's failures with it). A refusal comes before
the credential is checked, so it costs no hashing work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import redis.asyncio as aioredis

from vcs import keys
from vcs.errors import TooManyRequests

__all__ = ["AGENT_LOGIN", "SIGN_IN", "LoginThrottle", "ThrottlePolicy"]

T = TypeVar("T")


@dataclass(frozen=True)
class ThrottlePolicy:
    kind: str  # names the counters: "agent" or "user"
    window: int  # seconds a counter lives from its first failure
    per_pair: int
    per_client: int
    account_free: int  # failures on an account before its attempts are slowed
    first_delay: float  # seconds, doubling per failure past account_free
    max_delay: float
    in_flight: int  # credentials from one address checked at once

    def delay(self, account_failures: int) -> float:
        """Seconds an attempt on an account with this many recent failures waits before it is checked."""
        past = account_failures - self.account_free
        if past < 0:
            return 0.0
        return min(self.max_delay, self.first_delay * 2 ** min(past, 16))


# agents retry on their own, and many communes may share one provider address (NAT)
AGENT_LOGIN = ThrottlePolicy("agent", window=60, per_pair=5, per_client=30, account_free=5, first_delay=0.5, max_delay=4.0, in_flight=200)
SIGN_IN = ThrottlePolicy("user", window=15 * 60, per_pair=5, per_client=20, account_free=5, first_delay=0.5, max_delay=4.0, in_flight=20)
# a check in progress is forgotten after this long even if its worker died before finishing it
IN_FLIGHT_TTL = 30

# KEYS: pair, client failures, client in progress; ARGV: per_pair, per_client, window, in_flight, in-flight ttl.
# Returns 0 and counts the attempt (pair and in progress), or the seconds to wait (nothing counted).
_ADMIT = """
local pair = tonumber(redis.call('GET', KEYS[1]) or '0')
local client = tonumber(redis.call('GET', KEYS[2]) or '0')
local busy = tonumber(redis.call('GET', KEYS[3]) or '0')
local wait = 0
if pair >= tonumber(ARGV[1]) then wait = math.max(wait, redis.call('TTL', KEYS[1])) end
if client >= tonumber(ARGV[2]) then wait = math.max(wait, redis.call('TTL', KEYS[2])) end
if pair >= tonumber(ARGV[1]) or client >= tonumber(ARGV[2]) then
  if wait < 1 then wait = tonumber(ARGV[3]) end
  return wait
end
if busy >= tonumber(ARGV[4]) then return 1 end
redis.call('INCR', KEYS[1])
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
redis.call('INCR', KEYS[3])
redis.call('EXPIRE', KEYS[3], ARGV[5])
return 0
"""

# KEYS: client in progress. One check finished (never below zero: the counter may have expired).
_DONE = """
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then redis.call('DECR', KEYS[1]) end
return 0
"""


class LoginThrottle:
    def __init__(self, redis: aioredis.Redis, policy: ThrottlePolicy) -> None:
        self.redis = redis
        self.policy = policy
        self._admit = redis.register_script(_ADMIT)
        self._done = redis.register_script(_DONE)

    def _key(self, scope: str, value: str) -> str:
        return keys.login_failures(self.policy.kind, scope, value)

    def _keys(self, account: str, client: str) -> tuple[str, str, str, str]:
        """The pair's, the address's and the account's failure counters, and the address's checks in progress."""
        account = account.strip().lower()[:64]
        client = client[:64]
        return (
            self._key("pair", f"{client}|{account}"),
            self._key("client", client),
            self._key("account", account),
            self._key("in-flight", client),
        )

    async def admit(self, account: str, client: str) -> None:
        """Count an attempt on `account` from `client`, after the account's slowdown.

        Raises TooManyRequests (with Retry-After seconds) when the pair or the
        address is over its limit, or the address has `in_flight` checks in
        progress. Follow with `failed` or `succeeded`.
        """
        pair_key, client_key, account_key, busy_key = self._keys(account, client)
        p = self.policy
        wait = int(await self._admit(keys=[pair_key, client_key, busy_key], args=[p.per_pair, p.per_client, p.window, p.in_flight, IN_FLIGHT_TTL]))
        if wait:
            raise TooManyRequests("too many failed attempts from this address; wait and try again", retry_after=wait)
        delay = p.delay(int(await self.redis.get(account_key) or 0))
        if delay:
            await asyncio.sleep(delay)

    async def failed(self, account: str, client: str) -> None:
        _, client_key, account_key, busy_key = self._keys(account, client)
        async with self.redis.pipeline(transaction=True) as pipe:
            for key in (client_key, account_key):
                pipe.incr(key)
                pipe.expire(key, self.policy.window, nx=True)
            await pipe.execute()
        await self._done(keys=[busy_key])

    async def succeeded(self, account: str, client: str) -> None:
        pair_key, _, account_key, busy_key = self._keys(account, client)
        await self.redis.delete(pair_key, account_key)
        await self._done(keys=[busy_key])

    async def attempt(self, account: str, client: str, check: Callable[[], Awaitable[T]]) -> T:
        """`admit`, then `check()` (the credential), counted as failed when it returns a false value
        (or raises)."""
        await self.admit(account, client)
        result = None
        try:
            result = await check()
        finally:
            if result:
                await self.succeeded(account, client)
            else:
                await self.failed(account, client)
        return result
