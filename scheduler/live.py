"""Live state of an occurrence: who is expected, online, joined or failed, and how their links fare.

Agents report into one hash per occurrence; a summary is computed on read,
which at 3,321 entries is a single HGETALL and a pass in Python.

"Joined" means media now: while the SFU node hosting the occurrence's room
reports which peers it sees media from (`keys.sfu_room_media`, rewritten with
each node heartbeat), an agent that says "joined" but whose media the node has
not seen for `MEDIA_FRESH_S` counts as "dropped" (killed, cut off, or back with
dead media; a crashed node's record goes stale the same way). Without such a
record (no node hosts the room) the agents' own reports stand.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta

import redis.asyncio as aioredis

from scheduler.meeting import Meeting, format_utc, parse_utc
from scheduler.roster import Roster
from vcs import keys
from vcs.presence import Presence
from vcs.registry import Registry
from vcs.routing import NodeRouter

__all__ = ["LiveState", "STATES", "reportable_occurrence"]

STATES = ("joining", "joined", "failed", "left")
KEEP = 7 * 24 * 3600  # seconds a finished occurrence's live record is kept
WORST = 10
MEDIA_FRESH_S = 10.0  # seconds without media seen by the node before a joined room shows as dropped
REPORT_MARGIN = timedelta(minutes=30)  # reports are taken this long before the start (readiness at T-15) and after the end


def reportable_occurrence(meeting: Meeting, raw: str, now: datetime) -> str | None:
    """The occurrence key an agent's report may go to, or None: a real occurrence of the meeting, near now.

    Each key is a hash kept for days, so an agent must not be able to make one up.
    """
    try:
        start = parse_utc(raw[:40])
    except ValueError:
        return None
    if not meeting.is_occurrence(start):
        return None
    if not start - REPORT_MARGIN <= now <= start + meeting.duration + REPORT_MARGIN:
        return None
    return format_utc(start)


class LiveState:
    def __init__(self, redis: aioredis.Redis, roster: Roster, registry: Registry, presence: Presence) -> None:
        self.redis = redis
        self.roster = roster
        self.registry = registry
        self.presence = presence

    async def report(self, meeting_id: str, occurrence: str, endpoint_id: str, state: str | None, fields: dict, now: float) -> None:
        """Merge an agent's report into its entry; `state` None keeps the current state (stats only)."""
        key = keys.live_state(meeting_id, occurrence)
        raw = await self.redis.hget(key, endpoint_id)
        entry = json.loads(raw) if raw else {}
        if state is not None:
            if entry.get("state") != state:
                entry["since"] = now  # a fresh "joined" is believed until the node's next heartbeat can confirm it
                if state == "joined":
                    entry["joins"] = entry.get("joins", 0) + 1  # the report counts rejoins the sampler did not see
            entry["state"] = state
            entry.setdefault("first_" + state, now)
        entry.update({k: v for k, v in fields.items() if v is not None})
        entry["at"] = now
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, endpoint_id, json.dumps(entry))
            pipe.expire(key, KEEP)
            pipe.publish(keys.LIVE_CHANGED, json.dumps({"meeting": meeting_id, "occurrence": occurrence}))
            await pipe.execute()

    async def entries(self, meeting_id: str, occurrence: str) -> dict[str, dict]:
        raw = await self.redis.hgetall(keys.live_state(meeting_id, occurrence))
        return {endpoint_id: json.loads(value) for endpoint_id, value in raw.items()}

    async def media_seen(self, meeting_id: str, occurrence: str, now: float) -> set[str] | None:
        """The identities whose media the room's SFU node saw in the last MEDIA_FRESH_S; None: no node reports the room."""
        room = await self.redis.hget(keys.occurrence_room(meeting_id, occurrence), "room")
        heard = await NodeRouter(self.redis).room_media(room) if room else None
        if heard is None:
            return None
        return {identity for identity, at in heard.items() if now - at <= MEDIA_FRESH_S}

    @staticmethod
    def _media_gone(endpoint_id: str, entry: dict, seen: set[str], now: float) -> bool:
        """Said "joined" (longer ago than the node can have noticed) but the node sees no media from it."""
        return entry.get("state") == "joined" and endpoint_id not in seen and now - entry.get("since", 0.0) > MEDIA_FRESH_S

    async def current(self, meeting_id: str, occurrence: str, now: float) -> dict[str, dict]:
        """Every entry with its state as the view shows it: what the agents say, corrected by what the node sees."""
        entries = await self.entries(meeting_id, occurrence)
        seen = await self.media_seen(meeting_id, occurrence, now)
        if seen is None:
            return entries
        return {e: {**v, "state": "dropped"} if self._media_gone(e, v, seen, now) else v for e, v in entries.items()}

    async def summary(self, meeting: Meeting, occurrence: datetime, now: float) -> dict:
        occ = format_utc(occurrence)
        expected = await self.roster.participants(meeting.id)
        entries = await self.current(meeting.id, occ, now)
        online = await self.presence.online_among(list(expected), now)
        endpoints = await self.registry.all()
        states = Counter(entries[e].get("state") for e in expected if e in entries)
        tiers = Counter(entries[e].get("tier", "unknown") for e in expected if entries.get(e, {}).get("state") == "joined")
        provinces: dict[str, Counter] = {}
        for endpoint_id in expected:
            province = endpoints[endpoint_id].province_code if endpoint_id in endpoints else "?"
            counts = provinces.setdefault(province, Counter())
            counts["expected"] += 1
            counts["online"] += endpoint_id in online
            counts["joined"] += entries.get(endpoint_id, {}).get("state") == "joined"
            counts["failed"] += entries.get(endpoint_id, {}).get("state") == "failed"
        worst = sorted(
            (
                {"endpoint_id": e, "name": endpoints[e].name if e in endpoints else e, "loss_pct": v.get("loss_pct", 0), "rtt_ms": v.get("rtt_ms", 0), "tier": v.get("tier")}
                for e, v in entries.items()
                if v.get("state") == "joined" and ("loss_pct" in v or "rtt_ms" in v)
            ),
            key=lambda w: (w["loss_pct"] or 0, w["rtt_ms"] or 0),
            reverse=True,
        )[:WORST]
        host = entries.get(meeting.host_endpoint_id, {})
        return {
            "meeting_id": meeting.id,
            "occurrence": occ,
            "status": meeting.status_of(occurrence).value,
            "expected": len(expected),
            "online": len(expected & online),
            "joined": states["joined"],
            "failed": states["failed"],
            "dropped": states["dropped"],
            "left": states["left"],
            "host": host.get("state"),
            "tiers": dict(tiers),
            "provinces": {code: dict(c) for code, c in sorted(provinces.items())},
            "worst": worst,
            "floor": await self.redis.hget(keys.occurrence_room(meeting.id, occ), "floor") or None,
        }
