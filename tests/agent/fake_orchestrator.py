"""A small stand-in for the orchestrator's agent API, run in the test's own event loop.

Implements the agent protocol's server side just enough to drive an agent:
login (401 for a wrong secret, 429 + Retry-After past a limit), the control
WebSocket (a `state` on connect, every message received recorded), pushes,
and a clock that may differ from the test machine's. Not the real server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from datetime import UTC, datetime

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from tests.conftest import TEST_SECRET, free_port
from vcs.media_tokens import mint_media_token


class FakeOrchestrator:
    def __init__(self, secrets: dict[str, str], *, max_failures: int = 100, retry_after: int = 2, expires_in: int = 3600) -> None:
        self.secrets = secrets
        self.max_failures, self.retry_after, self.expires_in = max_failures, retry_after, expires_in
        self.schedules: dict[str, list[dict]] = {}
        self.received: list[tuple[str, dict]] = []
        self.logins: list[tuple[str, int, float]] = []  # endpoint, status, monotonic time
        self.failures: dict[str, int] = {}
        self.tokens: dict[str, str] = {}
        self.sockets: dict[str, WebSocket] = {}
        self.ws_refusals = 0
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = Starlette(routes=[Route("/api/v1/agent/login", self.login, methods=["POST"]), WebSocketRoute("/api/v1/agent/ws", self.ws)])
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off", ws="websockets-sansio"))
        self._task: asyncio.Task | None = None

    @staticmethod
    def now() -> float:
        return time.time()

    async def start(self) -> None:
        self._task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        for socket in list(self.sockets.values()):
            with contextlib.suppress(Exception):
                await socket.close(1001)
        self.server.should_exit = True
        if self._task is not None:
            await self._task

    async def login(self, request: Request) -> JSONResponse:
        body = await request.json()
        endpoint, secret = body.get("endpoint_id"), body.get("secret")
        if self.failures.get(endpoint, 0) >= self.max_failures:
            self.logins.append((endpoint, 429, time.monotonic()))
            return JSONResponse({"error": "too many"}, status_code=429, headers={"Retry-After": str(self.retry_after)})
        if self.secrets.get(endpoint) != secret:
            self.failures[endpoint] = self.failures.get(endpoint, 0) + 1
            self.logins.append((endpoint, 401, time.monotonic()))
            return JSONResponse({"error": "wrong endpoint id or secret"}, status_code=401)
        token = uuid.uuid4().hex
        self.tokens[token] = endpoint
        self.logins.append((endpoint, 200, time.monotonic()))
        return JSONResponse({"token": token, "expires_in": self.expires_in, "server_time": self.now()})

    async def ws(self, websocket: WebSocket) -> None:
        token = websocket.headers.get("authorization", "").removeprefix("Bearer ")
        endpoint = self.tokens.get(token)
        if endpoint is None:
            self.ws_refusals += 1
            await websocket.close(code=4401)  # before accept: the client sees HTTP 403
            return
        await websocket.accept()
        self.sockets[endpoint] = websocket
        try:
            await self.send_state(endpoint)
            while True:
                message = json.loads(await websocket.receive_text())
                self.received.append((endpoint, message))
                if message.get("type") == "sync":
                    await self.send_state(endpoint)
        except WebSocketDisconnect:
            pass
        finally:
            if self.sockets.get(endpoint) is websocket:
                del self.sockets[endpoint]

    async def send_state(self, endpoint: str) -> None:
        await self.push(endpoint, {"type": "state", "endpoint_id": endpoint, "schedule": self.schedules.get(endpoint, [])})

    async def push(self, endpoint: str, message: dict | str) -> None:
        socket = self.sockets[endpoint]
        if isinstance(message, dict):
            await socket.send_text(json.dumps({"server_time": self.now(), **message}))
        else:
            await socket.send_text(message)

    def revoke(self, endpoint: str) -> None:
        for token in [t for t, e in self.tokens.items() if e == endpoint]:
            del self.tokens[token]

    def messages(self, endpoint: str, kind: str) -> list[dict]:
        return [m for e, m in self.received if e == endpoint and m.get("type") == kind]


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def schedule_entry(sfu_url: str, *, warmup_in: float = 0.5, end_in: float = 60.0, role: str = "participant", endpoint: str = "00070", meeting: str = "m1", now: float | None = None) -> dict:
    """A protocol entry for `endpoint` whose rooms are on the small WHIP/WHEP peer at `sfu_url`."""
    now = time.time() if now is None else now
    room = f"{meeting}-room"

    def token(kind: str) -> str:
        return mint_media_token(TEST_SECRET, room=room, identity=endpoint, role=kind, ttl=600, now=now - 60)

    return {
        "meeting_id": meeting, "occurrence": iso(now + warmup_in + 1), "title": "Hội nghị thử", "role": role,
        "warmup": iso(now + warmup_in), "start": iso(now + warmup_in + 1), "end": iso(now + end_in),
        "room": room, "whep_url": f"{sfu_url}/sfu/whep/{room}", "whip_url": f"{sfu_url}/sfu/whip/{room}",
        "subscribe_token": token("subscribe"), "publish_token": token("publish"), "max_tier": "720p",
        "publish_tier": "360p" if role == "host" else "180p",
    }  # fmt: skip

