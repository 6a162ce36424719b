"""Will a meeting fit the network? A plan over every commune link, province trunk and SFU node.

Computed at booking time from link profiles, before any media flows, so an
organizer sees which communes will get audio only and which trunk or node is
short while the meeting can still be changed. The SFU adapts tiers live; this
is the expected starting point, not a promise.

A commune starts on the tier `vcs.tiers.Ladder.start` gives its downlink (no
better than the meeting's `max_tier`; the lowest tier beyond the VCS share
when it fits the whole link, else "none"), the same fit the SFU and the
agents' schedules use; its kbps is that tier's cost (video plus audio).

Communes go to nodes by `scheduler.placement.place`, the function the warm-up
uses, over the same nodes: a province's trunk carries one stream per tier in
use on each relay that sits in the province (`NodeInfo.provinces`), and one
stream per commune served from the centre (the origin, a relay elsewhere, or
no node at all). With no node given (none registered yet), the design's
figure: a relay in every province. "direct" is what the trunk would carry with
one stream per commune, reported to show what the cascade saves.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from scheduler.placement import Placement, place
from vcs.routing import NodeInfo
from vcs.tiers import DEFAULT_LADDER, NO_TIER, Ladder, TierSpec

__all__ = [
    "DEFAULT_TRUNK_KBPS",
    "NO_TIER",
    "BandwidthPlan",
    "CommunePlan",
    "NodeLoad",
    "ParticipantLink",
    "SfuNode",
    "Shortfall",
    "TrunkLoad",
    "plan_bandwidth",
    "province_counts",
    "subscribers_by_province",
]

DEFAULT_TRUNK_KBPS = 1_000_000  # 1 Gbps per province trunk


def _province(code: int | str) -> str:
    return f"{code:02d}" if isinstance(code, int) else str(code)  # the registry spells it "01"


@dataclass(frozen=True)
class ParticipantLink:
    endpoint_id: str
    province_code: str
    downlink_kbps: int
    uplink_kbps: int

    @classmethod
    def from_endpoint(cls, endpoint: Any) -> ParticipantLink:
        """From a `vcs.endpoints.Endpoint` (id, province_code, link.down_kbps, link.up_kbps)."""
        return cls(endpoint.id, _province(endpoint.province_code), endpoint.link.down_kbps, endpoint.link.up_kbps)


@dataclass(frozen=True)
class SfuNode:
    id: str
    capacity: int  # subscribers
    in_use: int = 0  # subscribers of other meetings at the same time
    role: str = "relay"
    provinces: tuple[str, ...] = ()  # province codes it sits near
    url: str = ""

    def as_live(self) -> NodeInfo:
        """The node as `place` sees it: its spare room is what other meetings leave."""
        return NodeInfo(self.id, self.url, self.role, self.capacity, self.in_use, provinces=self.provinces)


@dataclass(frozen=True)
class CommunePlan:
    endpoint_id: str
    province_code: str
    tier: str  # a ladder tier name, or NO_TIER
    kbps: int
    within_share: bool  # False when audio was given beyond the VCS share
    floor_tier: str  # what it could send when given the floor, by the same rule on its uplink
    node_id: str | None  # None when no SFU node had room (or none was given)


@dataclass(frozen=True)
class TrunkLoad:
    province_code: str
    capacity_kbps: int
    subscribers: int
    tiers: tuple[str, ...]
    cascade_kbps: int
    direct_kbps: int
    nodes: tuple[str, ...] = ()  # the nodes serving its communes (none when no node is known)

    @property
    def over_capacity(self) -> bool:
        return self.cascade_kbps > self.capacity_kbps


@dataclass(frozen=True)
class NodeLoad:
    node_id: str
    capacity: int
    in_use: int
    subscribers: int  # assigned by this plan
    role: str = "relay"
    provinces: tuple[str, ...] = ()  # the provinces this plan puts on it

    @property
    def over_capacity(self) -> bool:
        return self.in_use + self.subscribers > self.capacity


@dataclass(frozen=True)
class Shortfall:
    kind: str  # "link" | "trunk" | "node"
    subject: str  # endpoint id, province code, or node id ("*" for the whole SFU pool)
    need: int
    have: int
    unit: str  # "kbps" | "subscribers"
    reason: str


@dataclass(frozen=True)
class BandwidthPlan:
    max_tier: str
    vcs_share: float
    communes: tuple[CommunePlan, ...]
    trunks: tuple[TrunkLoad, ...]
    nodes: tuple[NodeLoad, ...]
    shortfalls: tuple[Shortfall, ...]

    @property
    def fits(self) -> bool:
        return not self.shortfalls

    def tier_counts(self) -> dict[str, int]:
        return dict(Counter(c.tier for c in self.communes))

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_tier": self.max_tier,
            "vcs_share": self.vcs_share,
            "fits": self.fits,
            "totals": {
                "subscribers": sum(1 for c in self.communes if c.tier != NO_TIER),
                "tiers": self.tier_counts(),
                "cascade_kbps": sum(t.cascade_kbps for t in self.trunks),
                "direct_kbps": sum(t.direct_kbps for t in self.trunks),
            },
            "communes": [asdict(c) for c in self.communes],
            "trunks": [
                {**asdict(t), "tiers": list(t.tiers), "nodes": list(t.nodes), "over_capacity": t.over_capacity} for t in self.trunks
            ],
            "nodes": [{**asdict(n), "provinces": list(n.provinces), "over_capacity": n.over_capacity} for n in self.nodes],
            "shortfalls": [asdict(s) for s in self.shortfalls],
        }


def subscribers_by_province(links: Iterable[ParticipantLink], *, max_tier: str, ladder: Ladder = DEFAULT_LADDER) -> dict[str, list[str]]:
    """The subscribers' endpoint ids per province: the communes whose downlink fits a tier (the others do not join)."""
    found: dict[str, list[str]] = defaultdict(list)
    for link in links:
        if ladder.start(link.downlink_kbps, max_tier=max_tier).tier is not None:
            found[link.province_code].append(link.endpoint_id)
    return dict(found)


def province_counts(links: Iterable[ParticipantLink], *, max_tier: str, ladder: Ladder = DEFAULT_LADDER) -> dict[str, int]:
    return {code: len(ids) for code, ids in subscribers_by_province(links, max_tier=max_tier, ladder=ladder).items()}


def plan_bandwidth(
    links: Iterable[ParticipantLink],
    *,
    max_tier: str = "720p",
    ladder: Ladder = DEFAULT_LADDER,
    trunk_capacity_kbps: Mapping[int | str, int] | None = None,
    default_trunk_kbps: int = DEFAULT_TRUNK_KBPS,
    nodes: Sequence[SfuNode] = (),
    origin: str | None = None,
    placement: Placement | None = None,
) -> BandwidthPlan:
    """Plan for the subscribers in `links` (leave the host out: it publishes).

    Communes are placed on `nodes` by `place` (`origin`: the origin's node id
    when already chosen), unless `placement` is the one already made; with no
    nodes, node capacity is not checked.
    """
    ladder.index(max_tier)  # ValueError when the ladder lacks it, even with no links
    lowest = ladder.tiers[-1]
    capacities = {_province(k): v for k, v in (trunk_capacity_kbps or {}).items()}
    ordered = sorted(links, key=lambda link: (link.province_code, link.endpoint_id))
    ids = [link.endpoint_id for link in ordered]
    if len(set(ids)) != len(ids):
        raise ValueError("links name an endpoint twice")
    if placement is None:
        placement = place(province_counts(ordered, max_tier=max_tier, ladder=ladder), [n.as_live() for n in nodes], origin=origin)
        placement = placement.with_members(subscribers_by_province(ordered, max_tier=max_tier, ladder=ladder))
    return _plan(ordered, placement, nodes, max_tier, ladder, lowest, capacities, default_trunk_kbps)


def _plan(
    ordered: list[ParticipantLink], placement: Placement, nodes: Sequence[SfuNode], max_tier: str, ladder: Ladder,
    lowest: TierSpec, capacities: dict[str, int], default_trunk_kbps: int,
) -> BandwidthPlan:  # fmt: skip
    near = {n.id: set(n.provinces) for n in nodes if n.role == "relay"}
    shortfalls: list[Shortfall] = []
    communes: list[CommunePlan] = []
    by_province: dict[str, list[tuple[str | None, TierSpec]]] = defaultdict(list)
    for link in ordered:
        start = ladder.start(link.downlink_kbps, max_tier=max_tier)
        tier = start.tier
        floor = ladder.start(link.uplink_kbps, max_tier=max_tier)
        node_id = None
        if tier is None:
            reason = f"downlink below {lowest.name}"
            shortfalls.append(Shortfall("link", link.endpoint_id, ladder.cost_kbps(lowest), link.downlink_kbps, "kbps", reason))
        else:
            node_id = placement.share_of(link.endpoint_id, link.province_code) or None
            by_province[link.province_code].append((node_id, tier))
        communes.append(
            CommunePlan(
                link.endpoint_id,
                link.province_code,
                start.name,
                ladder.cost_kbps(tier) if tier else 0,
                start.within_share,
                floor.name,
                node_id,
            )
        )

    trunks = []
    for code in sorted({link.province_code for link in ordered}):
        placed = by_province.get(code, [])
        tiers = [t for _, t in placed]
        distinct = sorted(set(tiers), key=lambda t: t.video_kbps, reverse=True)
        if nodes:  # per relay in the province, one stream per tier; from the centre, one per commune
            in_province = {(n, t) for n, t in placed if n is not None and code in near.get(n, ())}
            from_centre = [t for n, t in placed if n is None or code not in near.get(n, ())]
            cascade = sum(ladder.cost_kbps(t) for _, t in in_province) + sum(ladder.cost_kbps(t) for t in from_centre)
        else:
            cascade = sum(ladder.cost_kbps(t) for t in distinct)
        load = TrunkLoad(
            province_code=code,
            capacity_kbps=capacities.get(code, default_trunk_kbps),
            subscribers=len(tiers),
            tiers=tuple(t.name for t in distinct),
            cascade_kbps=cascade,
            direct_kbps=sum(ladder.cost_kbps(t) for t in tiers),
            nodes=tuple(sorted({n for n, _ in placed if n is not None})),
        )
        trunks.append(load)
        if load.over_capacity:
            shortfalls.append(
                Shortfall("trunk", code, load.cascade_kbps, load.capacity_kbps, "kbps", "province trunk over capacity")
            )

    assigned = placement.communes_on()
    node_loads = tuple(
        NodeLoad(n.id, n.capacity, n.in_use, assigned.get(n.id, 0), n.role, tuple(placement.provinces_of(n.id))) for n in nodes
    )
    for load in node_loads:
        if load.over_capacity:  # only when other meetings already overfill it
            need = load.in_use + load.subscribers
            shortfalls.append(Shortfall("node", load.node_id, need, load.capacity, "subscribers", "SFU node over capacity"))
    unplaced = sum(1 for c in communes if c.tier != NO_TIER and c.node_id is None)
    if nodes and unplaced:
        spare = sum(max(0, n.capacity - n.in_use) for n in nodes)
        shortfalls.append(
            Shortfall("node", "*", spare + unplaced, spare, "subscribers", f"{unplaced} subscribers have no SFU node")
        )
    return BandwidthPlan(max_tier, ladder.vcs_share, tuple(communes), tuple(trunks), node_loads, tuple(shortfalls))
