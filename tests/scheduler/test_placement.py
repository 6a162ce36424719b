from __future__ import annotations

from scheduler.placement import Placement, Share, place, replace_nodes
from vcs.routing import NodeInfo


def origin(capacity: int = 1000, load: int = 0) -> NodeInfo:
    return NodeInfo("origin", "http://o:8080", "origin", capacity, load)


def relay(node_id: str, capacity: int, *near: str, load: int = 0, draining: bool = False) -> NodeInfo:
    return NodeInfo(node_id, f"http://{node_id}:8090/", "relay", capacity, load, draining, provinces=near)


def placed(placement: Placement) -> dict[str, list[tuple[str, int]]]:
    return {code: [(s.node_id, s.communes) for s in shares] for code, shares in placement.provinces.items()}


def test_no_relay_puts_everyone_on_the_origin():
    p = place({"01": 126, "79": 168}, [origin()])
    assert p.origin == "origin" and p.origin_url == "http://o:8080" and p.relays == {}
    assert placed(p) == {"01": [("origin", 126)], "79": [("origin", 168)]}
    assert p.node_for("x", "79") == ("origin", "http://o:8080")
    assert p.node_for("x", "99") == ("origin", "http://o:8080")  # a province not placed: the origin


def test_no_node_at_all_gives_the_fallback_url():
    p = place({"01": 3}, [], origin_url="http://web:8000")
    assert p.origin is None and p.unplaced == {"01": 3}
    assert p.node_for("x", "01") == (None, "http://web:8000")


def test_relays_near_a_province_come_first():
    nodes = [origin(), relay("anywhere", 500), relay("hanoi", 200, "01"), relay("saigon", 200, "79")]
    p = place({"01": 120, "79": 160, "48": 50}, nodes)
    assert placed(p) == {"01": [("hanoi", 120)], "79": [("saigon", 160)], "48": [("anywhere", 50)]}
    assert p.relays == {"hanoi": "http://hanoi:8090", "saigon": "http://saigon:8090", "anywhere": "http://anywhere:8090"}
    assert p.node_for("00001", "01") == ("hanoi", "http://hanoi:8090")


def test_small_provinces_share_a_relay():
    p = place({"10": 30, "11": 20, "12": 10}, [origin(), relay("a", 100), relay("b", 100)])
    shares = placed(p)
    assert all(len(s) == 1 for s in shares.values())  # none split
    assert sorted(p.communes_on().values()) == [30, 30]  # three provinces on two relays: two share one
    assert p.node_for("any", "12") == (shares["12"][0][0], p.relays[shares["12"][0][0]])


def test_a_big_province_is_split_and_capacity_is_respected():
    nodes = [origin(capacity=100), relay("a", 100, "79"), relay("b", 80, "79", load=30), relay("c", 40)]
    p = place({"79": 300}, nodes)
    assert placed(p) == {"79": [("a", 100), ("b", 50), ("c", 40), ("origin", 100)]}
    assert p.unplaced == {"79": 10}
    ids = [f"c{i:03d}" for i in range(300)]
    p = p.with_members({"79": ids})
    nodes_of = [p.node_for(i, "79")[0] for i in ids]
    # exactly the shares; what nobody has room for goes to the origin, which will refuse it when full
    assert [nodes_of.count(n) for n in ("a", "b", "c")] == [100, 50, 40] and nodes_of.count("origin") == 110


def test_draining_relays_and_a_relay_without_room_are_skipped():
    nodes = [origin(), relay("drain", 100, "01", draining=True), relay("full", 100, "01", load=100), relay("ok", 100)]
    assert placed(place({"01": 10}, nodes)) == {"01": [("ok", 10)]}


def test_the_chosen_origin_is_kept():
    nodes = [origin(), NodeInfo("origin-2", "http://o2", "origin", 5000), relay("r", 10)]
    p = place({"01": 20}, nodes, origin="origin")  # the room already lives on "origin"
    assert p.origin == "origin" and placed(p) == {"01": [("r", 10), ("origin", 10)]}


def test_a_failed_relay_hands_its_shares_on_in_place():
    nodes = [origin(), relay("a", 60, "01"), relay("b", 60, "01"), relay("c", 100, "79"), relay("spare", 100)]
    before = place({"01": 100, "79": 50}, nodes).with_members({"01": [f"h{i:03d}" for i in range(100)]})
    assert placed(before) == {"01": [("a", 60), ("b", 40)], "79": [("c", 50)]}
    after = replace_nodes(before, {"a"}, [n for n in nodes if n.id != "a"])
    # b keeps its 40 and has room for 20 more (not counting a load its communes have not reported yet)
    assert placed(after) == {"01": [("b", 20), ("spare", 40), ("b", 40)], "79": [("c", 50)]}
    assert "a" not in after.relays and after.relays["spare"] == "http://spare:8090"
    moved = [i for i in before.members["01"] if before.node_for(i, "01") != after.node_for(i, "01")]
    assert len(moved) == 60 and all(before.node_for(i, "01")[0] == "a" for i in moved)


def test_round_trip_through_json():
    p = place({"01": 100}, [origin(), relay("a", 60, "01")]).with_members({"01": ["x", "y"]})
    assert Placement.from_json(p.to_json()) == p
    assert p.provinces["01"] == (Share("a", 60), Share("origin", 40))
