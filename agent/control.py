"""The agent: the program in a commune meeting room (docs/agent-protocol.md).

`Agent` logs in with its endpoint id and secret, keeps one WebSocket to the
orchestrator (heartbeat every 10 s, `sync` after a reconnect and every
5 min), and hands the schedule to its `Room` (agent.room), which joins
and leaves the media rooms on the server's clock, from its disk cache when the
orchestrator is out of reach. A wrong secret (401) or too many failures (429,
Retry-After honoured) slow the retries down; a malformed server message is
logged and skipped. The secret is never logged.

    ControlError        the orchestrator answered something unusable
     +-- LoginRejected  401 at login: wrong endpoint id or secret
     +-- RetryLater     429 or 503: come back after `retry_after` seconds
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from agent.media import PublishMedia
from agent.media_test import TestOrder, run_media_test
from agent.room import Room, RoomOptions
from agent.schedule_cache import Backoff, ClockOffset, ScheduleCache, ScheduleEntry, parse_entries, parse_time, server_time_of

__all__ = ["Agent", "AgentConfig", "ControlError", "LoginRejected", "RetryLater"]

log = logging.getLogger(__name__)

UNAUTHORIZED_CLOSE_CODES = {1008, 4401, 4403}
STABLE_AFTER = 30.0  # seconds a control connection must last before the backoff starts over
REPORTS = {"joined", "left", "failed", "stats", "start_seen", "probe", "test_result"}  # kept for the next connection when sent offline


class ControlError(Exception):
    pass


class LoginRejected(ControlError):
    pass


class RetryLater(ControlError):
    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class AgentConfig:
    server_url: str
    endpoint_id: str
    secret: str = field(repr=False)
    state_dir: Path | None = None
    room: RoomOptions = RoomOptions()
    heartbeat_interval: float = 10.0
    sync_interval: float = 300.0

    @property
    def ws_url(self) -> str:
        base = self.server_url.rstrip("/")
        return "ws" + base.removeprefix("http") + "/api/v1/agent/ws"


class Agent:
    def __init__(self, config: AgentConfig, http: httpx.AsyncClient, media: PublishMedia | None = None, *,
                 clock: Callable[[], float] = time.time, rand: Callable[[], float] = random.random) -> None:  # fmt: skip
        self.config = config
        self.http = http
        self.clock = ClockOffset(clock)
        self._rand = rand
        cache = ScheduleCache(config.state_dir) if config.state_dir else None
        self.room = Room(config.endpoint_id, http, self.clock, self.send, media=media, cache=cache, options=config.room,
                         on_tokens_rejected=self.request_sync, rand=rand)  # fmt: skip
        self.connected = False
        self.login_failures = 0
        self._token: str | None = None
        self._token_renew_at = 0.0
        self._ws: ClientConnection | None = None
        self._outbox: deque[dict] = deque(maxlen=64)
        self._sync_wanted = asyncio.Event()
        self.media = media
        self._test: asyncio.Task | None = None  # the media test under way (one at a time)
        self.tests_run = 0
        self.test_spans: list[tuple[float, float]] = []  # (start, end) of each media test run, monotonic seconds
        self._task: asyncio.Task | None = None
        self._stopping = False
        self._handlers = {
            "state": self._on_state, "join": self._on_join, "start": self._on_start, "leave": self._on_leave,
            "readiness": self._on_readiness, "floor": self._on_floor, "error": self._on_error, "test": self._on_test,
        }  # fmt: skip

    async def start(self) -> None:
        if self._task is None:
            self._stopping = False
            await self.room.start()
            self._task = asyncio.create_task(self._run(), name=f"agent-{self.config.endpoint_id}")

    async def stop(self) -> None:
        """Leave the meeting (telling the orchestrator while still connected), then close the connection. Safe twice."""
        await self.room.stop()
        test, self._test = self._test, None
        if test is not None:
            test.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await test
        task, self._task = self._task, None
        if task is not None:
            self._stopping = True  # ends the loop even if a library swallows the cancellation
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def send(self, message: dict) -> None:
        """Send now when connected; a report sent while offline waits for the next connection."""
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(ConnectionClosed):
                await ws.send(json.dumps(message))
                return
        if message.get("type") in REPORTS:
            self._outbox.append(message)

    def request_sync(self) -> None:
        self._sync_wanted.set()

    # --- the control connection ----------------------------------------------

    async def _run(self) -> None:
        backoff = Backoff(rand=self._rand)
        connected_before = False
        try:
            while not self._stopping:
                try:
                    token = await self._session_token()
                    async with connect(self.config.ws_url, additional_headers={"Authorization": f"Bearer {token}"},
                                       open_timeout=10, ping_interval=20, ping_timeout=20, max_size=4 * 2**20) as ws:  # fmt: skip
                        connected_at = time.monotonic()
                        await self._serve(ws, resync=connected_before)
                        connected_before = True
                    if time.monotonic() - connected_at > STABLE_AFTER:
                        backoff.reset()  # a connection that lasted: start over at 1 s (a flapping one keeps backing off)
                    delay = backoff.next()
                    log.info("endpoint %s: control connection closed; reconnecting in %.1fs", self.config.endpoint_id, delay)
                except LoginRejected:
                    self.login_failures += 1
                    delay = backoff.next()
                    log.error("endpoint %s: login refused: wrong endpoint id or secret; retrying in %.0fs", self.config.endpoint_id, delay)
                except RetryLater as exc:
                    delay = max(exc.retry_after, backoff.next())
                    log.warning("endpoint %s: %s; retrying in %.0fs", self.config.endpoint_id, exc, delay)
                except InvalidStatus as exc:
                    status = exc.response.status_code
                    if status in (401, 403):
                        self._token = None  # expired or revoked: log in again
                    delay = backoff.next()
                    if status in (429, 503):
                        delay = max(delay, _retry_after(exc.response.headers.get("retry-after")))
                    log.warning("endpoint %s: control socket refused (HTTP %d); retrying in %.1fs", self.config.endpoint_id, status, delay)
                except (OSError, TimeoutError, httpx.HTTPError, InvalidHandshake, ConnectionClosed, ControlError) as exc:
                    delay = backoff.next()
                    log.warning("endpoint %s: orchestrator unreachable (%s: %s); retrying in %.1fs", self.config.endpoint_id, type(exc).__name__, exc, delay)
                self.connected = False
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("endpoint %s: control loop failed", self.config.endpoint_id)
        finally:
            self.connected = False

    async def _session_token(self) -> str:
        if self._token is not None and time.monotonic() < self._token_renew_at:
            return self._token
        self._token = None
        url = self.config.server_url.rstrip("/") + "/api/v1/agent/login"
        response = await self.http.post(url, json={"endpoint_id": self.config.endpoint_id, "secret": self.config.secret})
        if response.status_code == 401:
            raise LoginRejected("wrong endpoint id or secret")
        if response.status_code in (429, 503):
            raise RetryLater(f"login: HTTP {response.status_code}", _retry_after(response.headers.get("retry-after")))
        if response.status_code != 200:
            raise ControlError(f"login: HTTP {response.status_code}")
        try:
            body = response.json()
            token, expires_in = body["token"], float(body.get("expires_in", 3600))
            if not isinstance(token, str) or not token:
                raise ValueError("no token")
        except (ValueError, KeyError, TypeError) as exc:
            raise ControlError(f"login: unusable answer ({exc})") from None
        if (server_time := server_time_of(body)) is not None:
            self.clock.observe(server_time)
        self.login_failures = 0
        self._token = token
        self._token_renew_at = time.monotonic() + max(1.0, expires_in - min(300.0, expires_in / 5))
        return token

    async def _serve(self, ws: ClientConnection, resync: bool) -> None:
        self._ws = ws
        self.connected = True
        log.info("endpoint %s: connected to %s", self.config.endpoint_id, self.config.server_url)
        tasks = [asyncio.create_task(self._heartbeats()), asyncio.create_task(self._syncs())]
        try:
            if resync:
                await self.send({"type": "sync"})
            while self._outbox:
                await self.send(self._outbox.popleft())
            async for raw in ws:
                await self._handle(raw)
        except ConnectionClosed:
            pass
        finally:
            self._ws = None
            self.connected = False
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if ws.close_code in UNAUTHORIZED_CLOSE_CODES:
            self._token = None

    async def _heartbeats(self) -> None:
        while True:
            message = {"type": "heartbeat", "status": self.room.status}
            if (entry := self.room.meeting) is not None:
                message.update(meeting_id=entry.meeting_id, occurrence=entry.occurrence)
            await self.send(message)
            await asyncio.sleep(self.config.heartbeat_interval)

    async def _syncs(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.sync_interval):
                    await self._sync_wanted.wait()
            self._sync_wanted.clear()
            await self.send({"type": "sync"})

    # --- messages from the orchestrator ----------------------------------------

    async def _handle(self, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            log.warning("endpoint %s: ignoring a message that is not JSON", self.config.endpoint_id)
            return
        kind = message.get("type") if isinstance(message, dict) else None
        handler = self._handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            log.warning("endpoint %s: ignoring a message of unknown type %r", self.config.endpoint_id, kind)
            return
        if (server_time := server_time_of(message)) is not None:
            self.clock.observe(server_time)
        try:
            await handler(message)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("endpoint %s: ignoring a malformed %r message: %s", self.config.endpoint_id, kind, exc)

    async def _on_state(self, message: dict) -> None:
        if message.get("endpoint_id", self.config.endpoint_id) != self.config.endpoint_id:
            raise ValueError(f"a state for another endpoint ({str(message.get('endpoint_id'))[:20]})")
        self.room.set_schedule(parse_entries(message["schedule"]), server_time_of(message))

    async def _on_join(self, message: dict) -> None:
        self.room.join_now(ScheduleEntry.from_dict(message["entry"]))

    async def _on_start(self, message: dict) -> None:
        meeting_id, occurrence = _text(message, "meeting_id"), _text(message, "occurrence")
        delay_ms = round((self.clock.now() - parse_time(message.get("start"), "start")) * 1000)
        await self.send({"type": "start_seen", "meeting_id": meeting_id, "occurrence": occurrence, "delay_ms": delay_ms})

    async def _on_leave(self, message: dict) -> None:
        self.room.leave_now((_text(message, "meeting_id"), _text(message, "occurrence")))

    async def _on_readiness(self, message: dict) -> None:
        meeting_id, occurrence = _text(message, "meeting_id"), _text(message, "occurrence")
        rtt_ms = None
        if (ws := self._ws) is not None:
            sent = time.monotonic()
            with contextlib.suppress(TimeoutError, ConnectionClosed):
                async with asyncio.timeout(5):
                    await (await ws.ping())
                rtt_ms = round((time.monotonic() - sent) * 1000, 1)
        await self.send({"type": "probe", "meeting_id": meeting_id, "occurrence": occurrence, "rtt_ms": rtt_ms})
        if isinstance(message.get("test"), dict):
            await self._on_test(message)

    async def _on_test(self, message: dict) -> None:
        """Run the ordered media test in the background; an order while one runs waits for no one: it is skipped."""
        order = TestOrder.from_dict(message["test"])
        if self._test is not None and not self._test.done():
            log.info("endpoint %s: a media test is already under way; %s skipped", self.config.endpoint_id, order.test_id)
            return
        self._test = asyncio.create_task(self._run_test(order), name=f"test-{self.config.endpoint_id}")

    async def _run_test(self, order: TestOrder) -> None:
        options = self.config.room
        publish_tier = options.publish_tier if options.publish_tier not in (None, "none", "audio") else "180p"
        started = time.monotonic()
        try:
            result = await run_media_test(self.http, order, self.media, publish_tier=publish_tier, link_cap_kbps=options.link_cap_kbps)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # whatever aiortc raises: the test failed, the agent goes on
            log.exception("endpoint %s: media test %s failed", self.config.endpoint_id, order.test_id)
            result = {"planned_tier": order.tier, "error": f"{type(exc).__name__}: {exc}"[:300]}
        self.tests_run += 1
        self.test_spans.append((started, time.monotonic()))
        log.info("endpoint %s: media test %s: %s", self.config.endpoint_id, order.test_id, result)
        await self.send({"type": "test_result", "test_id": order.test_id, **order.subject, "result": result})

    async def _on_floor(self, message: dict) -> None:
        endpoint_id = message.get("endpoint_id")
        self.room.set_floor((_text(message, "meeting_id"), _text(message, "occurrence")), endpoint_id if isinstance(endpoint_id, str) else None)

    async def _on_error(self, message: dict) -> None:
        log.warning("endpoint %s: the orchestrator refused a message: %s", self.config.endpoint_id, str(message.get("reason"))[:200])


def _text(message: dict, name: str) -> str:
    value = message.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string")
    return value


def _retry_after(value: str | None) -> float:
    """Seconds of a Retry-After header (at least 1; 5 when absent or a date)."""
    try:
        return max(1.0, float(value or ""))
    except ValueError:
        return 5.0
