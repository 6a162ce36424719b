"""The login throttle's counting against a real Redis."""

import asyncio

import pytest

from vcs.errors import TooManyRequests
from vcs.login_throttle import SIGN_IN, LoginThrottle, ThrottlePolicy

QUICK = ThrottlePolicy("user", window=60, per_pair=3, per_client=5, account_free=2, first_delay=0.01, max_delay=0.04)


def test_the_account_delay_doubles_past_the_free_failures_up_to_its_cap():
    assert [QUICK.delay(n) for n in range(6)] == [0, 0, 0.01, 0.02, 0.04, 0.04]
    assert SIGN_IN.delay(10_000) == SIGN_IN.max_delay


async def test_concurrent_attempts_cannot_slip_under_the_pair_limit(redis):
    throttle = LoginThrottle(redis, QUICK)

    async def attempt() -> bool:
        try:
            await throttle.admit("an", "10.0.0.1")
        except TooManyRequests:
            return False
        return True

    admitted = await asyncio.gather(*(attempt() for _ in range(20)))
    assert sum(admitted) == QUICK.per_pair


async def test_a_success_gives_the_address_its_try_back_and_clears_the_account(redis):
    throttle = LoginThrottle(redis, QUICK)
    for name in ("a", "b", "c", "d"):
        await throttle.admit(name, "10.0.0.1")
        await throttle.failed(name, "10.0.0.1")
    await throttle.admit("an", "10.0.0.1")
    await throttle.succeeded("an", "10.0.0.1")
    await throttle.admit("e", "10.0.0.1")  # the fifth counted attempt of the address
    with pytest.raises(TooManyRequests) as refused:
        await throttle.admit("f", "10.0.0.1")
    assert 0 < refused.value.retry_after <= QUICK.window
