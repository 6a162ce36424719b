"""The session store against a real Redis: expiry, revocation of one session or all of a user's."""

from vcs import keys
from web.ui.sessions import Sessions


async def test_a_session_lives_until_its_max_age(redis):
    sessions = Sessions(redis, idle_timeout=60, max_age=100)
    token, created = await sessions.create("an", now=1000.0, client="127.0.0.1")
    found = await sessions.get(token, now=1050.0)
    assert found is not None and found.username == "an" and found.csrf == created.csrf
    assert 0 < await redis.ttl(keys.ui_session(created.key)) <= 60  # idle expiry, restarted on use
    assert await sessions.get(token, now=1101.0) is None
    assert not await redis.exists(keys.ui_session(created.key))
    assert await sessions.get("", now=1000.0) is None


async def test_revoking_a_user_ends_all_its_sessions_and_only_those(redis):
    sessions = Sessions(redis)
    first, _ = await sessions.create("an", now=0.0)
    second, _ = await sessions.create("an", now=0.0)
    other, _ = await sessions.create("binh", now=0.0)
    assert await sessions.count_user("an") == 2
    assert await sessions.revoke_user("an") == 2
    assert await sessions.get(first, now=1.0) is None and await sessions.get(second, now=1.0) is None
    assert await sessions.get(other, now=1.0) is not None
    assert await sessions.count_user("an") == 0


async def test_a_flash_message_is_shown_once(redis):
    sessions = Sessions(redis)
    token, session = await sessions.create("an", now=0.0)
    await sessions.set_flash(session, "User {username} added.", username="binh")
    assert (await sessions.get(token, now=1.0)).flash == {"message": "User {username} added.", "kind": "success", "params": {"username": "binh"}}
    assert (await sessions.get(token, now=2.0)).flash is None
