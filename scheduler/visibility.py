"""Who may see a meeting: the one rule used by the API (list, detail, plan, live, calendars) and the UI.

Unscoped roles see every meeting. A province-scoped organizer sees a meeting
when its host or one of its participants is in that province: a meeting
hosted from a province hall is that province's business even when all the
communes it calls are elsewhere. The central studio belongs to no province,
so a centrally hosted meeting is visible only through its participants.
Seeing is not managing: who may change a meeting is `BookingService.check_scope`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from scheduler.meeting import Meeting
from scheduler.roster import Roster
from vcs.endpoints import Endpoint
from vcs.errors import Forbidden
from vcs.roles import Principal

__all__ = ["check_visible", "is_visible", "touches_province", "visible_meetings"]


def touches_province(meeting: Meeting, participants: Iterable[str], endpoints: Mapping[str, Endpoint], province: str) -> bool:
    """Whether the meeting's host or one of its participants is in `province`."""
    host = endpoints.get(meeting.host_endpoint_id)
    if host is not None and host.province_code == province:
        return True
    return any(endpoints[p].province_code == province for p in participants if p in endpoints)


async def is_visible(principal: Principal, meeting: Meeting, roster: Roster, endpoints: Mapping[str, Endpoint]) -> bool:
    if not principal.scoped:
        return True
    return touches_province(meeting, await roster.participants(meeting.id), endpoints, principal.province_code or "")


async def check_visible(principal: Principal, meeting: Meeting, roster: Roster, endpoints: Mapping[str, Endpoint]) -> None:
    """Forbidden when the meeting is outside the caller's province."""
    if not await is_visible(principal, meeting, roster, endpoints):
        raise Forbidden(f"scoped to province {principal.province_code}")


async def visible_meetings(principal: Principal, meetings: Iterable[Meeting], roster: Roster, endpoints: Mapping[str, Endpoint]) -> list[Meeting]:
    return [m for m in meetings if await is_visible(principal, m, roster, endpoints)]
