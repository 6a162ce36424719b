"""Attendance and quality report of an occurrence: collected while it runs, kept once it ends.

While an occurrence is live, the scheduler leader samples it every
`Settings.report_sample_s` (`sample_live`): for each expected room and the
host, the state the live view shows (`LiveState.current`: the agents' reports
corrected by what the SFU node sees) goes into a tally kept in Redis
(`keys.report_tally`): seconds present and on each tier, drops (joined, then
not) and rejoins, worst loss and RTT, and seconds holding the floor (the
occurrence room's `floor` field, written by `scheduler.floor`). A reconnect
quicker than a sample still counts, from the agent's own "joined" count.

The end step (`scheduler.actions`) takes a last sample and writes the report
(`keys.report`), indexed by its end in `keys.REPORTS` so the retention job
(`purge`) deletes it after `Settings.retention_days`. Everything lives in
Redis, so a report survives restarts. Asked before the end, a report is
computed from the tally so far and marked `"final": false`.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis

from scheduler.live import LiveState
from scheduler.meeting import Meeting, OccurrenceStatus, format_utc
from scheduler.roster import Roster
from scheduler.store import MeetingStore
from vcs import keys
from vcs.divisions import provinces
from vcs.registry import Registry

__all__ = ["Reports", "report_rows"]

log = logging.getLogger(__name__)

MAX_GAP_S = 60.0  # a gap between samples longer than this (a failover) is not counted as presence
TALLY_KEEP_S = 2 * 24 * 3600  # the tally outlives the occurrence long enough for a late end step


def _blank() -> dict:
    return {"first_join": None, "last_seen": None, "present_s": 0.0, "tiers": {}, "drops": 0, "rejoins": 0,
            "joins": 0, "worst_loss_pct": None, "worst_rtt_ms": None, "floor_s": 0.0, "joined": False}  # fmt: skip


def _worst(current: float | None, value: object) -> float | None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return current
    return value if current is None else max(current, value)


def tally_sample(tally: dict, entry: dict | None, dt: float, now: float, *, holds_floor: bool) -> dict:
    """One room's tally after one sample: `entry` its live entry (None: never reported), `dt` seconds since the last."""
    entry = entry or {}
    joined = entry.get("state") == "joined"
    if joined:
        if tally["first_join"] is None:
            tally["first_join"] = entry.get("first_joined", now)
        elif not tally["joined"]:
            tally["rejoins"] += 1
        if tally["joined"]:  # present through the whole interval
            tally["present_s"] += dt
            tier = entry.get("tier") or "unknown"
            tally["tiers"][tier] = tally["tiers"].get(tier, 0.0) + dt
            if holds_floor:
                tally["floor_s"] += dt
        tally["last_seen"] = now
        tally["worst_loss_pct"] = _worst(tally["worst_loss_pct"], entry.get("loss_pct"))
        tally["worst_rtt_ms"] = _worst(tally["worst_rtt_ms"], entry.get("rtt_ms"))
    elif tally["joined"]:
        tally["drops"] += 1
    # the agent joined again between two samples: a drop and a rejoin the samples did not see
    unseen = entry.get("joins", 0) - 1 - tally["rejoins"]
    if unseen > 0:
        tally["drops"] += unseen
        tally["rejoins"] += unseen
    tally["joined"] = joined
    return tally


class Reports:
    def __init__(
        self, redis: aioredis.Redis, store: MeetingStore, roster: Roster, registry: Registry, live: LiveState,
        *, retention: timedelta = timedelta(days=365), sample_s: float = 5.0,
    ) -> None:  # fmt: skip
        self.redis = redis
        self.store = store
        self.roster = roster
        self.registry = registry
        self.live = live
        self.retention = retention
        self.sample_s = sample_s

    # collecting ----------------------------------------------------------------

    async def sample_live(self, now: datetime) -> int:
        """Sample every occurrence under way at `now`; returns how many."""
        count = 0
        for meeting in (await self.store.all()).values():
            for start in meeting.occurrences(window_start=now - meeting.duration + timedelta(microseconds=1), window_end=now, limit=2):
                if start <= now < start + meeting.duration and meeting.status_of(start) is not OccurrenceStatus.CANCELLED:
                    await self.sample(meeting, start, now.timestamp())
                    count += 1
        return count

    async def sample(self, meeting: Meeting, occurrence: datetime, now: float) -> None:
        occ = format_utc(occurrence)
        key = keys.report_tally(meeting.id, occ)
        rooms = await self.roster.participants(meeting.id) | {meeting.host_endpoint_id}
        stored = await self.redis.hgetall(key)
        last = float(stored.pop(keys.REPORT_SAMPLED, 0) or 0)
        if last and now <= last:
            return  # sampled already (a late end step after a sample at a later time)
        dt = min(now - last, MAX_GAP_S) if last else 0.0
        entries = await self.live.current(meeting.id, occ, now)
        floor = await self.redis.hget(keys.occurrence_room(meeting.id, occ), "floor") or None
        speaker = floor or meeting.host_endpoint_id
        updated: dict[str, str] = {keys.REPORT_SAMPLED: repr(now)}
        for endpoint_id in rooms:
            entry = entries.get(endpoint_id)
            if endpoint_id not in stored and entry is None:
                continue  # nothing to say yet: the report shows it absent
            tally = json.loads(stored[endpoint_id]) if endpoint_id in stored else _blank()
            updated[endpoint_id] = json.dumps(tally_sample(tally, entry, dt, now, holds_floor=endpoint_id == speaker and floor is not None))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=updated)
            pipe.expire(key, TALLY_KEEP_S + int(meeting.duration.total_seconds()))
            await pipe.execute()

    # the report ----------------------------------------------------------------

    async def finalize(self, meeting: Meeting, occurrence: datetime, now: datetime) -> dict:
        """Take the last sample (at the end, at the latest) and keep the report; a second call returns the kept one."""
        occ = format_utc(occurrence)
        kept = await self.redis.get(keys.report(meeting.id, occ))
        if kept:
            return json.loads(kept)
        end = occurrence + meeting.duration
        await self.sample(meeting, occurrence, min(now, end).timestamp())
        report = await self.build(meeting, occurrence, final=True)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.report(meeting.id, occ), json.dumps(report, ensure_ascii=False), nx=True)
            pipe.zadd(keys.REPORTS, {f"{meeting.id}/{occ}": end.timestamp()})
            await pipe.execute()
        return report

    async def get(self, meeting: Meeting, occurrence: datetime, now: datetime) -> dict:
        """The kept report, or (not ended yet, or its end step not run) the figures so far, marked partial."""
        kept = await self.redis.get(keys.report(meeting.id, format_utc(occurrence)))
        if kept:
            return json.loads(kept)
        return await self.build(meeting, occurrence, final=False, now=now)

    async def build(self, meeting: Meeting, occurrence: datetime, *, final: bool, now: datetime | None = None) -> dict:
        occ = format_utc(occurrence)
        end = occurrence + meeting.duration
        stored = await self.redis.hgetall(keys.report_tally(meeting.id, occ))
        sampled = float(stored.pop(keys.REPORT_SAMPLED, 0) or 0)
        participants = await self.roster.participants(meeting.id)
        endpoints = await self.registry.all()
        names = {p.code: p.name for p in provinces()}
        rooms = []
        for endpoint_id in sorted(participants | {meeting.host_endpoint_id}):
            tally = json.loads(stored[endpoint_id]) if endpoint_id in stored else _blank()
            endpoint = endpoints.get(endpoint_id)
            province = endpoint.province_code if endpoint else None
            last_leave = tally["last_seen"]
            if final and tally["joined"]:
                last_leave = min(sampled, end.timestamp())  # still there when the meeting ended
            rooms.append({
                "endpoint_id": endpoint_id,
                "name": endpoint.name if endpoint else endpoint_id,
                "province": province,
                "province_name": names.get(province or "", ""),
                "host": endpoint_id == meeting.host_endpoint_id,
                "attended": tally["first_join"] is not None,
                "first_join": _at(tally["first_join"]),
                "last_leave": None if tally["joined"] and not final else _at(last_leave),
                "minutes_present": round(tally["present_s"] / 60, 1),
                "drops": tally["drops"],
                "rejoins": tally["rejoins"],
                "tier_minutes": {t: round(s / 60, 1) for t, s in sorted(tally["tiers"].items())},
                "worst_loss_pct": tally["worst_loss_pct"],
                "worst_rtt_ms": tally["worst_rtt_ms"],
                "had_floor": tally["floor_s"] > 0,
                "floor_minutes": round(tally["floor_s"] / 60, 1),
            })  # fmt: skip
        communes = [r for r in rooms if not r["host"]]
        by_province: dict[str, list[dict]] = {}
        for row in communes:
            by_province.setdefault(row["province"] or "?", []).append(row)
        return {
            "meeting_id": meeting.id,
            "title": meeting.title,
            "occurrence": occ,
            "start": occ,
            "end": format_utc(end),
            "final": final,
            "as_of": _at(sampled) if sampled else None,
            "generated_at": format_utc(now or datetime.now(UTC)),
            "sample_s": self.sample_s,
            "rooms": rooms,
            "provinces": [{"code": code, "name": names.get(code, ""), **_totals(rows)} for code, rows in sorted(by_province.items())],
            "country": _totals(communes),
        }

    # retention -----------------------------------------------------------------

    async def purge(self, now: datetime) -> int:
        """Delete the reports of occurrences that ended longer than the retention ago; returns how many."""
        cutoff = (now - self.retention).timestamp()
        old = await self.redis.zrangebyscore(keys.REPORTS, "-inf", f"({cutoff}")
        if not old:
            return 0
        async with self.redis.pipeline(transaction=True) as pipe:
            for member in old:
                meeting_id, _, occ = member.partition("/")
                pipe.delete(keys.report(meeting_id, occ), keys.report_tally(meeting_id, occ))
            pipe.zrem(keys.REPORTS, *old)
            await pipe.execute()
        log.info("deleted %d report(s) past retention", len(old))
        return len(old)


def _at(timestamp: float | None) -> str | None:
    return None if timestamp is None else format_utc(datetime.fromtimestamp(round(timestamp), UTC))


def _totals(rows: list[dict]) -> dict:
    return {
        "expected": len(rows),
        "attended": sum(r["attended"] for r in rows),
        "minutes_present": round(sum(r["minutes_present"] for r in rows), 1),
        "drops": sum(r["drops"] for r in rows),
        "rejoins": sum(r["rejoins"] for r in rows),
        "floor_minutes": round(sum(r["floor_minutes"] for r in rows), 1),
    }


CSV_COLUMNS = ("endpoint_id", "name", "province", "province_name", "attended", "first_join", "last_leave", "minutes_present",
               "drops", "rejoins", "tier_minutes", "worst_loss_pct", "worst_rtt_ms", "had_floor", "floor_minutes")  # fmt: skip


def report_rows(report: dict) -> list[list[str]]:
    """The report's rooms as CSV rows, header first (tiers as `720p=12.5;360p=3.0`)."""
    rows = [list(CSV_COLUMNS)]
    for room in report["rooms"]:
        values = {**room, "tier_minutes": ";".join(f"{t}={m}" for t, m in room["tier_minutes"].items())}
        rows.append(["" if values[c] is None else str(values[c]) for c in CSV_COLUMNS])
    return rows
