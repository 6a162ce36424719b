from __future__ import annotations

import json

import pytest

from scheduler.bandwidth_plan import (
    NO_TIER,
    ParticipantLink,
    SfuNode,
    Shortfall,
    plan_bandwidth,
)
from vcs.tiers import DEFAULT_LADDER

# every tier costs its video plus 64 kbps of audio: 720p 2564, 360p 864, 180p 314, audio 64


def link(endpoint_id: str, province: str, down: int, up: int | None = None) -> ParticipantLink:
    return ParticipantLink(endpoint_id, province, down, down if up is None else up)


def test_plan_tiers_trunks_and_shortfalls():
    links = [
        link("00001", "01", 200_000),  # 720p
        link("00002", "01", 200_000),  # 720p
        link("00003", "01", 10_000, up=3_000),  # 4G: 720p down, 360p up
        link("00004", "01", 2_000, up=700),  # satellite: 360p down, 180p up
        link("26734", "79", 1_000),  # 180p
        link("26737", "79", 100, up=40),  # audio beyond the share; cannot even send audio
        link("26740", "79", 50),  # nothing fits
    ]
    plan = plan_bandwidth(links, trunk_capacity_kbps={79: 300})
    tiers = {c.endpoint_id: (c.tier, c.kbps, c.within_share, c.floor_tier) for c in plan.communes}
    assert tiers == {
        "00001": ("720p", 2564, True, "720p"),
        "00002": ("720p", 2564, True, "720p"),
        "00003": ("720p", 2564, True, "360p"),
        "00004": ("360p", 864, True, "180p"),
        "26734": ("180p", 314, True, "180p"),
        "26737": ("audio", 64, False, NO_TIER),
        "26740": (NO_TIER, 0, False, NO_TIER),
    }
    trunks = {t.province_code: t for t in plan.trunks}
    # cascade: one stream per tier in use; direct: one per commune
    assert (trunks["01"].cascade_kbps, trunks["01"].direct_kbps) == (2564 + 864, 3 * 2564 + 864)
    assert trunks["01"].tiers == ("720p", "360p") and trunks["01"].subscribers == 4
    assert trunks["01"].capacity_kbps == 1_000_000 and not trunks["01"].over_capacity
    assert (trunks["79"].cascade_kbps, trunks["79"].direct_kbps, trunks["79"].capacity_kbps) == (378, 378, 300)
    assert trunks["79"].over_capacity
    assert plan.shortfalls == (
        Shortfall("link", "26740", 64, 50, "kbps", "downlink below audio"),
        Shortfall("trunk", "79", 378, 300, "kbps", "province trunk over capacity"),
    )
    assert not plan.fits
    assert plan.tier_counts() == {"720p": 3, "360p": 1, "180p": 1, "audio": 1, NO_TIER: 1}


def test_nodes_are_filled_in_order_keeping_provinces_together():
    links = [link(f"{p}-{i}", p, 200_000) for p in ("02", "01") for i in range(3)]
    plan = plan_bandwidth(links, nodes=[SfuNode("relay-a", 4), SfuNode("relay-b", 4)])
    placed = {c.endpoint_id: c.node_id for c in plan.communes}
    assert [placed[f"01-{i}"] for i in range(3)] == ["relay-a"] * 3
    # placed as the warm-up will place them (scheduler.placement.place): a province that fits one relay is not split
    assert [placed[f"02-{i}"] for i in range(3)] == ["relay-b"] * 3
    assert [(n.node_id, n.subscribers, n.provinces) for n in plan.nodes] == [("relay-a", 3, ("01",)), ("relay-b", 3, ("02",))]
    assert plan.fits


def test_node_pool_too_small_and_node_already_overfull():
    links = [link(f"c{i}", "01", 200_000) for i in range(5)] + [link("dead", "01", 10)]
    plan = plan_bandwidth(links, nodes=[SfuNode("full", 10, in_use=12), SfuNode("relay", 3, in_use=1)])
    assert [(n.node_id, n.in_use, n.subscribers, n.over_capacity) for n in plan.nodes] == [
        ("full", 12, 0, True),
        ("relay", 1, 2, False),
    ]
    assert sum(1 for c in plan.communes if c.node_id is None) == 4  # 3 without room + the one with no tier
    nodes = [s for s in plan.shortfalls if s.kind == "node"]
    assert nodes == [
        Shortfall("node", "full", 12, 10, "subscribers", "SFU node over capacity"),
        Shortfall("node", "*", 5, 2, "subscribers", "3 subscribers have no SFU node"),
    ]


def test_to_dict_is_json():
    plan = plan_bandwidth([link("a", "01", 200_000), link("b", "01", 1_000)], max_tier="360p", nodes=[SfuNode("n", 10)])
    data = json.loads(json.dumps(plan.to_dict()))
    assert data["fits"] is True
    assert data["totals"] == {"subscribers": 2, "tiers": {"360p": 1, "180p": 1}, "cascade_kbps": 1178, "direct_kbps": 1178}
    assert data["trunks"] == [
        {
            "province_code": "01",
            "capacity_kbps": 1_000_000,
            "subscribers": 2,
            "tiers": ["360p", "180p"],
            "cascade_kbps": 1178,
            "direct_kbps": 1178,
            "nodes": ["n"],
            "over_capacity": False,
        }
    ]
    assert data["nodes"] == [
        {"node_id": "n", "capacity": 10, "in_use": 0, "subscribers": 2, "role": "relay", "provinces": ["01"], "over_capacity": False}
    ]


def test_bad_inputs():
    with pytest.raises(ValueError, match="not in the ladder"):
        plan_bandwidth([link("a", "01", 1000)], max_tier="8k")
    with pytest.raises(ValueError, match="not in the ladder"):
        plan_bandwidth([], max_tier="8k")  # the share is checked where the ladder is built: tests/vcs/test_tiers.py


def test_duplicate_endpoint_is_refused():
    with pytest.raises(ValueError, match="twice"):
        plan_bandwidth([link("a", "01", 1000), link("a", "01", 2000)])


def national_links() -> list[ParticipantLink]:
    from vcs.endpoints import EndpointKind, national_endpoints

    return [ParticipantLink.from_endpoint(e) for e in national_endpoints() if e.kind is EndpointKind.COMMUNE]


def test_national_plan_from_the_registry():
    links = national_links()
    provinces = sorted({link.province_code for link in links})
    plan = plan_bandwidth(links, nodes=[SfuNode(f"relay-{code}", 500, provinces=(code,)) for code in provinces])
    assert len(plan.communes) == 3321
    assert len(plan.trunks) == 34
    # a relay in every province: every trunk carries at most one stream per tier, far less than direct
    assert all(t.cascade_kbps <= sum(DEFAULT_LADDER.cost_kbps(tier) for tier in DEFAULT_LADDER.tiers) for t in plan.trunks)
    assert sum(t.direct_kbps for t in plan.trunks) > 20 * sum(t.cascade_kbps for t in plan.trunks)
    assert all(t.nodes == (f"relay-{t.province_code}",) for t in plan.trunks)
    assert plan.fits
    assert plan.tier_counts()["720p"] > 2_500


def test_national_plan_on_a_pool_too_small_and_far_away():
    links = national_links()
    plan = plan_bandwidth(links, nodes=[SfuNode(f"relay-{i}", 500) for i in range(6)])
    # 6 x 500 = 3,000 slots for 3,321 subscribers
    assert [s.reason for s in plan.shortfalls] == ["321 subscribers have no SFU node"]
    assert [n.subscribers for n in plan.nodes] == [500] * 6
    # relays in no province serve every commune from the centre: one stream per commune on every trunk
    assert all(t.cascade_kbps == t.direct_kbps for t in plan.trunks)
