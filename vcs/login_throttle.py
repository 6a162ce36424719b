"""Sign-in throttling: failed attempts counted per username and per client address.

Each counter lives for one window from its first failure. Past the limit the
name (or the address) must wait until the window ends; the check comes before
the password is verified, so a locked-out guesser costs no Argon2 work. A
success clears the username's counter, never the address's: an attacker who
owns one account cannot use it to reset its guessing budget.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from vcs import keys

__all__ = ["LoginThrottle"]

WINDOW = 15 * 60  # seconds
MAX_PER_USER = 5
MAX_PER_CLIENT = 20


def _user_key(username: str) -> str:
    return keys.ui_login_failures("user", username.strip().lower()[:64])


def _client_key(client: str) -> str:
    return keys.ui_login_failures("client", client[:64])


class LoginThrottle:
    def __init__(
        self,
        redis: aioredis.Redis,
        per_user: int = MAX_PER_USER,
        per_client: int = MAX_PER_CLIENT,
        window: int = WINDOW,
    ) -> None:
        self.redis = redis
        self.per_user = per_user
        self.per_client = per_client
        self.window = window

    async def wait(self, username: str, client: str) -> int:
        """Seconds to wait before this username may be tried from this client; 0 means go ahead."""
        user_key, client_key = _user_key(username), _client_key(client)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(user_key)
            pipe.ttl(user_key)
            pipe.get(client_key)
            pipe.ttl(client_key)
            user_failures, user_ttl, client_failures, client_ttl = await pipe.execute()
        waits = [0]
        if int(user_failures or 0) >= self.per_user:
            waits.append(user_ttl if user_ttl > 0 else self.window)
        if int(client_failures or 0) >= self.per_client:
            waits.append(client_ttl if client_ttl > 0 else self.window)
        return max(waits)

    async def failed(self, username: str, client: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            for key in (_user_key(username), _client_key(client)):
                pipe.incr(key)
                pipe.expire(key, self.window, nx=True)
            await pipe.execute()

    async def succeeded(self, username: str) -> None:
        await self.redis.delete(_user_key(username))
