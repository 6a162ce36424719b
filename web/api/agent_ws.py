"""/api/v1/agent/ws: an agent's control socket (see docs/agent-protocol.md).

Text frames of JSON only: a binary frame closes the socket with 1003
(unsupported data). Reports go only to an occurrence of a meeting the agent
takes part in or hosts, and only around its time.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from scheduler.live import reportable_occurrence
from vcs.errors import Unauthorized
from web.auth import agent_endpoint
from web.services import services

__all__ = ["routes"]

log = logging.getLogger(__name__)

MAX_MESSAGE = 16_384
REPORTS = {"joined": "joined", "failed": "failed", "left": "left", "joining": "joining", "stats": None, "probe": None, "start_seen": None}
REPORT_FIELDS = ("tier", "join_ms", "bitrate_kbps", "loss_pct", "rtt_ms", "reason", "delay_ms")
UNSUPPORTED_DATA = 1003  # RFC 6455 close code


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
            message = await socket.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if text is None:
                await socket.close(code=UNSUPPORTED_DATA, reason="JSON text frames only")
                break
            if len(text) > MAX_MESSAGE:
                await _error(socket, "message too large")
                continue
            await handle(svc, endpoint_id, socket, text)
    except WebSocketDisconnect:
        pass
    finally:
        svc.hub.remove(endpoint_id, socket)


async def _error(socket: WebSocket, reason: str) -> None:
    await socket.send_text(json.dumps({"type": "error", "reason": reason}))


async def handle(svc, endpoint_id: str, socket: WebSocket, text: str) -> None:
    try:
        message = json.loads(text)
        kind = message["type"]
    except (ValueError, KeyError, TypeError):
        await _error(socket, "expected a JSON object with a type")
        return
    now = svc.clock()
    if kind == "heartbeat":
        svc.presence.beat(endpoint_id, now)
    elif kind == "sync":
        await svc.hub.send_state(endpoint_id, socket)
    elif kind == "test_result":
        subject = await svc.readiness.subject_for_report(endpoint_id, message, now)
        if isinstance(subject, str):
            await _error(socket, subject)
            return
        result = message.get("result")
        if not isinstance(result, dict):
            await _error(socket, "test_result needs a result object")
            return
        entry = await svc.readiness.record(subject, endpoint_id, result, now)
        metrics = getattr(socket.app.state, "metrics", None)
        if metrics is not None:
            metrics.media_tests.labels("drill" if subject.drill_id else "occurrence", entry["status"]).inc()
        svc.presence.beat(endpoint_id, now)
    elif kind in REPORTS:
        meeting_id, occurrence = message.get("meeting_id"), message.get("occurrence")
        if not isinstance(meeting_id, str) or not isinstance(occurrence, str):
            await _error(socket, f"{kind} needs meeting_id and occurrence")
            return
        meeting = await svc.roster.meeting(meeting_id)
        if meeting is None:
            await _error(socket, "no such meeting")
            return
        if endpoint_id not in await svc.roster.participants(meeting.id) and not await svc.roster.hosts(meeting.id, endpoint_id):
            await _error(socket, "not a participant of that meeting")
            return
        key = reportable_occurrence(meeting, occurrence, datetime.fromtimestamp(now, UTC))
        if key is None:
            await _error(socket, "not an occurrence of that meeting under way")
            return
        fields = {k: message.get(k) for k in REPORT_FIELDS if isinstance(message.get(k), (int, float, str))}
        await svc.live.report(meeting.id, key, endpoint_id, REPORTS[kind], fields, now)
        svc.presence.beat(endpoint_id, now)
    else:
        await _error(socket, f"unknown type {kind!r}")


routes = [WebSocketRoute("/agent/ws", agent_socket)]
