"""Who takes part in which meeting, resolved once per change rather than per request.

3,321 agents asking for their schedule at once must not each resolve every
meeting's selector: the roster keeps the resolved sets and an index from
endpoint to meetings, rebuilt only when the meetings or the registry change.

The store keeps every meeting ever booked, cancelled and past ones included,
so a rebuild indexes only the *current* meetings (an occurrence still to come
or under way) and resolves each distinct selector once, reusing the previous
rebuild's results while the registry is unchanged: a status write or a booking
costs one pass over the meetings, not a resolution of each against 3,356
endpoints. Other meetings' participants are resolved when asked for.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from scheduler.meeting import Meeting, ParticipantSelector
from scheduler.participants import Groups, selected
from scheduler.store import MeetingStore
from vcs import keys
from vcs.endpoints import Endpoint
from vcs.registry import Registry

__all__ = ["Roster", "is_current"]

# a selector and, for a group, the group's members: equal keys resolve to the same endpoints
_SelectorKey = tuple[ParticipantSelector, tuple[str, ...] | None]


def is_current(meeting: Meeting, now: datetime) -> bool:
    """Whether the meeting has an occurrence not yet ended (cancelled ones do not count)."""
    return bool(meeting.occurrences(window_start=now - meeting.duration + timedelta(microseconds=1), limit=1))


class Roster:
    def __init__(self, store: MeetingStore, registry: Registry, groups: Groups, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.registry = registry
        self.groups = groups
        self.clock = clock
        self._key: tuple | None = None  # (meetings version, registry version) of the last rebuild
        self._meetings: dict[str, Meeting] = {}
        self._members: dict[str, frozenset[str]] = {}  # current meeting id => its participants (not the host)
        self._by_endpoint: dict[str, set[str]] = {}  # endpoint id => current meetings it takes part in or hosts
        # the registry and saved groups as read by the last rebuild, and what selectors name in them
        # (bounded by the meetings in the store, which the store holds in memory anyway)
        self._endpoints: Mapping[str, Endpoint] = {}
        self._groups: Mapping[str, tuple[str, ...]] = {}
        self._resolved: dict[_SelectorKey, frozenset[str]] = {}
        self._lock = asyncio.Lock()

    async def _refresh(self) -> dict[str, Meeting]:
        key = tuple(await self.store.redis.mget(keys.MEETINGS_VERSION, keys.REGISTRY_VERSION))
        if key != self._key:
            async with self._lock:
                if key != self._key:
                    await self._rebuild(key)
        return self._meetings

    async def _rebuild(self, key: tuple) -> None:
        meetings = await self.store.all()
        groups = await self.groups.all()
        endpoints, resolved = self._endpoints, self._resolved
        if self._key is None or key[1] != self._key[1]:
            endpoints, resolved = await self.registry.all(), {}  # every selector may name other endpoints now
        # from here on nothing awaits: readers never see half a rebuild
        self._endpoints, self._groups, self._resolved = endpoints, groups, resolved
        now = datetime.fromtimestamp(self.clock(), UTC)
        members: dict[str, frozenset[str]] = {}
        by_endpoint: dict[str, set[str]] = defaultdict(set)
        for meeting in meetings.values():
            if not is_current(meeting, now):
                continue
            members[meeting.id] = self._resolve(meeting.selector)
            by_endpoint[meeting.host_endpoint_id].add(meeting.id)
            for endpoint_id in members[meeting.id]:
                by_endpoint[endpoint_id].add(meeting.id)
        self._meetings, self._members, self._by_endpoint = meetings, members, dict(by_endpoint)
        self._key = key

    def _resolve(self, selector: ParticipantSelector) -> frozenset[str]:
        key = (selector, self._groups.get(selector.group or "") if selector.kind == "group" else None)
        found = self._resolved.get(key)
        if found is None:
            found = self._resolved[key] = selected(selector, self._endpoints, self._groups)
        return found

    async def meeting(self, meeting_id: str) -> Meeting | None:
        """The stored meeting as of the last rebuild (parsed once per change), or None."""
        return (await self._refresh()).get(meeting_id)

    async def participants(self, meeting_id: str) -> frozenset[str]:
        """The communes the meeting's selector names (not the host); empty for an unknown meeting."""
        meeting = (await self._refresh()).get(meeting_id)
        return frozenset() if meeting is None else self._participants(meeting)

    def _participants(self, meeting: Meeting) -> frozenset[str]:
        found = self._members.get(meeting.id)
        if found is None:  # not a current meeting: a live view of a past occurrence, a late report
            found = self._resolve(meeting.selector)
        return found

    async def endpoints_of(self, meeting_id: str) -> frozenset[str]:
        """Participants and host: every endpoint whose schedule may show the meeting."""
        meeting = (await self._refresh()).get(meeting_id)
        return frozenset() if meeting is None else self._participants(meeting) | {meeting.host_endpoint_id}

    async def current_endpoints(self) -> dict[str, frozenset[str]]:
        """`endpoints_of` for every current meeting."""
        meetings = await self._refresh()
        return {m: members | {meetings[m].host_endpoint_id} for m, members in self._members.items() if m in meetings}

    async def meetings_of(self, endpoint_id: str) -> list[Meeting]:
        """The current meetings the endpoint takes part in or hosts."""
        meetings = await self._refresh()
        return [meetings[m] for m in sorted(self._by_endpoint.get(endpoint_id, ())) if m in meetings]

    async def hosts(self, meeting_id: str, endpoint_id: str) -> bool:
        meetings = await self._refresh()
        meeting = meetings.get(meeting_id)
        return meeting is not None and meeting.host_endpoint_id == endpoint_id
