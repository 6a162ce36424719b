"""What an agent is told: its upcoming occurrences with everything needed to join them.

Each entry carries media tokens valid from shortly before warm-up to shortly
after the end, so an agent holding its cached schedule can join on its own
when the orchestrator is out of reach at start time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from scheduler.lifecycle import lifecycle_times
from scheduler.meeting import Meeting, format_utc
from scheduler.occurrence_nodes import OccurrenceNodes
from scheduler.rooms import RoomAssignment
from scheduler.roster import Roster
from vcs.endpoints import Endpoint
from vcs.media_tokens import mint_media_token
from vcs.tiers import DEFAULT_LADDER, Ladder

__all__ = ["ScheduleBuilder", "entry_basis", "entry_for"]

HORIZON = timedelta(hours=24)
TOKEN_MARGIN = timedelta(minutes=5)
COMMUNE_PUBLISH_CAP = "180p"  # a commune's own camera goes to the host only, at a low tier


def entry_basis(meeting: Meeting, occurrence: datetime, endpoint: Endpoint, *, ladder: Ladder) -> dict:
    """An entry without its room and media tokens: what the meeting and the endpoint decide.

    The room of an occurrence never changes once assigned and the tokens are
    minted afresh each time, so two equal bases make equal entries (a commune
    moved to another node by a relay's failure is told with a `join`, see
    `scheduler.relay_watch`). Statuses and `updated_at` are not in it: a
    lifecycle step changes no agent's schedule.
    """
    times = lifecycle_times(occurrence, meeting.duration)
    is_host = endpoint.id == meeting.host_endpoint_id
    publish_cap = meeting.media.max_tier if is_host else COMMUNE_PUBLISH_CAP
    if publish_cap not in ladder.names:  # a deployment ladder without it: the lowest is the safe cap
        publish_cap = ladder.names[-1]
    return {
        "meeting_id": meeting.id,
        "occurrence": format_utc(occurrence),
        "title": meeting.title,
        "role": "host" if is_host else "participant",
        "warmup": format_utc(times.warmup),
        "start": format_utc(times.start),
        "end": format_utc(times.end),
        "max_tier": meeting.media.max_tier,
        "publish_tier": ladder.choose(endpoint.link.up_kbps, max_tier=publish_cap),
    }


def entry_for(meeting: Meeting, occurrence: datetime, endpoint: Endpoint, room: RoomAssignment, *, secret_key: str, ladder: Ladder) -> dict:
    times = lifecycle_times(occurrence, meeting.duration)
    valid_from = times.warmup - TOKEN_MARGIN
    ttl = int((times.end + TOKEN_MARGIN - valid_from).total_seconds())

    def token(role: str) -> str:
        host = role == "publish" and endpoint.id == meeting.host_endpoint_id
        return mint_media_token(
            secret_key, room=room.room, identity=endpoint.id, role=role, ttl=ttl, now=valid_from.timestamp(), host=host, node=room.node_id
        )

    return {
        **entry_basis(meeting, occurrence, endpoint, ladder=ladder),
        "room": room.room,
        "whep_url": room.whep_url,
        "whip_url": room.whip_url,
        "subscribe_token": token("subscribe"),
        "publish_token": token("publish"),
    }


@dataclass
class ScheduleBuilder:
    roster: Roster
    secret_key: str
    public_url: str
    ladder: Ladder = DEFAULT_LADDER  # the deployment's (Settings.ladder)

    async def occurrences_for(self, endpoint_id: str, now: datetime) -> list[tuple[Meeting, datetime]]:
        found = []
        for meeting in await self.roster.meetings_of(endpoint_id):
            for start in meeting.occurrences(window_start=now - meeting.duration + timedelta(microseconds=1), window_end=now + HORIZON):
                found.append((meeting, start))
        found.sort(key=lambda pair: pair[1])
        return found

    def signature(self, occurrences: list[tuple[Meeting, datetime]], endpoint: Endpoint) -> str:
        """Equal for two schedules whose entries differ only in freshly minted tokens."""
        return json.dumps([entry_basis(m, s, endpoint, ladder=self.ladder) for m, s in occurrences], ensure_ascii=False)

    def __post_init__(self) -> None:
        self.nodes = OccurrenceNodes(self.roster, self.public_url, self.ladder)

    async def room(self, meeting: Meeting, occurrence: datetime) -> RoomAssignment:
        """The occurrence's room on its origin (where the host publishes)."""
        return await self.nodes.origin(meeting, occurrence)

    async def entry(self, meeting: Meeting, occurrence: datetime, endpoint: Endpoint, room: RoomAssignment | None = None) -> dict:
        """`room`: the origin's, already looked up; a commune's entry points at its placed node."""
        if room is None or endpoint.id != meeting.host_endpoint_id:
            room = await self.nodes.room_for(meeting, occurrence, endpoint)
        return entry_for(meeting, occurrence, endpoint, room, secret_key=self.secret_key, ladder=self.ladder)

    async def schedule(self, endpoint: Endpoint, now: datetime) -> list[dict]:
        return [await self.entry(m, start, endpoint) for m, start in await self.occurrences_for(endpoint.id, now)]
