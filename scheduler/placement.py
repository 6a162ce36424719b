"""Which SFU node serves which communes of an occurrence: the origin and its province relays.

`place` is pure: from the communes per province and the live nodes it gives
each province one or more shares (node, communes). Passes, each over the
provinces largest first: relays near the province (`NodeInfo.provinces`),
then relays that sit anywhere, then relays near other provinces, then the
origin; within a pass a province goes whole to the relay with the most spare
room that fits it, else it is split over that pass's relays, most spare
first. No relay's capacity is exceeded; what no node has room for is
`unplaced` (the plan reports it, and those communes still go to the origin,
which refuses them when full). With no relay, the origin serves everyone.

A split province's communes are spread over its shares in id order
(`Placement.with_members`, stored with it), a commune not listed by a stable
hash of its id, so `Placement.node_for` gives the same node to every caller
(the agent schedule, the plan, the floor).
When a relay fails, `replace_nodes` hands its shares to other nodes in the
same positions, so no commune on a surviving node moves.

The placement of an occurrence is stored once, when first asked (a schedule
is built hours before warm-up), and changed only on failure
(`scheduler.relay_watch`), so an agent's cached join info stays right.
"""

from __future__ import annotations

import functools
import json
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import redis.asyncio as aioredis

from scheduler.meeting import format_utc
from vcs import keys
from vcs.routing import MostSpareSelector, NodeInfo

__all__ = ["KEEP_AFTER_END", "Placement", "Share", "load_placement", "place", "replace_nodes", "store_placement"]

KEEP_AFTER_END = 24 * 3600  # seconds the placement outlives the occurrence, for the record


@dataclass(frozen=True)
class Share:
    node_id: str
    communes: int


@dataclass(frozen=True)
class Placement:
    origin: str | None  # the origin's node id; None when no node was live (the fallback URL serves)
    origin_url: str
    relays: Mapping[str, str] = field(default_factory=dict)  # relay node id => base URL, of relays given a share
    provinces: Mapping[str, tuple[Share, ...]] = field(default_factory=dict)
    unplaced: Mapping[str, int] = field(default_factory=dict)  # province => communes no node had room for
    # province => its communes in share order, for a province split over nodes (or partly unplaced)
    members: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def with_members(self, by_province: Mapping[str, Iterable[str]]) -> Placement:
        """The placement that splits each split province's communes exactly by its shares, in id order."""
        split = {code for code, shares in self.provinces.items() if len(shares) > 1} | set(self.unplaced)
        members = {code: tuple(sorted(ids)) for code, ids in by_province.items() if code in split}
        return replace(self, members={**self.members, **members})

    def url_of(self, node_id: str | None) -> str:
        return self.relays.get(node_id, self.origin_url) if node_id else self.origin_url

    def share_of(self, endpoint_id: str, province_code: str) -> str | None:
        """The node id of the share a commune falls in; None when it is unplaced (or "" placed on the origin over capacity)."""
        shares = self.provinces.get(province_code, ())
        total = sum(s.communes for s in shares) + self.unplaced.get(province_code, 0)
        members = self.members.get(province_code, ())
        if total:
            bucket = members.index(endpoint_id) if endpoint_id in members else zlib.crc32(endpoint_id.encode()) % total
            for share in shares:
                if bucket < share.communes:
                    return share.node_id
                bucket -= share.communes
        return None

    def node_for(self, endpoint_id: str, province_code: str) -> tuple[str | None, str]:
        """(node id, base URL) of the node a commune joins; the origin for an unknown or unplaced one."""
        node_id = self.share_of(endpoint_id, province_code) or self.origin
        return node_id, self.url_of(node_id)

    def communes_on(self) -> dict[str, int]:
        """Communes placed per node id."""
        count: dict[str, int] = {}
        for shares in self.provinces.values():
            for share in shares:
                if share.node_id:
                        count[share.node_id] = count.get(share.node_id, 0) + share.communes
        return count

    def provinces_of(self, node_id: str) -> list[str]:
        return sorted(code for code, shares in self.provinces.items() if any(s.node_id == node_id for s in shares))

    def to_json(self) -> str:
        return json.dumps({
            "origin": self.origin, "origin_url": self.origin_url, "relays": dict(self.relays),
            "provinces": {code: [[s.node_id, s.communes] for s in shares] for code, shares in self.provinces.items()},
            "unplaced": dict(self.unplaced), "members": {code: list(ids) for code, ids in self.members.items()},
        })  # fmt: skip

    @classmethod
    def from_json(cls, text: str) -> Placement:
        data = json.loads(text)
        return cls(
            origin=data["origin"],
            origin_url=data["origin_url"],
            relays=data["relays"],
            provinces={code: tuple(Share(n, c) for n, c in shares) for code, shares in data["provinces"].items()},
            unplaced=data["unplaced"],
            members={code: tuple(ids) for code, ids in data.get("members", {}).items()},
        )


def place(provinces: Mapping[str, int], nodes: Sequence[NodeInfo], *, origin: str | None = None, origin_url: str = "") -> Placement:
    """Place every province's communes on the live, non-draining `nodes`.

    `origin`: the node id of the occurrence's origin when already chosen (`scheduler.rooms`),
    else the first origin by `MostSpareSelector`; `origin_url` when no node is live.
    """
    ready = [n for n in nodes if not n.draining]
    origin_node = next((n for n in nodes if n.id == origin), None) if origin else None
    if origin_node is None and origin is None:
        origin_node = next((n for n in MostSpareSelector().order(ready) if n.role == "origin"), None)
    origin_id = origin_node.id if origin_node else origin
    relays = [n for n in ready if n.role == "relay" and n.id != origin_id]
    spare = {n.id: n.spare for n in relays}
    left = {code: count for code, count in provinces.items() if count > 0}
    given: dict[str, list[Share]] = {code: [] for code in left}

    def give(code: str, node_id: str, count: int) -> None:
        spare[node_id] = spare.get(node_id, 0) - count
        left[code] -= count
        given[code].append(Share(node_id, count))

    passes = [
        lambda code: [n for n in relays if n.near(code)],
        lambda code: [n for n in relays if not n.provinces],
        lambda code: [n for n in relays if n.provinces and not n.near(code)],
    ]
    for candidates_of in passes:
        for code in sorted(left, key=lambda c: (-left[c], c)):
            candidates = sorted(candidates_of(code), key=lambda n: (-spare[n.id], n.id))
            whole = [n for n in candidates if spare[n.id] >= left[code]]
            for node in whole[:1] or candidates:
                if left[code] <= 0 or spare[node.id] <= 0:
                    break
                give(code, node.id, min(spare[node.id], left[code]))
    if origin_node is not None:
        spare[origin_node.id] = origin_node.spare
        for code in sorted(left, key=lambda c: (-left[c], c)):
            if left[code] > 0 and spare[origin_node.id] > 0:
                give(code, origin_node.id, min(spare[origin_node.id], left[code]))
    used = {s.node_id for shares in given.values() for s in shares}
    return Placement(
        origin=origin_id,
        origin_url=(origin_node.url if origin_node else origin_url).rstrip("/"),
        relays={n.id: n.url.rstrip("/") for n in relays if n.id in used},
        provinces={code: tuple(shares) for code, shares in sorted(given.items()) if shares},
        unplaced={code: count for code, count in sorted(left.items()) if count > 0},
    )


def replace_nodes(current: Placement, gone: set[str], nodes: Sequence[NodeInfo]) -> Placement:
    """The placement with the shares of the `gone` relays given to other nodes, each in its place.

    Survivors keep their communes: their spare counts what this placement
    already gave them, even before those communes have joined.
    """
    placed = current.communes_on()
    others = [
        replace(n, load=max(n.load, placed.get(n.id, 0)))
        for n in nodes if n.id not in gone
    ]  # fmt: skip
    orphans = {code: sum(s.communes for s in shares if s.node_id in gone) for code, shares in current.provinces.items()}
    fresh = place(orphans, others, origin=current.origin, origin_url=current.origin_url)
    provinces: dict[str, tuple[Share, ...]] = {}
    for code, shares in current.provinces.items():
        spread = list(fresh.provinces.get(code, ()))
        short = fresh.unplaced.get(code, 0)
        if short:  # no node has room for them: the origin (beyond its capacity) rather than a dead relay
            spread.append(Share(current.origin or "", short))
        out: list[Share] = []
        for share in shares:
            out.extend(spread if share.node_id in gone else [share])
            if share.node_id in gone:
                spread = []
        provinces[code] = tuple(out)
    relays = {i: url for i, url in {**current.relays, **fresh.relays}.items() if i not in gone}
    return Placement(current.origin, current.origin_url, relays, provinces, current.unplaced, current.members)


async def store_placement(
    redis: aioredis.Redis, meeting_id: str, occurrence: datetime, end: datetime, placement: Placement, *, only_new: bool
) -> Placement:
    """Write the occurrence's placement (`only_new`: unless one is stored) and return the one stored."""
    key = keys.occurrence_placement(meeting_id, format_utc(occurrence))
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(key, placement.to_json(), nx=only_new)
        pipe.expireat(key, int(end.timestamp()) + KEEP_AFTER_END)
        pipe.get(key)
        *_, stored = await pipe.execute()
    return Placement.from_json(stored)


async def load_placement(redis: aioredis.Redis, meeting_id: str, occurrence: datetime) -> Placement | None:
    stored = await redis.get(keys.occurrence_placement(meeting_id, format_utc(occurrence)))
    return _parsed(stored) if stored else None


@functools.lru_cache(maxsize=64)
def _parsed(text: str) -> Placement:
    """Parsed once per stored text: a refresh of thousands of agents' schedules reads the same placement."""
    return Placement.from_json(text)
