"""Who takes part in which meeting, resolved once per change rather than per request.

3,321 agents asking for their schedule at once must not each resolve every
meeting's selector: the roster keeps the resolved sets and an index from
endpoint to meetings, rebuilt only when the meetings or the registry change.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from scheduler.meeting import Meeting
from scheduler.participants import Groups, resolve
from scheduler.store import MeetingStore
from vcs import keys
from vcs.registry import Registry

__all__ = ["Roster"]


class Roster:
    def __init__(self, store: MeetingStore, registry: Registry, groups: Groups) -> None:
        self.store = store
        self.registry = registry
        self.groups = groups
        self._key: tuple | None = None
        self._members: dict[str, frozenset[str]] = {}
        self._by_endpoint: dict[str, set[str]] = {}
        self._lock = asyncio.Lock()

    async def _refresh(self) -> dict[str, Meeting]:
        meetings = await self.store.all()
        redis = self.store.redis
        key = (await self.store.version(), await redis.get(keys.REGISTRY_VERSION))
        if key == self._key:
            return meetings
        async with self._lock:
            if key != self._key:
                members = {m.id: await resolve(self.registry, self.groups, m.selector) for m in meetings.values()}
                by_endpoint: dict[str, set[str]] = defaultdict(set)
                for meeting in meetings.values():
                    by_endpoint[meeting.host_endpoint_id].add(meeting.id)
                    for endpoint_id in members[meeting.id]:
                        by_endpoint[endpoint_id].add(meeting.id)
                self._members, self._by_endpoint, self._key = members, dict(by_endpoint), key
        return meetings

    async def participants(self, meeting_id: str) -> frozenset[str]:
        await self._refresh()
        return self._members.get(meeting_id, frozenset())

    async def meetings_of(self, endpoint_id: str) -> list[Meeting]:
        meetings = await self._refresh()
        return [meetings[m] for m in sorted(self._by_endpoint.get(endpoint_id, ())) if m in meetings]

    async def hosts(self, meeting_id: str, endpoint_id: str) -> bool:
        meetings = await self._refresh()
        meeting = meetings.get(meeting_id)
        return meeting is not None and meeting.host_endpoint_id == endpoint_id
