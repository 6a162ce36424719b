"""The agents' control sockets in this web process, and the fan-out of notifications to them.

Every web process subscribes once to `AGENT_NOTIFY` and delivers each event to
the sockets it holds; events for endpoints connected elsewhere are ignored
here and delivered there. A `join` is personalised (each agent gets its own
entry with its own media tokens); other events are encoded once for everyone.

A meeting change (`MEETINGS_CHANGED`) re-sends `state` to that meeting's
endpoints, before and after the change, from a refresh task of its own: the
listener only notes which meetings changed, so a lifecycle notice never waits
behind a refresh of 3,321 sockets, and changes that arrive during a refresh
are taken together in the next one. A change without a meeting id (a saved
group) and a new subscription (changes may have been missed) refresh everyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from starlette.websockets import WebSocket

from scheduler.agent_schedule import ScheduleBuilder
from scheduler.meeting import parse_utc
from scheduler.readiness import Readiness, Subject
from scheduler.store import MeetingStore, changed_meeting
from vcs import keys
from vcs.registry import Registry

__all__ = ["AgentHub"]

log = logging.getLogger(__name__)

SEND_TIMEOUT = 5.0
PACE_INTERVAL = 2.0  # seconds between two looks at the nodes' test queues


class AgentHub:
    def __init__(self, redis: aioredis.Redis, registry: Registry, store: MeetingStore, schedules: ScheduleBuilder, clock: Callable[[], float],
                 readiness: Readiness | None = None) -> None:  # fmt: skip
        self.redis = redis
        self.registry = registry
        self.store = store
        self.schedules = schedules
        self.clock = clock
        self.readiness = readiness
        self.sockets: dict[str, set[WebSocket]] = defaultdict(set)
        self._signatures: dict[WebSocket, str] = {}
        self._targets: dict[str, frozenset[str]] = {}  # meeting id => its participants and host, as last refreshed
        self._changed: set[str] = set()  # meetings changed since the refresh task last looked
        self._everyone = False  # ... or refresh every socket
        self._pending = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    @property
    def connected(self) -> int:
        return sum(len(s) for s in self.sockets.values())

    async def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._listen(), name="agent-hub"),
                asyncio.create_task(self._refresh_loop(), name="agent-hub-refresh"),
                *([asyncio.create_task(self._pace_loop(), name="agent-hub-tests")] if self.readiness else []),
            ]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            # redis-py can swallow a cancellation that lands mid-command (8.1 does, cf. redis-py #2028):
            # the task then goes on to its next wait, where asking again ends it
            while not task.done():
                await asyncio.wait([task], timeout=0.1)
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
        signature = self.schedules.signature(occurrences, endpoint)
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
        if event.get("type") in ("readiness", "test") and self.readiness is not None:
            await self._deliver_tests(wanted, event)
            return
        text = json.dumps({**event, "server_time": self.clock()})
        await asyncio.gather(*(self._send(s, text) for e in wanted for s in list(self.sockets.get(e, ()))))

    async def _deliver_tests(self, wanted: list[str], event: dict) -> None:
        """`test` carries a personal media test order (its own tokens); `readiness` queues the rooms' tests (paced)."""
        subject = Subject(drill_id=event["drill_id"]) if event.get("drill_id") else Subject(event["meeting_id"], event["occurrence"])
        tested = set(await self.readiness.expected(subject)).intersection(wanted)  # an occurrence's host gets its notice, no test
        now = self.clock()
        if event["type"] == "readiness":
            text = json.dumps({**event, "server_time": now})
            await asyncio.gather(*(self._send(s, text) for e in wanted for s in list(self.sockets.get(e, ()))))
            if await self.readiness.time_to_test(subject, now):  # booked at short notice: the rooms join now, no test
                await self.readiness.request(subject, tested, now)
            return
        node_url = await self.readiness.node_url(subject) if tested else ""
        for endpoint_id in sorted(tested):
            text = json.dumps({"type": "test", "server_time": now, "test": await self.readiness.order(subject, endpoint_id, now, node_url)})
            await asyncio.gather(*(self._send(s, text) for s in list(self.sockets.get(endpoint_id, ()))))

    async def _send(self, socket: WebSocket, text: str) -> None:
        try:
            await asyncio.wait_for(socket.send_text(text), SEND_TIMEOUT)
        except Exception as exc:  # a dead or stuck socket: its own handler will clean up
            log.debug("send to agent failed: %s", exc)

    # --- schedule refreshes -------------------------------------------------

    def schedule_changed(self, meeting_id: str | None) -> None:
        """Note a change for the refresh task: one meeting's, or None when any schedule may have changed."""
        if meeting_id is None:
            self._everyone = True
        else:
            self._changed.add(meeting_id)
        self._pending.set()

    async def _refresh_loop(self) -> None:
        while True:
            await self._pending.wait()
            self._pending.clear()
            everyone, changed = self._everyone, self._changed
            self._everyone, self._changed = False, set()
            try:
                if everyone:
                    await self._refresh_everyone()
                else:
                    await self._refresh_meetings(changed)
            except (RedisError, OSError) as exc:
                log.warning("agent states not refreshed: %s; retrying", exc)
                self._everyone |= everyone
                self._changed |= changed
                self._pending.set()
                await asyncio.sleep(1)
            except Exception:
                log.exception("agent states not refreshed")

    async def _refresh_everyone(self) -> None:
        self._targets = await self.schedules.roster.current_endpoints()
        await self._refresh_states(list(self.sockets))

    async def _refresh_meetings(self, meeting_ids: set[str]) -> None:
        """Only the endpoints in a changed meeting, before or after the change, can see a new schedule."""
        targets: set[str] = set()
        for meeting_id in meeting_ids:
            after = await self.schedules.roster.endpoints_of(meeting_id)
            targets |= self._targets.get(meeting_id, frozenset()) | after
            self._targets[meeting_id] = after
        await self._refresh_states(targets)

    async def _refresh_states(self, endpoint_ids: Iterable[str]) -> None:
        """Send a fresh `state` to those of these endpoints connected here whose schedule changed."""
        for endpoint_id in endpoint_ids:
            for socket in list(self.sockets.get(endpoint_id, ())):
                await self.send_state(endpoint_id, socket, only_if_changed=True)

    # --- paced media tests ------------------------------------------------

    async def _pace_loop(self) -> None:
        """Hand out the slots of tests that ended without a result (their lease ran out); results free theirs at once."""
        while True:
            await asyncio.sleep(PACE_INTERVAL)
            if not self.sockets:
                continue  # a process without agents leaves it to those with some
            try:
                for node_url in await self.readiness.pacer.waiting_nodes():
                    await self.readiness.dispatch(node_url, self.clock())
            except (RedisError, OSError) as exc:
                log.warning("paced tests not dispatched: %s", exc)
            except Exception:
                log.exception("paced tests not dispatched")

    # --- the notification channel ----------------------------------------

    async def _listen(self) -> None:
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(keys.AGENT_NOTIFY, keys.MEETINGS_CHANGED)
                self.schedule_changed(None)  # we may have missed changes while away
                async for message in pubsub.listen():
                    if message["type"] != "message":
                        continue
                    try:
                        if message["channel"] == keys.MEETINGS_CHANGED:
                            self.schedule_changed(changed_meeting(message["data"]))  # the refresh task sends
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
