"""How the UI sees meetings: who may see or manage one, occurrences as rows, the week.

Who sees a meeting is `scheduler.visibility`, as in the API; a province
organizer manages (edits, cancels, hands the floor, hosts) only what
`BookingService.check_scope` allows. Weeks
run Monday to Sunday in Asia/Ho_Chi_Minh. An occurrence's display status is
the one the scheduler stored, or, while it still says "scheduled", the one
its lifecycle times give at `now`, so the pages are right even before the
scheduler has run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from scheduler import visibility
from scheduler.booking import Preview
from scheduler.lifecycle import lifecycle_times, occurrence_status_at
from scheduler.meeting import MEDIA_TIERS, Meeting, OccurrenceStatus, format_utc, parse_utc
from scheduler.recurrence import occurrences as series_starts
from vcs.divisions import provinces
from vcs.endpoints import Endpoint
from vcs.errors import Forbidden, NotFound
from vcs.local_time import LOCAL_TZ
from vcs.roles import Principal, Role
from web.services import Services

__all__ = [
    "OccurrenceRow",
    "TodayItem",
    "can_manage",
    "check_visible",
    "display_status",
    "local_day_start",
    "monday_of",
    "named_occurrence",
    "now_utc",
    "occurrence_rows",
    "preview_view",
    "today_items",
    "visible_meetings",
]

MAX_LISTED_CONFLICTS = 20  # clashing occurrences listed
MAX_NAMED_PER_CONFLICT = 6  # endpoints named for each
MAX_LISTED_SHORTFALLS = 50
TODAY_HORIZON = timedelta(days=7)
TODAY_LIMIT = 8


def now_utc(svc: Services) -> datetime:
    return datetime.fromtimestamp(svc.clock(), UTC)


def local_day_start(day: date) -> datetime:
    """00:00 of `day` in Vietnam, as an aware UTC datetime."""
    return datetime.combine(day, time(0, 0), tzinfo=LOCAL_TZ).astimezone(UTC)


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def named_occurrence(raw: object, meeting: Meeting) -> datetime | None:
    """The occurrence a form or link names (its UTC start); None when it names none; 404 when unknown."""
    if not isinstance(raw, str) or not raw:
        return None
    try:
        start = parse_utc(raw[:40])
    except ValueError:
        raise NotFound("no such occurrence") from None
    if not meeting.is_occurrence(start):
        raise NotFound("no such occurrence")
    return start


def display_status(meeting: Meeting, start: datetime, now: datetime) -> str:
    stored = meeting.status_of(start)
    if stored is not OccurrenceStatus.SCHEDULED:
        return stored.value
    return occurrence_status_at(lifecycle_times(start, meeting.duration), now).value


@dataclass(frozen=True)
class OccurrenceRow:
    meeting: Meeting
    start: datetime
    status: str
    participants: int

    @property
    def title(self) -> str:
        return self.meeting.title

    @property
    def key(self) -> str:
        return format_utc(self.start)

    @property
    def starts_at(self) -> float:
        return self.start.timestamp()

    @property
    def ends_at(self) -> float:
        return (self.start + self.meeting.duration).timestamp()

    @property
    def local_date(self) -> date:
        return self.start.astimezone(LOCAL_TZ).date()

    @property
    def url(self) -> str:
        return f"/meetings/{self.meeting.id}"

    @property
    def live_url(self) -> str:
        return f"/meetings/{self.meeting.id}/live?occurrence={self.key}"

    @property
    def is_on(self) -> bool:
        """Preparing or live: the live view is where to look."""
        return self.status in (OccurrenceStatus.PREPARING, OccurrenceStatus.LIVE)


async def visible_meetings(svc: Services, principal: Principal) -> list[Meeting]:
    meetings = list((await svc.meetings.all()).values())
    if not principal.scoped:
        return meetings
    return await visibility.visible_meetings(principal, meetings, svc.roster, await svc.registry.all())


async def check_visible(svc: Services, principal: Principal, meeting: Meeting) -> None:
    """Forbidden for a province organizer when the meeting has nothing in its province."""
    if principal.scoped:
        await visibility.check_visible(principal, meeting, svc.roster, await svc.registry.all())


async def can_manage(svc: Services, principal: Principal, meeting: Meeting) -> bool:
    """Whether this user may change, cancel, host or hand the floor of the meeting."""
    if principal.role not in (Role.ADMIN, Role.ORGANIZER):
        return False
    try:
        await svc.booking.check_scope(principal, meeting, await svc.roster.participants(meeting.id))
    except Forbidden:
        return False
    return True


async def occurrence_rows(svc: Services, meetings: list[Meeting], start: datetime, end: datetime, now: datetime) -> list[OccurrenceRow]:
    """Every occurrence meeting [start, end), cancelled ones included (shown struck through), by start."""
    rows = []
    for meeting in meetings:
        earliest = start - meeting.duration + timedelta(microseconds=1)
        found = series_starts(meeting.start, meeting.recurrence, window_start=earliest, window_end=end)
        if not found:
            continue
        count = len(await svc.roster.participants(meeting.id))
        rows.extend(OccurrenceRow(meeting, s, display_status(meeting, s, now), count) for s in found)
    rows.sort(key=lambda r: (r.start, r.title, r.meeting.id))
    return rows


async def today_items(svc: Services, principal: Principal) -> list[TodayItem]:
    """For the home page: occurrences under way or starting within a week, not cancelled."""
    now = now_utc(svc)
    rows = await occurrence_rows(svc, await visible_meetings(svc, principal), now, now + TODAY_HORIZON, now)
    shown = [r for r in rows if r.status not in (OccurrenceStatus.CANCELLED, OccurrenceStatus.ENDED, OccurrenceStatus.FAILED)]
    return [TodayItem(r) for r in shown[:TODAY_LIMIT]]


@dataclass(frozen=True)
class TodayItem:
    """What templates/_meetings_slot.html reads: .title, .starts_at, .status ("upcoming" | "live"), .url."""

    row: OccurrenceRow

    @property
    def title(self) -> str:
        return self.row.title

    @property
    def starts_at(self) -> float:
        return self.row.starts_at

    @property
    def status(self) -> str:
        return "live" if self.row.is_on else "upcoming"

    @property
    def url(self) -> str:
        return self.row.live_url if self.row.is_on else self.row.url


def preview_view(preview: Preview, endpoints: dict[str, Endpoint]) -> dict:
    """Preview.to_dict(), with names and local times for people."""
    data = preview.to_dict()
    province_names = {p.code: p.name for p in provinces()}
    plan = data["plan"]

    def name(endpoint_id: str) -> str:
        return endpoints[endpoint_id].name if endpoint_id in endpoints else endpoint_id

    # one row per clashing occurrence of another meeting, naming the first few endpoints booked twice
    groups: dict[tuple, dict] = {}
    for c in preview.conflicts:
        key = (c.candidate_start, c.occurrence_start, c.meeting_id)
        group = groups.setdefault(
            key,
            {
                "meeting_id": c.meeting_id,
                "meeting_title": c.meeting_title,
                "starts_at": c.occurrence_start.timestamp(),
                "ends_at": c.occurrence_end.timestamp(),
                "candidate_at": c.candidate_start.timestamp(),
                "names": [],
                "count": 0,
            },
        )
        group["count"] += 1
        if len(group["names"]) < MAX_NAMED_PER_CONFLICT:
            group["names"].append(name(c.endpoint_id))
    conflicts = [groups[k] for k in sorted(groups)]
    shortfalls = []
    for s in plan["shortfalls"][:MAX_LISTED_SHORTFALLS]:
        subject = s["subject"]
        if s["kind"] == "link":
            subject = name(subject)
        elif s["kind"] == "trunk":
            subject = province_names.get(subject, subject)
        shortfalls.append({**s, "subject_name": subject})
    tiers = plan["totals"]["tiers"]
    order = [*MEDIA_TIERS, "none"]
    return {
        "participants": data["participants"],
        "conflict_count": data["conflict_count"],
        "conflicts": conflicts[:MAX_LISTED_CONFLICTS],
        "conflicts_more": max(0, len(conflicts) - MAX_LISTED_CONFLICTS),
        "capacity_short": data["capacity_short"],
        "clashes": bool(data["conflict_count"] or data["capacity_short"]),
        "fits": plan["fits"],
        "tiers": [(t, tiers.get(t, 0)) for t in order if tiers.get(t)],
        "subscribers": plan["totals"]["subscribers"],
        "cascade_kbps": plan["totals"]["cascade_kbps"],
        "direct_kbps": plan["totals"]["direct_kbps"],
        "trunks": [{**t, "name": province_names.get(t["province_code"], t["province_code"])} for t in plan["trunks"]],
        "nodes": plan["nodes"],
        "shortfalls": shortfalls,
        "shortfall_count": len(plan["shortfalls"]),
        "max_tier": plan["max_tier"],
    }
