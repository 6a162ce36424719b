"""/api/v1/agent/ws: an agent's control socket (see docs/agent-protocol.md)."""

from __future__ import annotations

import json
import logging

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from vcs.errors import Unauthorized
from web.auth import agent_endpoint
from web.services import services

__all__ = ["routes"]

log = logging.getLogger(__name__)

MAX_MESSAGE = 16_384
REPORTS = {"joined": "joined", "failed": "failed", "left": "left", "joining": "joining", "stats": None, "probe": None, "start_seen": None}
REPORT_FIELDS = ("tier", "join_ms", "bitrate_kbps", "loss_pct", "rtt_ms", "reason", "delay_ms")


async def agent_socket(socket: WebSocket) -> None:
    try:
        endpoint_id = agent_endpoint(socket)
    except Unauthorized:
        await socket.close(code=4401, reason="unauthorized")  # closed before accept: the client sees HTTP 403
        return
    svc = services(socket)
    await socket.accept()
    svc.hub.add(endpoint_id, socket)
    try:
        await svc.presence.heartbeat(endpoint_id, svc.clock())
        await svc.hub.send_state(endpoint_id, socket)
        while True:
            text = await socket.receive_text()
            if len(text) > MAX_MESSAGE:
                await socket.send_text(json.dumps({"type": "error", "reason": "message too large"}))
                continue
            await handle(svc, endpoint_id, socket, text)
    except WebSocketDisconnect:
        pass
    finally:
        svc.hub.remove(endpoint_id, socket)


async def handle(svc, endpoint_id: str, socket: WebSocket, text: str) -> None:
    try:
        message = json.loads(text)
        kind = message["type"]
    except (ValueError, KeyError, TypeError):
        await socket.send_text(json.dumps({"type": "error", "reason": "expected a JSON object with a type"}))
        return
    now = svc.clock()
    if kind == "heartbeat":
        svc.presence.beat(endpoint_id, now)
    elif kind == "sync":
        await svc.hub.send_state(endpoint_id, socket)
    elif kind in REPORTS:
        meeting_id, occurrence = message.get("meeting_id"), message.get("occurrence")
        if not isinstance(meeting_id, str) or not isinstance(occurrence, str):
            await socket.send_text(json.dumps({"type": "error", "reason": f"{kind} needs meeting_id and occurrence"}))
            return
        if endpoint_id not in await svc.roster.participants(meeting_id) and not await svc.roster.hosts(meeting_id, endpoint_id):
            await socket.send_text(json.dumps({"type": "error", "reason": "not a participant of that meeting"}))
            return
        fields = {k: message.get(k) for k in REPORT_FIELDS if isinstance(message.get(k), (int, float, str))}
        await svc.live.report(meeting_id, occurrence[:40], endpoint_id, REPORTS[kind], fields, now)
        svc.presence.beat(endpoint_id, now)
    else:
        await socket.send_text(json.dumps({"type": "error", "reason": f"unknown type {kind!r}"}))


routes = [WebSocketRoute("/agent/ws", agent_socket)]
