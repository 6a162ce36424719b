"""Relays that die or drain while an occurrence is on: their communes go to other nodes.

The scheduler leader runs `check` every few seconds for each occurrence
between warm-up and end. A relay of the placement that no longer heartbeats
(`vcs.routing`: gone after three missed heartbeats) or drains loses its
shares to other relays or the origin (`scheduler.placement.replace_nodes`);
the new placement is stored, each relay newly in it told to pull the room,
and every moved commune sent a `join` with its new join info, so it
re-joins at once instead of waiting for its media to time out.
"""

from __future__ import annotations

import logging
from datetime import datetime

from scheduler.bandwidth_plan import ParticipantLink
from scheduler.lifecycle import lifecycle_times
from scheduler.meeting import Meeting, format_utc
from scheduler.occurrence_nodes import OccurrenceNodes
from scheduler.placement import load_placement, replace_nodes, store_placement
from scheduler.rooms import RoomAssignment
from scheduler.sfu_control import SfuControl, SfuUnavailable
from vcs.routing import NodeInfo

__all__ = ["RelayWatch", "open_relays"]

log = logging.getLogger(__name__)

CHECK_EVERY = 3.0  # seconds between checks: with the nodes' 15 s liveness, communes move well within 30 s


async def open_relays(sfu: SfuControl | None, relays: dict[str, str], origin: RoomAssignment) -> None:
    """Tell each relay to pull the room from the origin; a relay that fails is logged (the watch moves its communes if it dies)."""
    if sfu is None:
        return
    for node_id, url in sorted(relays.items()):
        try:
            await sfu.open_relay_room(url, origin.room, origin.node_url, origin.node_id)
        except SfuUnavailable as exc:
            log.warning("room %s on relay %s: %s", origin.room, node_id, exc)


class RelayWatch:
    def __init__(self, nodes: OccurrenceNodes, sfu: SfuControl | None, notify) -> None:
        self.nodes = nodes
        self.sfu = sfu
        self.notify = notify  # async (redis, endpoint ids, event): scheduler.actions.notify_agents

    async def check(self, meeting: Meeting, occurrence: datetime, live: list[NodeInfo]) -> list[str]:
        """Re-place the communes of relays gone or draining; returns the endpoint ids moved."""
        placement = await load_placement(self.nodes.redis, meeting.id, occurrence)
        if placement is None or not placement.relays:
            return []
        ready = {n.id for n in live if not n.draining}
        gone = {node_id for node_id in placement.relays if node_id not in ready}
        if not gone:
            return []
        times = lifecycle_times(occurrence, meeting.duration)
        moved_to = replace_nodes(placement, gone, live)
        stored = await store_placement(self.nodes.redis, meeting.id, occurrence, times.end, moved_to, only_new=False)
        log.warning("occurrence %s %s: relays %s gone or draining; communes re-placed", meeting.id, format_utc(occurrence), sorted(gone))
        origin = await self.nodes.origin(meeting, occurrence)
        await open_relays(self.sfu, {i: u for i, u in stored.relays.items() if i not in placement.relays}, origin)
        moved = []
        for endpoint in await self.nodes.subscribers(meeting):
            code = ParticipantLink.from_endpoint(endpoint).province_code
            if placement.node_for(endpoint.id, code) != stored.node_for(endpoint.id, code):
                moved.append(endpoint.id)
        if moved:
            occ = format_utc(occurrence)
            event = {"type": "join", "meeting_id": meeting.id, "occurrence": occ, "start": occ, "end": format_utc(times.end)}
            await self.notify(self.nodes.redis, moved, event)
        await self._end_on_draining(origin, [n for n in live if n.id in gone])
        return moved

    async def _end_on_draining(self, origin: RoomAssignment, draining: list[NodeInfo]) -> None:
        """A draining relay still alive gives the room up now its communes are elsewhere."""
        if self.sfu is None:
            return
        for node in draining:
            try:
                await self.sfu.end_room(RoomAssignment(origin.room, node.url.rstrip("/"), node.id))
            except SfuUnavailable as exc:
                log.info("room %s on draining relay %s: %s", origin.room, node.id, exc)
