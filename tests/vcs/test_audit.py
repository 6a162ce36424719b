"""The audit log against a real Redis: order, filters across read batches, details, the cap."""

import pytest

from vcs import audit, keys


async def test_recent_is_newest_first_with_details_kept(redis):
    await audit.record(redis, "an", "auth.login", details={"client": "127.0.0.1"}, now=1_751_328_000.0)
    await audit.record(redis, "an", "endpoint.link_edit", "00070", {"changes": {"down_kbps": [200000, 9000]}, "name": "Phường Hoàn Kiếm"}, now=1_751_328_060.0)
    newest, oldest = await audit.recent(redis)
    assert (newest.actor, newest.action, newest.target) == ("an", "endpoint.link_edit", "00070")
    assert newest.details == {"changes": {"down_kbps": [200000, 9000]}, "name": "Phường Hoàn Kiếm"}
    assert newest.at == 1_751_328_060.0 and newest.when.isoformat() == "2025-07-01T00:01:00+00:00"
    assert (oldest.action, oldest.target, oldest.details) == ("auth.login", "", {"client": "127.0.0.1"})


async def test_filters_reach_past_the_first_read_batch(redis):
    await audit.record(redis, "binh", "user.add", "old")
    for i in range(1200):  # more than two batches of other entries on top
        await audit.record(redis, "an", "auth.login", details={"i": i})
    [found] = await audit.recent(redis, actor="binh")
    assert found.target == "old"
    assert len(await audit.recent(redis, limit=700, action="auth.login")) == 700
    assert [e.details["i"] for e in await audit.recent(redis, limit=3)] == [1199, 1198, 1197]
    assert await audit.recent(redis, action="auth.login", actor="binh") == []


async def test_the_stream_is_capped(redis, monkeypatch):
    monkeypatch.setattr(audit, "MAX_ENTRIES", 100)
    for i in range(1000):
        await audit.record(redis, "an", "auth.login")
    assert 100 <= await redis.xlen(keys.AUDIT) < 1000


async def test_an_entry_needs_an_action(redis):
    with pytest.raises(ValueError):
        await audit.record(redis, "an", "")


async def test_only_the_projects_actions_are_recorded(redis):
    with pytest.raises(ValueError):
        await audit.record(redis, "an", "meeting.update")
    await audit.record(redis, "an", audit.Action.MEETING_CHANGE)
    assert [e.action for e in await audit.recent(redis)] == ["meeting.change"]
