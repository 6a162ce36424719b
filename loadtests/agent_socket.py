"""The agent's control WebSocket (docs/agent-protocol.md) for a greenlet: connect, read, send JSON.

websocket-client's blocking socket calls yield under gevent's monkey-patching,
so each socket gets one reader greenlet that hands every message, with the
local time it arrived, to `on_message`; sends come from the owning user's
greenlet or from the reader (replies), serialized by the library's lock.
When the connection ends for any reason `on_drop` is called once, from the
reader. Timing and Locust events are the caller's business.

    SocketRefused   the handshake got an HTTP status (`status`: 403 for a bad token)
    SocketDown      connecting failed below HTTP (refused, reset, timed out)
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import gevent
import websocket

__all__ = ["AgentSocket", "SocketDown", "SocketRefused", "ws_url"]

log = logging.getLogger(__name__)

PATH = "/api/v1/agent/ws"


class SocketRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class SocketDown(Exception):
    pass


def ws_url(base_url: str) -> str:
    base = base_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base[len("https://") :] + PATH
    return "ws://" + base.removeprefix("http://") + PATH


class AgentSocket:
    def __init__(
        self,
        url: str,
        token: str,
        on_message: Callable[[dict[str, Any], float], None],
        on_drop: Callable[[str], None],
        *,
        timeout: float = 20.0,
    ) -> None:
        self.url = url
        self._token = token
        self._on_message = on_message
        self._on_drop = on_drop
        self._timeout = timeout
        self._ws: websocket.WebSocket | None = None
        self._reader: gevent.Greenlet | None = None
        self._closing = False
        self.alive = False

    def connect(self) -> None:
        """Open the socket and start reading; raises SocketRefused or SocketDown."""
        try:
            ws = websocket.create_connection(
                self.url,
                header=[f"Authorization: Bearer {self._token}"],
                timeout=self._timeout,
                enable_multithread=True,  # a lock around sends: replies come from the reader greenlet
                skip_utf8_validation=True,
            )
        except websocket.WebSocketBadStatusException as exc:
            raise SocketRefused(exc.status_code, f"handshake refused with HTTP {exc.status_code}") from None
        except (OSError, websocket.WebSocketException) as exc:
            raise SocketDown(f"{type(exc).__name__}: {exc}") from None
        ws.settimeout(None)  # the reader waits as long as it takes; sends are small
        self._ws = ws
        self.alive = True
        self._reader = gevent.spawn(self._read, ws)

    def send(self, message: dict[str, Any]) -> int:
        """Send one JSON message; returns its size. Raises SocketDown when the socket is gone."""
        ws = self._ws
        if ws is None or not self.alive:
            raise SocketDown("not connected")
        text = json.dumps(message, separators=(",", ":"))
        try:
            ws.send(text)
        except (OSError, websocket.WebSocketException) as exc:
            raise SocketDown(f"{type(exc).__name__}: {exc}") from None
        return len(text)

    def close(self) -> None:
        """Close without reporting a drop. Safe twice."""
        self._closing = True
        self.alive = False
        ws, self._ws = self._ws, None
        if ws is not None:
            try:
                ws.close(timeout=1)
            except Exception:  # already broken: nothing to tell the server
                pass
        reader, self._reader = self._reader, None
        if reader is not None and reader is not gevent.getcurrent():
            reader.kill(block=False)

    def _read(self, ws: websocket.WebSocket) -> None:
        reason = "closed"
        try:
            while True:
                opcode, data = ws.recv_data()
                arrival = time.time()
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
                    reason = f"closed by server (code {code})"
                    break
                if opcode not in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
                    continue
                try:
                    message = json.loads(data)
                except ValueError:
                    log.warning("not JSON from %s: %r", self.url, data[:100])
                    continue
                if isinstance(message, dict):
                    self._on_message(message, arrival)
        except (OSError, websocket.WebSocketException) as exc:
            reason = f"{type(exc).__name__}: {exc}"
        except gevent.GreenletExit:
            return
        except Exception:
            log.exception("agent socket reader")
            reason = "reader crashed"
        self.alive = False
        if not self._closing:
            self._on_drop(reason)
