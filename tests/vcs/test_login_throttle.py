"""The login throttle's counting against a real Redis."""

import asyncio

import pytest

from tests.waiting import eventually
from vcs.errors import TooManyRequests
from vcs.login_throttle import SIGN_IN, LoginThrottle, ThrottlePolicy

QUICK = ThrottlePolicy("user", window=60, per_pair=3, per_client=5, account_free=2, first_delay=0.01, max_delay=0.04, in_flight=20)


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


async def test_a_success_is_not_held_against_the_address_and_clears_the_account(redis):
    throttle = LoginThrottle(redis, QUICK)
    for name in ("a", "b", "c", "d"):
        await throttle.admit(name, "10.0.0.1")
        await throttle.failed(name, "10.0.0.1")
    await throttle.admit("an", "10.0.0.1")
    await throttle.succeeded("an", "10.0.0.1")
    await throttle.admit("e", "10.0.0.1")
    await throttle.failed("e", "10.0.0.1")  # the address's fifth failure
    with pytest.raises(TooManyRequests) as refused:
        await throttle.admit("f", "10.0.0.1")
    assert 0 < refused.value.retry_after <= QUICK.window


async def test_communes_behind_one_address_log_in_together(redis):
    """Many endpoints sharing a provider address (NAT) are checked at once, up to the in-flight bound."""
    policy = ThrottlePolicy("agent", window=60, per_pair=5, per_client=5, account_free=5, first_delay=0.01, max_delay=0.04, in_flight=40)
    throttle = LoginThrottle(redis, policy)
    release = asyncio.Event()

    async def log_in(i: int) -> bool:
        async def check() -> bool:
            await release.wait()  # every check is in progress at the same time
            return True

        try:
            return await throttle.attempt(f"commune-{i}", "203.0.113.9", check)
        except TooManyRequests:
            return False

    logins = [asyncio.create_task(log_in(i)) for i in range(60)]
    def turned_away() -> list | None:  # the 20 past the bound, at once, before any check
        done = [t for t in logins if t.done()]
        return done if len(done) >= 20 else None

    refused = await eventually(turned_away, what="20 logins refused while 40 are checked")
    release.set()
    results = await asyncio.gather(*logins)
    assert results.count(True) == 40
    assert not any(t.result() for t in refused)
    # all finished: the address may check again, its successes counted against nothing
    assert await throttle.attempt("commune-0", "203.0.113.9", lambda: asyncio.sleep(0, True))
