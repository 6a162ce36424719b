"""Prometheus metrics: request counts and latency per route, plus registry gauges.

Every label comes from a fixed set, whatever the request: the method is one
of the HTTP methods the app serves (anything else is "OTHER"), the route is
the template that matched ("/api/v1/meetings/{meeting_id}"), a mount's
prefix when nothing inside it matched, or "unmatched". Without that, each
made-up method or path would be a new series, held for the life of the
process and rendered on every scrape. The exposition itself is rendered in
a worker thread, so a scrape never holds the event loop that also forwards
media and answers agents.
"""

from __future__ import annotations

import asyncio
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vcs.recordings import STATES as RECORDING_STATES
from vcs.recordings import RecordingLog
from web.services import services

__all__ = ["Metrics", "MetricsMiddleware", "metrics_endpoint", "method_label", "route_label"]

RECENT_RECORDINGS_S = 24 * 3600
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(method: str) -> str:
    return method if method in METHODS else "OTHER"


def route_label(scope: Scope) -> str:
    """The matched route's template, with the prefix of the mounts it sits in; bounded by the app's routes."""
    route = scope.get("route")
    prefix = scope.get("root_path", "")
    if isinstance(route, (Route, WebSocketRoute)):
        return prefix + route.path
    if isinstance(route, Mount) and route.path:  # the UI, mounted at the root, catches every other path
        return prefix + "/*"  # root_path already ends with the mount's own path
    return "unmatched"


class Metrics:
    """One registry per app, so that several apps in one process (tests) do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("vcs_http_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram(
            "vcs_http_request_seconds", "HTTP request latency", ["method", "route"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5),
        )
        self.endpoints = Gauge("vcs_endpoints", "Registered endpoints", registry=self.registry)
        self.online = Gauge("vcs_endpoints_online", "Endpoints with a recent heartbeat", registry=self.registry)
        self.recordings = Gauge("vcs_recordings", "Recordings started in the last day, by state", ["state"], registry=self.registry)
        self.recording_bytes = Gauge("vcs_recording_bytes", "Bytes written by the recordings in progress", registry=self.registry)


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            method, route = method_label(scope["method"]), route_label(scope)
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)


async def metrics_endpoint(request: Request) -> Response:
    svc = services(request)
    metrics: Metrics = request.app.state.metrics
    metrics.endpoints.set(len(await svc.registry.all()))
    metrics.online.set(len(await svc.presence.online_ids(svc.clock())))
    recent = await RecordingLog(svc.redis).started_since(svc.clock() - RECENT_RECORDINGS_S)
    for state in RECORDING_STATES:  # a fixed set of labels, whatever the recordings say
        metrics.recordings.labels(state).set(sum(r.get("state") == state for r in recent))
    metrics.recording_bytes.set(sum(int(r.get("bytes") or 0) for r in recent if r.get("state") == "recording"))
    return Response(await asyncio.to_thread(generate_latest, metrics.registry), media_type=CONTENT_TYPE_LATEST)
