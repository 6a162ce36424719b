"""The nodes of one occurrence: its placement, computed from the live nodes when first asked, then kept.

The agent schedule (hours before warm-up), the warm-up job and the floor all
ask here, so they agree: the host publishes on the origin (`scheduler.rooms`),
each commune joins the node its province was placed on. The counts placed are
the communes that will subscribe (a starting tier on their downlink), the same
rule the booking plan uses.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from scheduler.bandwidth_plan import ParticipantLink, subscribers_by_province
from scheduler.meeting import Meeting
from scheduler.placement import Placement, load_placement, place, store_placement
from scheduler.rooms import RoomAssignment, assign_room, on_node
from scheduler.roster import Roster
from vcs.endpoints import Endpoint
from vcs.errors import NotFound
from vcs.routing import NodeRouter
from vcs.tiers import DEFAULT_LADDER, Ladder

__all__ = ["OccurrenceNodes"]


@dataclass
class OccurrenceNodes:
    roster: Roster
    public_url: str  # where agents go when no node is live (the web app's own /sfu)
    ladder: Ladder = DEFAULT_LADDER

    @property
    def redis(self):
        return self.roster.store.redis

    async def origin(self, meeting: Meeting, occurrence: datetime) -> RoomAssignment:
        return await assign_room(self.redis, meeting.id, occurrence, occurrence + meeting.duration, self.public_url)

    async def subscribers(self, meeting: Meeting) -> list[Endpoint]:
        ids = await self.roster.participants(meeting.id) - {meeting.host_endpoint_id}
        endpoints = await self.roster.registry.all()
        return [endpoints[i] for i in sorted(ids) if i in endpoints]

    def members(self, meeting: Meeting, endpoints: Iterable[Endpoint]) -> dict[str, list[str]]:
        links = [ParticipantLink.from_endpoint(e) for e in endpoints]
        return subscribers_by_province(links, max_tier=meeting.media.max_tier, ladder=self.ladder)

    async def placement(self, meeting: Meeting, occurrence: datetime, *, warmup: bool = False) -> Placement:
        """The stored placement, else one made now from the live nodes and stored (the first writer wins).

        `warmup`: a placement made while no relay was live (relays that start after the web app) is
        made again if relays are live now; the warm-up's `join` notice gives every agent its new entry.
        """
        stored = await load_placement(self.redis, meeting.id, occurrence)
        if stored is not None and not (warmup and not stored.relays):
            return stored
        origin = await self.origin(meeting, occurrence)
        members = self.members(meeting, await self.subscribers(meeting))
        counts = {code: len(ids) for code, ids in members.items()}
        made = place(counts, await NodeRouter(self.redis).nodes(), origin=origin.node_id, origin_url=origin.node_url)
        if stored is not None and not made.relays:
            return stored
        made = made.with_members(members)
        return await store_placement(self.redis, meeting.id, occurrence, occurrence + meeting.duration, made, only_new=stored is None)

    async def room_for(self, meeting: Meeting, occurrence: datetime, endpoint: Endpoint) -> RoomAssignment:
        """Where `endpoint` joins: the origin for the host, its placed node for a commune."""
        origin = await self.origin(meeting, occurrence)
        if endpoint.id == meeting.host_endpoint_id:
            return origin
        placement = await self.placement(meeting, occurrence)
        node_id, url = placement.node_for(endpoint.id, ParticipantLink.from_endpoint(endpoint).province_code)
        return on_node(origin, node_id, url)

    async def relay_of(self, meeting_id: str, occurrence: datetime, endpoint_id: str) -> str | None:
        """The base URL of the relay a commune is placed on; None when it is on the origin (or nothing is placed)."""
        placement = await load_placement(self.redis, meeting_id, occurrence)
        if placement is None:
            return None
        try:
            endpoint = await self.roster.registry.get(endpoint_id)
        except NotFound:
            return None
        node_id, url = placement.node_for(endpoint_id, ParticipantLink.from_endpoint(endpoint).province_code)
        return url if node_id in placement.relays else None
