"""Endpoint agents at national scale: one Locust user per commune, speaking the agent control protocol.

`AgentUser` (abstract) is the protocol client: log in with the endpoint's
secret (`POST /api/v1/agent/login`), open the control socket with the token in
an `Authorization` header, heartbeat every 10 s over it, `sync` every 5 min,
answer `readiness` with `probe`, `start` with `start_seen`, `leave` with
`left`; on a drop reconnect with jittered exponential backoff (1 s, 2 s ... 30 s,
±50 %) and log in again when the token is refused. Every step is a Locust
request: HTTP ones through Locust's client, socket ones through `record`.

For each `start` it records the delay from the occurrence's start (its `start`
field) to the notice, by the message's `server_time` and by the local clock
("WS start notice ..."); the same for `join` against the warm-up time.

`EndpointUser` has no media: at `join` it reports `joined` at once, as if its
room's media were flowing (the media plane is `loadtests.media.MediaUser`).

Every `probe_every`-th user also probes the edges before it logs in: a wrong
secret (expected 401), an expired agent token on the socket (expected 403)
and on the HTTP heartbeat (expected 401), a malformed socket message
(expected `error`), and, once per process, repeated wrong secrets for an
unknown endpoint until the lockout (expected 429). A probe that gets the
expected rejection is a success named "expected ...".
"""

from __future__ import annotations

import logging
import random
import secrets
import time
from datetime import datetime
from typing import Any

import gevent
from gevent.event import Event
from locust import constant_pacing, task
from locust.contrib.fasthttp import FastHttpUser
from locust.exception import StopUser

from loadtests.agent_socket import AgentSocket, SocketDown, SocketRefused, ws_url
from loadtests.identities import Identity
from loadtests.run import expect_refusal, record, run_of

__all__ = ["AgentUser", "EndpointUser", "ProtocolError"]

log = logging.getLogger(__name__)

LOGIN = "/api/v1/agent/login"
HEARTBEAT = "/api/v1/agent/heartbeat"
FIRST_STATE_TIMEOUT = 20.0
BACKOFF_FIRST, BACKOFF_CAP = 1.0, 30.0
LOCKOUT_TRIES = 6  # the server allows 5 failures a minute per endpoint from one address


def _probe_address() -> dict[str, str]:
    """A client address of the probe's own in 198.18.0.0/15 (RFC 2544), through X-Forwarded-For, which
    uvicorn honours from 127.0.0.1: the server counts failed logins per address, and the agents share 127.0.0.1."""
    return {"X-Forwarded-For": f"198.18.{random.randrange(256)}.{random.randrange(1, 255)}"}


class ProtocolError(Exception):
    """The server answered something the protocol does not allow."""


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _occurrence_of(entry: dict[str, Any] | None) -> tuple[Any, Any] | None:
    return (entry.get("meeting_id"), entry.get("occurrence")) if entry else None


def _backoff(attempt: int) -> float:
    return min(BACKOFF_CAP, BACKOFF_FIRST * 2**attempt) * random.uniform(0.5, 1.5)


class AgentUser(FastHttpUser):
    """One endpoint's agent on the control plane; subclasses decide what a room does at `join` and `leave`."""

    abstract = True
    joins_from_schedule = False  # media users: join an occurrence already warming up when the schedule shows it
    connection_timeout = 20.0
    network_timeout = 30.0

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.shared = run_of(environment)
        self.settings = self.shared.settings
        self._pacing = constant_pacing(self.settings.heartbeat)
        self.identity: Identity | None = None
        self.token = ""
        self.token_expires = 0.0
        self.socket: AgentSocket | None = None
        self.first_state = Event()
        self.dropped_at: float | None = None
        self.schedule: list[dict] = []
        self.known: set[str] = set()  # meeting ids seen in our schedule
        self.status = "idle"
        self.current: dict | None = None  # the entry of the occurrence we are in
        self.last_sync = 0.0
        self.sync_sent_at: float | None = None
        self.expecting_error = False
        self.index = self.shared.number("agent")

    def wait_time(self) -> float:
        """The tick is the heartbeat: one every --vcs-heartbeat seconds, however long the tick took."""
        return self._pacing(self)

    # --- lifecycle ------------------------------------------------------

    def take_identity(self) -> Identity | None:
        pool = self.shared.pool
        return pool.take() if pool is not None else None

    def on_start(self) -> None:
        self.identity = self.take_identity()
        if self.identity is None:
            log.error("%s: no endpoint identity left (secrets file %s)", type(self).__name__, self.settings.secrets)
            raise StopUser()
        every = self.settings.probe_every
        probe = bool(every) and self.index % every == 0
        if probe:
            self.probe_edges(lockout=self.index == 0)
        self.login()
        try:
            self.open_socket("WS connect")
        except (SocketRefused, SocketDown) as exc:
            record(self.environment, "WS", "WS connect", 0, exception=exc)
            self.dropped_at = time.time()  # the next tick reconnects
            return
        if probe:
            self.probe_malformed()

    def on_stop(self) -> None:
        if self.socket is not None:
            self.socket.close()
            self.socket = None
        if self.identity is not None and self.shared.pool is not None and self.identity.endpoint_id.isdigit():
            self.shared.pool.give_back(self.identity)
        self.identity = None

    @task
    def beat(self) -> None:
        self.tick()

    def tick(self) -> None:
        """Once per heartbeat interval: reconnect if dropped, renew the token, sync now and then, heartbeat."""
        if self.socket is None or not self.socket.alive:
            self.reconnect()
            return
        if time.time() > self.token_expires:
            self.login()  # the socket stays; the next reconnect uses the new token
        if time.time() - self.last_sync >= self.settings.sync_every:
            self.send("sync", {"type": "sync"})
            self.sync_sent_at = time.time()
            self.last_sync = self.sync_sent_at
        message: dict[str, Any] = {"type": "heartbeat", "status": self.status}
        if self.current is not None:
            message.update(meeting_id=self.current["meeting_id"], occurrence=self.current["occurrence"])
        self.send("heartbeat", message)

    # --- the protocol ---------------------------------------------------

    def login(self) -> None:
        assert self.identity is not None
        body = {"endpoint_id": self.identity.endpoint_id, "secret": self.identity.secret}
        for attempt in range(6):
            with self.client.post(LOGIN, json=body, name="agent login", catch_response=True) as response:
                if response.status_code == 200:
                    data = response.json()
                    self.token = data["token"]
                    self.token_expires = time.time() + 0.9 * float(data.get("expires_in", 3600))
                    return
                if response.status_code == 429:
                    response.failure("429: locked out after failed logins")
                else:
                    response.failure(f"HTTP {response.status_code}: {(response.text or '')[:120]}")
            gevent.sleep(_backoff(attempt))
        raise StopUser()

    def open_socket(self, name: str, *, since: float | None = None) -> None:
        """Connect and wait for the first `state`; records `name` with the time since `since` (default: now)."""
        started = time.time()
        since = since if since is not None else started
        self.first_state.clear()
        socket = AgentSocket(ws_url(self.host), self.token, self.on_message, self.on_drop)
        socket.connect()  # SocketRefused / SocketDown are the caller's
        self.socket = socket
        if not self.first_state.wait(FIRST_STATE_TIMEOUT):
            socket.close()
            self.socket = None
            raise SocketDown(f"no state within {FIRST_STATE_TIMEOUT:.0f} s of connecting")
        self.dropped_at = None
        self.last_sync = time.time()
        record(self.environment, "WS", name, (time.time() - since) * 1000, sample=True)

    def reconnect(self) -> None:
        """Back with jittered backoff, logging in again on a refused token; bounded by the reconnect deadline."""
        since = self.dropped_at or time.time()
        expect_down = self.settings.expect_restart
        attempt = 0
        while time.time() - since < self.settings.reconnect_deadline:
            try:
                self.open_socket("WS reconnect", since=since)
                self.shared.samples.count("socket reconnects")
                return
            except SocketRefused as exc:
                if exc.status in (401, 403):
                    self.login()
                else:
                    self._attempt_failed(expect_down, f"HTTP {exc.status}")
            except SocketDown as exc:
                self._attempt_failed(expect_down, str(exc))
            gevent.sleep(_backoff(attempt))
            attempt += 1
        record(self.environment, "WS", "WS reconnect", (time.time() - since) * 1000,
               exception=ProtocolError(f"not back within {self.settings.reconnect_deadline:.0f} s"))
        self.dropped_at = time.time()  # try again from the next tick, counted once per deadline

    def _attempt_failed(self, expected: bool, reason: str) -> None:
        self.shared.samples.count("reconnect attempts refused")
        if expected:
            record(self.environment, "WS", "expected refusal: reconnect while the server restarts", 0)
        else:
            record(self.environment, "WS", "WS reconnect attempt", 0, exception=SocketDown(reason))

    def send(self, name: str, message: dict[str, Any]) -> None:
        if self.socket is None:
            return
        started = time.perf_counter()
        try:
            size = self.socket.send(message)
        except SocketDown as exc:
            if self.settings.expect_restart:  # the reader will report the drop
                record(self.environment, "WS", "expected drop: server restart", 0)
            else:
                record(self.environment, "WS", name, (time.perf_counter() - started) * 1000, exception=exc)
            return
        record(self.environment, "WS", name, (time.perf_counter() - started) * 1000, length=size)

    def on_drop(self, reason: str) -> None:
        self.dropped_at = time.time()
        self.shared.samples.count("socket drops")
        if self.settings.expect_restart:
            record(self.environment, "WS", "expected drop: server restart", 0)
        else:
            record(self.environment, "WS", "WS connection", 0, exception=SocketDown(f"dropped: {reason}"))

    def on_message(self, message: dict[str, Any], arrival: float) -> None:
        kind = message.get("type")
        self.shared.samples.count(f"received {kind}")
        if kind == "state":
            self.schedule = message.get("schedule") or []
            self.state_after_start(message)
            self.schedule_updates(arrival)
            if self.sync_sent_at is not None:
                record(self.environment, "WS", "WS sync → state", (arrival - self.sync_sent_at) * 1000)
                self.sync_sent_at = None
            self.first_state.set()
            if self.joins_from_schedule:
                self.join_scheduled(arrival)
        elif kind == "join":
            entry = message.get("entry") or {}
            self.notice("join", message, entry.get("warmup"), arrival)
            same = self.current is not None and _occurrence_of(entry) == _occurrence_of(self.current)
            if self.joins_from_schedule and same and entry.get("whep_url") == self.current.get("whep_url"):
                return  # joined from the schedule already (a `join` naming another node is a re-placement: followed)
            self.current = entry
            self.status = "joining"
            self.on_join(entry, arrival)
        elif kind == "start":
            delay_ms = self.notice("start", message, message.get("start"), arrival)
            self.reply("start_seen", message, delay_ms=round(delay_ms or 0.0, 1))
        elif kind == "leave":
            self.on_leave(message)
        elif kind == "readiness":
            self.reply("probe", message, rtt_ms=1.0)
        elif kind == "error":
            if self.expecting_error:
                self.expecting_error = False
                record(self.environment, "WS", "expected error: malformed message", 0)
            else:
                record(self.environment, "WS", "WS error from server", 0, exception=ProtocolError(str(message.get("reason"))))

    def join_scheduled(self, arrival: float) -> None:
        """Join an occurrence of the schedule that is between its warm-up and its end, as an agent that connects late does."""
        if self.current is not None:
            return
        now = time.time()
        for entry in self.schedule:
            if entry.get("warmup") and entry.get("end") and _epoch(entry["warmup"]) <= now < _epoch(entry["end"]):
                self.current = entry
                self.status = "joining"
                self.on_join(entry, arrival)
                return

    def schedule_updates(self, arrival: float) -> None:
        """How long a meeting an organizer of this process booked took to reach this agent's schedule."""
        booked = self.shared.booked
        for entry in self.schedule:
            meeting_id = entry.get("meeting_id")
            if meeting_id in booked and meeting_id not in self.known:
                self.known.add(meeting_id)
                record(self.environment, "WS", "schedule update after booking", (arrival - booked[meeting_id]) * 1000, sample=True)

    def state_after_start(self, message: dict[str, Any]) -> None:
        """A `state` pushed within a minute after our meeting's start: how long after T it was sent.

        The server refreshes every agent's schedule when a meeting's status
        changes; at T that refresh competes with the `start` notice itself.
        """
        if self.current is None or "server_time" not in message:
            return
        after = float(message["server_time"]) - _epoch(self.current["start"])
        if 0 <= after <= 60:
            self.shared.samples.add("state pushed after T (by server_time)", after * 1000)

    def notice(self, kind: str, message: dict[str, Any], due: str | None, arrival: float) -> float | None:
        """Record how late a lifecycle notice came, by server_time and by our clock; returns the former (ms)."""
        if not due or "server_time" not in message:
            record(self.environment, "WS", f"WS {kind} notice", 0, exception=ProtocolError(f"{kind} without its time"))
            return None
        due_at = _epoch(due)
        by_server = (float(message["server_time"]) - due_at) * 1000
        by_local = (arrival - due_at) * 1000
        record(self.environment, "WS", f"{kind} notice (by server_time)", max(0.0, by_server), sample=True)
        record(self.environment, "WS", f"{kind} notice (by local clock)", max(0.0, by_local), sample=True)
        # a notice before its time (a warm-up run early, a late booking) is kept apart, signed
        if by_server < 0:
            self.shared.samples.add(f"{kind} notice early (by server_time)", by_server)
        return by_server

    def reply(self, kind: str, message: dict[str, Any], **fields: Any) -> None:
        body = {"type": kind, "meeting_id": message.get("meeting_id"), "occurrence": message.get("occurrence"), **fields}
        self.send(f"WS {kind}", body)

    # --- what a room does at warm-up and at the end (media users override) ---

    def on_join(self, entry: dict[str, Any], arrival: float) -> None:
        self.status = "in_meeting"
        self.reply("joined", entry, tier=entry.get("max_tier", "720p"), join_ms=round((time.time() - arrival) * 1000, 1))

    def on_leave(self, message: dict[str, Any]) -> None:
        if self.current is not None and self.current.get("meeting_id") == message.get("meeting_id"):
            self.current = None
            self.status = "idle"
            self.reply("left", message)

    # --- the edges ------------------------------------------------------

    def probe_edges(self, *, lockout: bool) -> None:
        assert self.identity is not None
        wrong = {"endpoint_id": self.identity.endpoint_id, "secret": secrets.token_urlsafe(32)}
        expect_refusal(self, "POST", LOGIN, 401, "agent login, wrong secret", json=wrong, headers=_probe_address())
        expired = self.settings.expired_agent_token
        label = "expired agent token" if expired else "forged agent token"
        token = expired or "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIwMDA3MCJ9.forged"
        expect_refusal(self, "POST", HEARTBEAT, 401, f"heartbeat, {label}", json={}, headers={"Authorization": f"Bearer {token}"})
        started = time.time()
        try:
            AgentSocket(ws_url(self.host), token, lambda m, t: None, lambda r: None).connect()
            record(self.environment, "WS", f"expected 403: socket, {label}", (time.time() - started) * 1000,
                   exception=ProtocolError("the socket was accepted"))
        except SocketRefused as exc:
            ok = exc.status == 403
            record(self.environment, "WS", f"expected 403: socket, {label}", (time.time() - started) * 1000,
                   exception=None if ok else ProtocolError(f"got HTTP {exc.status}"))
        except SocketDown as exc:
            record(self.environment, "WS", f"expected 403: socket, {label}", (time.time() - started) * 1000, exception=exc)
        if lockout:
            unknown = {"endpoint_id": f"lt-probe-{secrets.token_hex(4)}", "secret": "wrong"}
            address = _probe_address()
            for attempt in range(LOCKOUT_TRIES):
                status = 429 if attempt == LOCKOUT_TRIES - 1 else 401
                expect_refusal(self, "POST", LOGIN, status, "agent login, unknown endpoint" if status == 401 else "agent login after 5 failures", json=unknown, headers=address)

    def probe_malformed(self) -> None:
        """A message without a type: the server must answer `error` and keep the socket."""
        self.expecting_error = True
        try:
            self.socket.send({"no_type": True})  # type: ignore[union-attr]
        except SocketDown:
            self.expecting_error = False


class EndpointUser(AgentUser):
    """A commune's meeting room on the control plane: heartbeats, schedule, lifecycle notices, no media."""
