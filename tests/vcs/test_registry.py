from collections import Counter

import pytest

from vcs.divisions import communes, provinces
from vcs.endpoints import EndpointKind, national_endpoints
from vcs.link_profiles import AccessType, LinkProfile, seed_profile
from vcs.registry import EndpointQuery, Registry


def test_national_registry_counts_and_types():
    assert len(provinces()) == 34
    kinds = Counter(c.division_type for c in communes())
    assert kinds == {"xã": 2621, "phường": 687, "đặc khu": 13}
    endpoints = national_endpoints()
    by_kind = Counter(e.kind for e in endpoints)
    assert by_kind == {EndpointKind.COMMUNE: 3321, EndpointKind.HALL: 34, EndpointKind.CENTRAL: 1}
    assert len({e.id for e in endpoints}) == len(endpoints)
    assert all(len(e.id) == 5 and e.id.isdigit() for e in endpoints if e.kind is EndpointKind.COMMUNE)


def test_link_profile_mix_is_close_to_reality():
    profiles = [seed_profile(c.code) for c in communes()]
    share = Counter(p.access for p in profiles)
    total = len(profiles)
    assert 0.85 <= share[AccessType.GOV_FIBER] / total <= 0.91
    assert 0.06 <= share[AccessType.LTE] / total <= 0.12
    assert 0.015 <= share[AccessType.SATELLITE] / total <= 0.05
    for p in profiles:
        if p.access is AccessType.LTE:
            assert 8_000 <= p.down_kbps <= 12_000 and 2_000 <= p.up_kbps <= 4_000
        if p.access is AccessType.SATELLITE:
            assert p.down_kbps <= 2_500 and p.up_kbps <= 600 and p.rtt_ms >= 550
        if p.access is AccessType.GOV_FIBER:
            assert p.down_kbps == 200_000


def test_seeding_is_deterministic():
    assert [seed_profile(c.code) for c in communes()[:50]] == [seed_profile(c.code) for c in communes()[:50]]


async def test_seed_is_idempotent_and_keeps_edits(redis):
    registry = Registry(redis)
    assert await registry.seed() == 3356
    edited = LinkProfile(AccessType.SATELLITE, 1000, 300, 650, 2.5)
    await registry.set_links([("00070", edited)])
    assert await registry.seed() == 0
    assert (await Registry(redis).get("00070")).link == edited


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Hoan Kiem", "Phường Hoàn Kiếm"),
        ("hoàn kiếm", "Phường Hoàn Kiếm"),
        ("PHUONG HOAN KIEM", "Phường Hoàn Kiếm"),
        ("con dao", "Đặc khu Côn Đảo"),
        ("Đặc khu Côn Đảo", "Đặc khu Côn Đảo"),
    ],
)
async def test_name_search_ignores_diacritics(redis, text, expected):
    registry = Registry(redis)
    await registry.seed()
    names = [e.name for e in await registry.query(EndpointQuery(search=text))]
    assert expected in names


async def test_registry_cache_sees_writes_from_another_process(redis):
    reader, writer = Registry(redis), Registry(redis)
    await writer.seed()
    before = await reader.get("00004")
    changed = LinkProfile(AccessType.LTE, 9000, 2500, 70, 1.0)
    await writer.set_links([("00004", changed)])
    assert before.link != changed
    assert (await reader.get("00004")).link == changed
