"""Booking rules: who may book what, double-booking, node capacity and the bandwidth plan.

`BookingService.preview` answers "what would happen" (the UI shows it before
saving); `create`, `update` and `cancel` apply the same checks and write.
Conflicts and a full SFU are 409; an admin may book over them with
`override_conflicts: true`, which the meeting keeps as a record.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from scheduler.bandwidth_plan import BandwidthPlan, ParticipantLink, SfuNode, plan_bandwidth
from scheduler.conflicts import Booking, Conflict, find_conflicts, overlapping_starts
from scheduler.meeting import Meeting, validate_new_meeting
from scheduler.nodes import live_nodes
from scheduler.participants import Groups, resolve
from scheduler.roster import Roster
from scheduler.store import MeetingStore
from vcs.endpoints import EndpointKind, hall_id
from vcs.errors import Conflict as ConflictError
from vcs.errors import FieldError, Forbidden, ValidationFailed
from vcs.registry import Registry
from vcs.roles import Principal, Role
from vcs.tiers import DEFAULT_LADDER, Ladder

__all__ = ["BookingService", "Preview"]

# the API lists at most this many conflicts; the total is always given
MAX_LISTED_CONFLICTS = 200


@dataclass(frozen=True)
class Preview:
    meeting: Meeting
    participants: frozenset[str]
    conflicts: list[Conflict]
    plan: BandwidthPlan
    capacity_short: int  # subscribers no live SFU node can take at the busiest occurrence

    def to_dict(self) -> dict[str, Any]:
        return {
            "participants": len(self.participants),
            "conflicts": [c.to_json() for c in self.conflicts[:MAX_LISTED_CONFLICTS]],
            "conflict_count": len(self.conflicts),
            "capacity_short": self.capacity_short,
            "plan": self.plan.to_dict(),
        }


class BookingService:
    def __init__(
        self, store: MeetingStore, registry: Registry, groups: Groups, *, roster: Roster | None = None, ladder: Ladder = DEFAULT_LADDER,
        recording_check: Callable[[], str | None] | None = None,
    ) -> None:  # fmt: skip
        # why this deployment cannot record now (vcs.recordings.check_writable of its directory), None: it can
        self.recording_check = recording_check
        self.store = store
        self.registry = registry
        self.groups = groups
        self.roster = roster or Roster(store, registry, groups)
        self.ladder = ladder  # the deployment's (Settings.ladder): the SFU fits links the same way

    # --- reading a request -------------------------------------------------

    def meeting_from_body(self, principal: Principal, body: dict, now: datetime, *, base: Meeting | None = None) -> Meeting:
        data = {**(base.to_json() if base else {}), **{k: v for k, v in body.items() if k in _EDITABLE}}
        data["id"] = base.id if base else "m" + secrets.token_hex(6)
        data["organizer"] = base.organizer if base else principal.name
        data.setdefault("host_endpoint_id", "central")
        if "record" not in data and isinstance(data.get("selector"), dict):
            data["record"] = data["selector"].get("kind") == "all"  # a national meeting is recorded unless asked not to
        for required in ("title", "start", "duration_minutes", "selector"):
            if required not in data:
                raise ValidationFailed(FieldError.of(required, "required"))
        meeting = Meeting.from_json(data)
        return replace(meeting, created_at=base.created_at if base else now, updated_at=now)

    # --- rules -------------------------------------------------------------

    async def check_scope(self, principal: Principal, meeting: Meeting, participants: frozenset[str]) -> None:
        principal.require(Role.ADMIN, Role.ORGANIZER)
        if not principal.scoped:
            return
        endpoints = await self.registry.all()
        outside = sorted(i for i in participants if endpoints[i].province_code != principal.province_code)
        if meeting.selector.kind == "all" or outside:
            raise Forbidden(f"a province organizer books only communes of province {principal.province_code}")
        if meeting.host_endpoint_id != hall_id(principal.province_code):
            raise Forbidden(f"a province organizer hosts from {hall_id(principal.province_code)}")

    async def preview(self, principal: Principal, meeting: Meeting, now: datetime, *, is_new: bool = True) -> Preview:
        endpoints = await self.registry.all()
        errors = validate_new_meeting(
            meeting,
            now=now,
            provinces={int(e.province_code) for e in endpoints.values() if e.kind is EndpointKind.HALL},
            communes={i for i, e in endpoints.items() if e.kind is EndpointKind.COMMUNE},
            groups=set(await self.groups.all()),
            endpoints={i for i, e in endpoints.items() if e.kind is not EndpointKind.COMMUNE},
        )
        if not is_new:
            errors = [e for e in errors if not (e.field == "start" and meeting.start <= now)]
        if errors:
            raise ValidationFailed(errors)
        participants = await resolve(self.registry, self.groups, meeting.selector)
        if not participants:
            raise ValidationFailed(FieldError.of("selector", "names_no_commune"))
        if meeting.record and self.recording_check is not None and (why := self.recording_check()) is not None:
            raise ValidationFailed(FieldError("record", f"cannot record: {why}"))
        if meeting.media.max_tier not in self.ladder.names:
            raise ValidationFailed(FieldError.of("media.max_tier", "one_of", choices=", ".join(self.ladder.names)))
        await self.check_scope(principal, meeting, participants)

        candidate = Booking.from_meeting(meeting, participants | {meeting.host_endpoint_id}, window_start=now)
        window_end = candidate.starts[-1] + meeting.duration if candidate.starts else now
        others = []
        for other in (await self.store.all()).values():
            if other.id == meeting.id:
                continue
            booking = Booking.from_meeting(other, (), window_start=now, window_end=window_end)
            if not booking.starts:  # cancelled, over, or outside the candidate's span: it cannot clash
                continue
            others.append(replace(booking, endpoints=await self.roster.endpoints_of(other.id)))
        conflicts = find_conflicts(candidate, others)
        in_use = _busiest_overlap(candidate, others)
        nodes = await live_nodes(self.store.redis, now.timestamp())
        plan_nodes = _fill(nodes, in_use)
        plan = plan_bandwidth(
            [ParticipantLink.from_endpoint(endpoints[i]) for i in participants],
            max_tier=meeting.media.max_tier,
            ladder=self.ladder,
            nodes=plan_nodes,
        )
        spare = sum(max(0, n.capacity - n.in_use) for n in plan_nodes)
        short = max(0, len(participants) - spare) if plan_nodes else 0
        return Preview(meeting, participants, conflicts, plan, short)

    def _refuse_clashes(self, principal: Principal, preview: Preview) -> None:
        if not (preview.conflicts or preview.capacity_short):
            return
        if preview.meeting.override_conflicts:
            if principal.role is not Role.ADMIN:
                raise Forbidden("only an admin may override conflicts")
            return
        reason = []
        if preview.conflicts:
            reason.append(f"{len(preview.conflicts)} endpoint booking(s) overlap")
        if preview.capacity_short:
            reason.append(f"SFU nodes lack room for {preview.capacity_short} subscriber(s)")
        details = [c.to_json() for c in preview.conflicts[:MAX_LISTED_CONFLICTS]]
        raise ConflictError("; ".join(reason), details)

    # --- writes ------------------------------------------------------------

    async def create(self, principal: Principal, body: dict, now: datetime) -> Preview:
        meeting = self.meeting_from_body(principal, body, now)
        preview = await self.preview(principal, meeting, now)
        self._refuse_clashes(principal, preview)
        await self.store.create(meeting)
        return preview

    async def update(self, principal: Principal, meeting_id: str, body: dict, now: datetime) -> Preview:
        current = await self.store.get(meeting_id)
        await self.check_scope(principal, current, await self.roster.participants(meeting_id))
        if _has_started(current, now) and ("start" in body or "recurrence" in body):
            raise ValidationFailed(FieldError.of("start", "series_started"))
        meeting = self.meeting_from_body(principal, body, now, base=current)
        preview = await self.preview(principal, meeting, now, is_new=not _has_started(current, now))
        self._refuse_clashes(principal, preview)
        # the edit applies to the meeting as stored when written: a status or cancellation written meanwhile stays
        stored = await self.store.update(meeting_id, lambda latest: self.meeting_from_body(principal, body, now, base=latest))
        return replace(preview, meeting=stored)

    async def cancel(self, principal: Principal, meeting_id: str, occurrence: datetime | None, now: datetime) -> Meeting:
        """Cancel one occurrence, or every occurrence not yet ended when `occurrence` is None."""
        current = await self.store.get(meeting_id)
        await self.check_scope(principal, current, await self.roster.participants(meeting_id))
        if occurrence is not None:
            if not current.is_occurrence(occurrence):
                raise ValidationFailed(FieldError.of("occurrence", "not_an_occurrence"))
            if occurrence + current.duration <= now:
                raise ValidationFailed(FieldError.of("occurrence", "ended"))
            return await self.store.update(meeting_id, lambda m: m.cancel_occurrence(occurrence, now=now))
        return await self.store.update(meeting_id, lambda m: m.cancel_series(now=now))


_EDITABLE = {"title", "host_endpoint_id", "start", "duration_minutes", "recurrence", "selector", "media", "override_conflicts", "record"}


def _has_started(meeting: Meeting, now: datetime) -> bool:
    return meeting.start <= now


def _busiest_overlap(candidate: Booking, others: list[Booking]) -> int:
    """The most subscribers other meetings hold during any one of the candidate's occurrences."""
    busiest = 0
    for start in candidate.starts[:100]:  # the first hundred occurrences tell enough
        end = start + candidate.duration
        load = sum(len(o.endpoints) for o in others if overlapping_starts(start, end, o.starts, o.duration))
        busiest = max(busiest, load)
    return busiest


def _fill(nodes, in_use: int) -> list[SfuNode]:
    """Spread the other meetings' subscribers over the nodes in order, as the plan does."""
    filled = []
    for node in nodes:
        taken = min(node.spare, in_use)
        in_use -= taken
        filled.append(SfuNode(node.id, node.capacity, taken))
    return filled
