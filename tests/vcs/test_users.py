"""Accounts in Redis: password checks and the upgrade of old hashes."""

from __future__ import annotations

from argon2 import PasswordHasher

from vcs.roles import Role
from vcs.users import User, Users

PASSWORD = "a-long-enough-password"


async def test_a_password_is_checked_and_a_wrong_one_refused(redis):
    users = Users(redis)
    await users.add("org.hanoi", PASSWORD, "organizer", province="01")
    assert (await users.check_password("org.hanoi", PASSWORD)).username == "org.hanoi"
    assert await users.check_password("org.hanoi", PASSWORD + "x") is None
    assert await users.check_password("nobody", PASSWORD) is None


async def test_an_old_hash_is_upgraded_at_the_next_sign_in(redis):
    users = Users(redis)
    old_hash = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4).hash(PASSWORD)
    await users.save(User("ops.old", Role.OPS, None, old_hash, False, "", 0))

    assert await users.check_password("ops.old", "wrong password") is None
    assert (await users.get("ops.old")).password_hash == old_hash  # not on a failed attempt

    assert await users.check_password("ops.old", PASSWORD) is not None
    upgraded = (await users.get("ops.old")).password_hash
    assert upgraded != old_hash and "p=1" in upgraded
    assert await users.check_password("ops.old", PASSWORD) is not None
