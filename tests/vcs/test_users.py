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


async def test_a_disabled_account_cannot_sign_in_until_enabled(redis):
    users = Users(redis)
    await users.add("ops.hue", PASSWORD, "ops")
    assert (await users.set_disabled("ops.hue", True)).disabled
    assert await users.check_password("ops.hue", PASSWORD) is None
    assert not (await users.set_disabled("ops.hue", False)).disabled
    assert await users.check_password("ops.hue", PASSWORD) is not None


async def test_a_new_password_replaces_the_old_one(redis):
    import pytest

    from vcs.errors import NotFound, ValidationFailed

    users = Users(redis)
    await users.add("org.hue", PASSWORD, "organizer", province="46")
    await users.set_password("org.hue", "another-long-password")
    assert await users.check_password("org.hue", PASSWORD) is None
    assert (await users.check_password("org.hue", "another-long-password")).province_code == "46"
    with pytest.raises(ValidationFailed):
        await users.set_password("org.hue", "short")
    with pytest.raises(NotFound):
        await users.set_password("nobody", "another-long-password")
