"""Readiness: media tests of the rooms of an occurrence or a drill, and the board they make (docs/readiness.md).

A *subject* is what tests are about: an occurrence (tested at T-15 and on
demand) or a drill (a test session now, for a province or the country, no
host). Each subject has a test room on an SFU node, ``test:<subject>``,
whose program is the node's test pattern (``sfu.test_room``). For an
occurrence it is the node its rooms use; a drill picks one like a meeting.

The orchestrator sends each agent a personal *test order* (test room URLs,
media tokens for it, the planned tier, how long to measure); the agent
answers with a ``test_result``, kept per subject and endpoint. The board
is computed on read: every expected room with presence, its last result and
its verdict, worst first, and the commune's IT contact.

Verdicts: ``failed`` (the test could not run), ``at_risk`` (tier below plan,
loss over 2 %, camera or microphone problem), ``ready``, ``not_tested``.
"""

from __future__ import annotations

import json
import secrets
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import redis.asyncio as aioredis

from scheduler.agent_schedule import ScheduleBuilder
from scheduler.lifecycle import lifecycle_times
from scheduler.meeting import Meeting, format_utc, parse_utc
from scheduler.roster import Roster
from scheduler.test_pacing import TestPacer
from vcs import audit, keys
from vcs.endpoints import Endpoint, EndpointKind
from vcs.errors import BadRequest, FieldError, NotFound, ValidationFailed
from vcs.media_tokens import mint_media_token
from vcs.presence import Presence
from vcs.registry import Registry
from vcs.roles import Principal, Role
from vcs.routing import NodeRouter
from vcs.tiers import NO_TIER, Ladder

__all__ = ["RUNNERS", "STATUSES", "Readiness", "Subject", "verdict"]

STATUSES = ("failed", "at_risk", "not_tested", "ready")  # worst first
RUNNERS = (Role.ADMIN, Role.OPS, Role.ORGANIZER)  # who may start tests and drills; viewers only read
MAX_LOSS_PCT = 2.0
TOKEN_TTL = 15 * 60  # seconds a test order's media tokens are valid
KEEP = 30 * 24 * 3600  # seconds results and drill records are kept
TEST_MARGIN_S = 20  # connecting and reporting, on top of the measured seconds
DRILL_REPORT_WINDOW = 3600  # seconds after its start a drill takes results


@dataclass(frozen=True)
class Subject:
    """An occurrence (meeting id and UTC start) or a drill (its id)."""

    meeting_id: str | None = None
    occurrence: str | None = None
    drill_id: str | None = None

    @property
    def key(self) -> str:
        return f"drill:{self.drill_id}" if self.drill_id else f"occ:{self.meeting_id}:{self.occurrence}"

    @classmethod
    def from_key(cls, key: str) -> Subject:
        kind, _, rest = key.partition(":")
        if kind == "drill":
            return cls(drill_id=rest)
        meeting_id, _, occurrence = rest.partition(":")
        return cls(meeting_id, occurrence)

    @property
    def room(self) -> str:
        """The test room: one per subject, shared by every tester of it."""
        if self.drill_id:
            return f"test:drill-{self.drill_id}"
        return "test:" + self.meeting_id + "-" + self.occurrence.replace("-", "").replace(":", "")

    def fields(self) -> dict:
        return {"drill_id": self.drill_id} if self.drill_id else {"meeting_id": self.meeting_id, "occurrence": self.occurrence}


def verdict(result: dict | None, ladder: Ladder) -> tuple[str, list[str]]:
    """(status, reasons) of one room's last result; reasons are codes the UI translates."""
    if not result:
        return "not_tested", []
    if result.get("error"):
        return "failed", ["error"]
    names = [*ladder.names, NO_TIER]
    rank = {name: i for i, name in enumerate(names)}
    reasons = []
    planned, tier = result.get("planned_tier"), result.get("tier")
    if planned in rank and rank.get(tier, len(names)) > rank[planned]:
        reasons.append("tier_below_plan")
    if (result.get("loss_pct") or 0) > MAX_LOSS_PCT:
        reasons.append("loss")
    if result.get("camera_ok") is False:
        reasons.append("camera")
    if result.get("mic_ok") is False:
        reasons.append("microphone")
    return ("at_risk" if reasons else "ready"), reasons


class Readiness:
    def __init__(self, redis: aioredis.Redis, roster: Roster, registry: Registry, presence: Presence, schedules: ScheduleBuilder,
                 *, ladder: Ladder, secret_key: str, public_url: str, test_seconds: float = 10.0, publish_seconds: float = 3.0,
                 concurrency: int = 10) -> None:  # fmt: skip
        self.redis, self.roster, self.registry, self.presence, self.schedules = redis, roster, registry, presence, schedules
        self.ladder = ladder
        self._secret_key = secret_key
        self.public_url = public_url.rstrip("/")
        self.test_seconds = test_seconds
        self.publish_seconds = publish_seconds
        self.pacer = TestPacer(redis, concurrency, lease_seconds=test_seconds + publish_seconds + TEST_MARGIN_S)

    # --- subjects ------------------------------------------------------------

    async def occurrence(self, meeting_id: str, occurrence: str) -> tuple[Meeting, Subject]:
        meeting = await self.roster.meeting(meeting_id)
        if meeting is None:
            raise NotFound(f"no meeting {meeting_id}")
        try:
            start = parse_utc(occurrence)
        except ValueError:
            raise BadRequest("occurrence must be a UTC start such as 2025-09-02T01:00:00Z") from None
        if not meeting.is_occurrence(start):
            raise NotFound(f"meeting {meeting_id} has no occurrence at {occurrence}")
        return meeting, Subject(meeting.id, format_utc(start))

    async def expected(self, subject: Subject) -> list[str]:
        """The rooms a subject tests: an occurrence's participants, a drill's communes."""
        if subject.drill_id:
            return (await self.drill(subject.drill_id))["expected"]
        return sorted(await self.roster.participants(subject.meeting_id))

    async def planned_tier(self, subject: Subject, endpoint: Endpoint) -> str:
        max_tier = None
        if subject.meeting_id:
            meeting = await self.roster.meeting(subject.meeting_id)
            max_tier = meeting.media.max_tier if meeting else None
        return self.ladder.choose(endpoint.link.down_kbps, max_tier=max_tier if max_tier in self.ladder.names else None)

    async def node_url(self, subject: Subject) -> str:
        """The node the subject's rooms use: an occurrence's assigned node (the agents' `whep_url`), a drill's own."""
        if subject.drill_id:
            return (await self.drill(subject.drill_id))["node_url"]
        meeting = await self.roster.meeting(subject.meeting_id)
        if meeting is None:
            raise NotFound(f"no meeting {subject.meeting_id}")
        return (await self.schedules.room(meeting, parse_utc(subject.occurrence))).node_url

    async def time_to_test(self, subject: Subject, now: float) -> bool:
        """Whether a test ordered now ends before the warm-up of the subject (always, for a drill)."""
        if subject.drill_id:
            return True
        meeting = await self.roster.meeting(subject.meeting_id)
        if meeting is None:
            return False
        warmup = lifecycle_times(parse_utc(subject.occurrence), meeting.duration).warmup.timestamp()
        return now + self.test_seconds + self.publish_seconds + TEST_MARGIN_S < warmup

    # --- orders and results --------------------------------------------------

    async def order(self, subject: Subject, endpoint_id: str, now: float, node_url: str | None = None) -> dict:
        """One agent's test order: where to test, its tokens, its planned tier."""
        endpoint = await self.registry.get(endpoint_id)
        url = (node_url or await self.node_url(subject)).rstrip("/")
        room = subject.room

        def token(role: str) -> str:
            return mint_media_token(self._secret_key, room=room, identity=endpoint_id, role=role, ttl=TOKEN_TTL, now=now)

        return {
            "test_id": subject.key,
            **subject.fields(),
            "whep_url": f"{url}/sfu/whep/{room}",
            "whip_url": f"{url}/sfu/whip/{room}",
            "subscribe_token": token("subscribe"),
            "publish_token": token("publish"),
            "tier": await self.planned_tier(subject, endpoint),
            "seconds": self.test_seconds,
            "publish_seconds": self.publish_seconds,
        }

    async def request(self, subject: Subject, endpoint_ids: Iterable[str], now: float | None = None) -> int:
        """Queue these rooms' tests on the subject's node (paced: `dispatch`); returns how many were asked."""
        targets = sorted(set(endpoint_ids))
        if targets:
            node_url = await self.node_url(subject)
            await self.pacer.enqueue(node_url, subject.key, targets)
            await self.dispatch(node_url, now)
        return len(targets)

    async def dispatch(self, node_url: str, now: float | None = None) -> int:
        """Send the test orders a node has room for now (to the agents, wherever they are connected)."""
        now = time.time() if now is None else now
        taken: dict[str, list[str]] = {}
        for subject_key, endpoint_id in await self.pacer.take(node_url):
            taken.setdefault(subject_key, []).append(endpoint_id)
        sent = 0
        for subject_key, endpoint_ids in taken.items():
            subject = Subject.from_key(subject_key)
            if not await self.time_to_test(subject, now):  # waited past the warm-up: the rooms join instead
                for endpoint_id in endpoint_ids:
                    await self.pacer.done(node_url, subject_key, endpoint_id)
                continue
            event = {"type": "test", **subject.fields()}
            await self.redis.publish(keys.AGENT_NOTIFY, json.dumps({"endpoints": endpoint_ids, "event": event}))
            sent += len(endpoint_ids)
        return sent

    async def pending(self, subject: Subject) -> int:
        """Rooms of the subject waiting their turn or testing now (the board refreshes itself while there are some)."""
        return await self.pacer.pending(await self.node_url(subject), subject.key)

    async def subject_for_report(self, endpoint_id: str, message: dict, now: float) -> Subject | str:
        """The subject an agent's result may go to, or the reason it is refused."""
        drill_id = message.get("drill_id")
        if isinstance(drill_id, str) and drill_id:
            try:
                record = await self.drill(drill_id[:40])
            except NotFound:
                return "no such drill"
            if endpoint_id not in record["expected"]:
                return "not a room of that drill"
            if now - record["started_at"] > DRILL_REPORT_WINDOW:
                return "that drill is over"
            return Subject(drill_id=record["id"])
        meeting_id, occurrence = message.get("meeting_id"), message.get("occurrence")
        if not isinstance(meeting_id, str) or not isinstance(occurrence, str):
            return "test_result needs meeting_id and occurrence, or drill_id"
        from scheduler.live import reportable_occurrence  # one rule for every report about an occurrence

        meeting = await self.roster.meeting(meeting_id)
        if meeting is None:
            return "no such meeting"
        if endpoint_id not in await self.roster.participants(meeting.id):
            return "not a participant of that meeting"
        key = reportable_occurrence(meeting, occurrence, datetime.fromtimestamp(now, UTC))
        if key is None:
            return "not an occurrence of that meeting under way"
        return Subject(meeting.id, key)

    async def record(self, subject: Subject, endpoint_id: str, result: dict, now: float) -> dict:
        fields = _clean(result)
        status, reasons = verdict(fields, self.ladder)
        entry = {**fields, "status": status, "reasons": reasons, "at": now}
        key = keys.readiness_results(subject.key)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, endpoint_id, json.dumps(entry))
            pipe.expire(key, KEEP)
            await pipe.execute()
        node_url = await self.node_url(subject)
        await self.pacer.done(node_url, subject.key, endpoint_id)  # its slot goes to the next room waiting
        await self.dispatch(node_url, now)
        return entry

    async def results(self, subject: Subject) -> dict[str, dict]:
        raw = await self.redis.hgetall(keys.readiness_results(subject.key))
        return {k: json.loads(v) for k, v in raw.items()}

    # --- the board -----------------------------------------------------------

    async def board(self, subject: Subject, principal: Principal, now: float, province: str | None = None) -> dict:
        """Every expected room the caller may see (one province for a scoped caller), worst first."""
        if principal.scoped:
            province = principal.province_code
        endpoints = await self.registry.all()
        expected = [e for e in await self.expected(subject) if e in endpoints]
        if province:
            expected = [e for e in expected if endpoints[e].province_code == province]
        results = await self.results(subject)
        online = await self.presence.online_among(expected, now)
        rows = []
        for endpoint_id in expected:
            endpoint = endpoints[endpoint_id]
            result = results.get(endpoint_id)
            status, reasons = verdict(result, self.ladder)
            rows.append({
                "endpoint_id": endpoint_id,
                "name": endpoint.name,
                "province_code": endpoint.province_code,
                "province": self.registry.province_name(endpoint.province_code) if endpoint.province_code else "",
                "online": endpoint_id in online,
                "status": status,
                "reasons": reasons,
                "planned_tier": (result or {}).get("planned_tier") or await self.planned_tier(subject, endpoint),
                **{k: (result or {}).get(k) for k in ("tier", "bitrate_kbps", "loss_pct", "rtt_ms", "jitter_ms", "camera_ok", "mic_ok", "error")},
                "tested_at": format_utc(datetime.fromtimestamp(result["at"], UTC)) if result else None,
                "contact_name": endpoint.contact_name,
                "contact_phone": endpoint.contact_phone,
            })  # fmt: skip
        order = {s: i for i, s in enumerate(STATUSES)}
        rows.sort(key=lambda r: (order[r["status"]], r["online"], r["province_code"] or "", r["endpoint_id"]))
        provinces: dict[str, Counter] = {}
        for row in rows:
            counts = provinces.setdefault(row["province_code"] or "", Counter())
            counts[row["status"]] += 1
            counts["online"] += row["online"]
            counts["expected"] += 1
        totals = Counter(r["status"] for r in rows)
        return {
            **subject.fields(),
            "expected": len(rows),
            "online": sum(r["online"] for r in rows),
            "counts": {s: totals.get(s, 0) for s in STATUSES},
            "provinces": {code: {s: c.get(s, 0) for s in (*STATUSES, "online", "expected")} for code, c in sorted(provinces.items())},
            "rooms": rows,
        }

    async def rerun(self, principal: Principal, subject: Subject, now: float, *, province: str | None = None,
                    endpoint_id: str | None = None, via: str = "api") -> tuple[int, int]:  # fmt: skip
        """Test again every room of a board the caller may see, a province's, or one room; (asked, offline). Audited."""
        principal.require(*RUNNERS)
        board = await self.board(subject, principal, now, province)
        rooms = [r["endpoint_id"] for r in board["rooms"]]
        if endpoint_id is not None:
            if endpoint_id not in rooms:
                raise ValidationFailed([FieldError("endpoint_id", "not a room of this board that you may see")])
            rooms = [endpoint_id]
        online = [r["endpoint_id"] for r in board["rooms"] if r["online"] and r["endpoint_id"] in rooms]
        asked = await self.request(subject, online, now)
        scope = "room" if endpoint_id else "province" if province else "all"
        target = subject.drill_id or subject.meeting_id or ""
        details = {"via": via, "scope": scope, "asked": asked, **({"occurrence": subject.occurrence} if subject.occurrence else {}),
                   **({"province": province} if province else {}), **({"endpoint_id": endpoint_id} if endpoint_id else {})}  # fmt: skip
        await audit.record(self.redis, principal.name, audit.Action.READINESS_RUN, target, details, now=now)
        return asked, len(rooms) - asked

    # --- drills --------------------------------------------------------------

    async def start_drill(self, principal: Principal, province: str | None, now: float, via: str = "api") -> dict:
        """A test session now for a province (or the country): every commune of it is asked to test. Audited."""
        principal.require(*RUNNERS)
        principal.require_province(province)
        endpoints = await self.registry.all()
        if province is not None and not any(e.province_code == province for e in endpoints.values()):
            raise NotFound(f"no province {province}")
        expected = sorted(e.id for e in endpoints.values() if e.kind == EndpointKind.COMMUNE and (province is None or e.province_code == province))
        drill_id = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)
        node = await NodeRouter(self.redis).select_node(Subject(drill_id=drill_id).room)
        record = {
            "id": drill_id,
            "province": province,
            "started_at": now,
            "started_by": principal.name,
            "node_url": (node.url if node else self.public_url).rstrip("/"),
            "expected": expected,
        }
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.drill(drill_id), json.dumps(record), ex=KEEP)
            pipe.zadd(keys.DRILLS, {drill_id: now})
            pipe.zremrangebyscore(keys.DRILLS, 0, now - KEEP)
            await pipe.execute()
        online = await self.presence.online_among(expected, now)
        await self.request(Subject(drill_id=drill_id), online, now)
        await audit.record(self.redis, principal.name, audit.Action.DRILL_START, drill_id, {"via": via, "province": province, "expected": len(expected)}, now=now)
        return record

    async def drill(self, drill_id: str) -> dict:
        raw = await self.redis.get(keys.drill(drill_id))
        if raw is None:
            raise NotFound(f"no drill {drill_id}")
        return json.loads(raw)

    async def drills(self, principal: Principal, limit: int = 50) -> list[dict]:
        """The latest drills the caller may see (a scoped caller: its province's), newest first, room counts instead of lists."""
        ids = await self.redis.zrevrange(keys.DRILLS, 0, 4 * limit)
        found = []
        for drill_id in ids:
            try:
                record = await self.drill(drill_id)
            except NotFound:
                continue
            if principal.scoped and record["province"] != principal.province_code:
                continue
            found.append({k: v for k, v in record.items() if k != "expected"} | {"expected": len(record["expected"]), "counts": await self.drill_counts(record)})
            if len(found) >= limit:
                break
        return found

    async def latest_drill_counts(self, now: float) -> dict[str, int]:
        """Rooms of the latest drill per status (every status present, zeros when there is no drill)."""
        latest = await self.redis.zrevrange(keys.DRILLS, 0, 0)
        if latest:
            try:
                return await self.drill_counts(await self.drill(latest[0]))
            except NotFound:
                pass
        return dict.fromkeys(STATUSES, 0)

    async def drill_counts(self, record: dict) -> dict[str, int]:
        """A drill's rooms per status."""
        counts = dict.fromkeys(STATUSES, 0)
        results = await self.results(Subject(drill_id=record["id"]))
        for endpoint_id in record["expected"]:
            counts[verdict(results.get(endpoint_id), self.ladder)[0]] += 1
        return counts

    def check_drill_visible(self, principal: Principal, record: dict) -> None:
        principal.require_province(record["province"])


_NUMBERS = ("bitrate_kbps", "loss_pct", "rtt_ms", "jitter_ms", "fps")
_TEXTS = ("tier", "planned_tier", "error")


def _clean(result: dict) -> dict:
    """The fields of an agent's result the board keeps, of the right types and bounded."""
    clean: dict = {}
    for name in _NUMBERS:
        value = result.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            clean[name] = round(float(value), 2)
    for name in _TEXTS:
        value = result.get(name)
        if isinstance(value, str) and value:
            clean[name] = value[:300]
    for name in ("camera_ok", "mic_ok"):
        if isinstance(result.get(name), bool):
            clean[name] = result[name]
    return clean

