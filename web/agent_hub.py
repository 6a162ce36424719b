"""The agents' control sockets in this web process, and the fan-out of notifications to them.

Every web process subscribes once to `AGENT_NOTIFY` and delivers each event to
the sockets it holds; events for endpoints connected elsewhere are ignored
here and delivered there. A `join` is personalised (each agent gets its own
entry with its own media tokens); other events are encoded once for everyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from starlette.websockets import WebSocket

from scheduler.agent_schedule import ScheduleBuilder
from scheduler.meeting import parse_utc
from scheduler.store import MeetingStore
from vcs import keys
from vcs.errors import NotFound
from vcs.registry import Registry

__all__ = ["AgentHub"]

log = logging.getLogger(__name__)

SEND_TIMEOUT = 5.0


class AgentHub:
    def __init__(self, redis: aioredis.Redis, registry: Registry, store: MeetingStore, schedules: ScheduleBuilder, clock: Callable[[], float]) -> None:
        self.redis = redis
        self.registry = registry
        self.store = store
        self.schedules = schedules
        self.clock = clock
        self.sockets: dict[str, set[WebSocket]] = defaultdict(set)
        self._signatures: dict[WebSocket, str] = {}
        self._targets: dict[str, frozenset[str]] = {}  # meeting id => its participants and host, as last seen
        self._task: asyncio.Task | None = None

    @property
    def connected(self) -> int:
        return sum(len(s) for s in self.sockets.values())

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._listen(), name="agent-hub")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def add(self, endpoint_id: str, socket: WebSocket) -> None:
        self.sockets[endpoint_id].add(socket)

    def remove(self, endpoint_id: str, socket: WebSocket) -> None:
        self.sockets[endpoint_id].discard(socket)
        self._signatures.pop(socket, None)
        if not self.sockets[endpoint_id]:
            del self.sockets[endpoint_id]

    # --- what an agent is told -------------------------------------------

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    async def send_state(self, endpoint_id: str, socket: WebSocket, *, only_if_changed: bool = False) -> None:
        endpoint = await self.registry.get(endpoint_id)
        occurrences = await self.schedules.occurrences_for(endpoint_id, self.now())
        signature = json.dumps([(m.id, m.updated_at.isoformat() if m.updated_at else "", s.isoformat()) for m, s in occurrences])
        if only_if_changed and self._signatures.get(socket) == signature:
            return
        schedule = [await self.schedules.entry(m, s, endpoint) for m, s in occurrences]
        self._signatures[socket] = signature
        await self._send(socket, json.dumps({"type": "state", "server_time": self.clock(), "endpoint_id": endpoint_id, "schedule": schedule}))

    async def _deliver(self, targets: list[str] | str, event: dict) -> None:
        if targets == "*":
            wanted = list(self.sockets)
        else:
            wanted = [t for t in targets if t in self.sockets]
        if not wanted:
            return
        if event.get("type") == "join":
            meeting = await self.store.get(event["meeting_id"])
            occurrence = parse_utc(event["occurrence"])
            room = await self.schedules.room(meeting, occurrence)
            for endpoint_id in wanted:
                endpoint = await self.registry.get(endpoint_id)
                entry = await self.schedules.entry(meeting, occurrence, endpoint, room)
                text = json.dumps({"type": "join", "server_time": self.clock(), "entry": entry})
                await asyncio.gather(*(self._send(s, text) for s in list(self.sockets.get(endpoint_id, ()))))
            return
        text = json.dumps({**event, "server_time": self.clock()})
        await asyncio.gather(*(self._send(s, text) for e in wanted for s in list(self.sockets.get(e, ()))))

    async def _refresh_states(self, endpoint_ids=None) -> None:
        """Send a fresh `state` to these connected endpoints (all when None) whose schedule changed."""
        for endpoint_id in list(self.sockets) if endpoint_ids is None else [e for e in endpoint_ids if e in self.sockets]:
            for socket in list(self.sockets.get(endpoint_id, ())):
                await self.send_state(endpoint_id, socket, only_if_changed=True)

    async def _targets_of(self, meeting_id: str) -> frozenset[str]:
        try:
            meeting = await self.store.get(meeting_id)
        except NotFound:
            return frozenset()
        return await self.schedules.roster.participants(meeting_id) | {meeting.host_endpoint_id}

    async def _remember_all_targets(self) -> None:
        self._targets = {m: await self._targets_of(m) for m in await self.store.all()}

    async def _meeting_changed(self, meeting_id: str) -> None:
        """Only the endpoints in the meeting, before or after the change, can see a new schedule."""
        before = self._targets.get(meeting_id, frozenset())
        after = await self._targets_of(meeting_id)
        self._targets[meeting_id] = after
        await self._refresh_states(before | after)

    async def _send(self, socket: WebSocket, text: str) -> None:
        try:
            await asyncio.wait_for(socket.send_text(text), SEND_TIMEOUT)
        except Exception as exc:  # a dead or stuck socket: its own handler will clean up
            log.debug("send to agent failed: %s", exc)

    # --- the notification channel ----------------------------------------

    async def _listen(self) -> None:
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(keys.AGENT_NOTIFY, keys.MEETINGS_CHANGED)
                await self._remember_all_targets()
                await self._refresh_states()  # we may have missed changes while away
                async for message in pubsub.listen():
                    if message["type"] != "message":
                        continue
                    try:
                        if message["channel"] == keys.MEETINGS_CHANGED:
                            await self._meeting_changed(json.loads(message["data"])["meeting"])
                        else:
                            data = json.loads(message["data"])
                            await self._deliver(data["endpoints"], data["event"])
                    except (RedisError, OSError):
                        raise
                    except Exception:
                        log.exception("agent notification not delivered")
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                raise
            except (RedisError, OSError) as exc:
                log.warning("agent hub lost Redis: %s; resubscribing", exc)
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                await asyncio.sleep(1)
