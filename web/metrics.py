"""Prometheus metrics: request counts and latency per route, plus registry gauges."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from web.services import services

__all__ = ["Metrics", "MetricsMiddleware", "metrics_endpoint"]


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
            # the route template, not the raw path, keeps label cardinality bounded
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            prefix = scope.get("root_path", "")
            method = scope["method"]
            self.metrics.requests.labels(method, prefix + template, str(status)).inc()
            self.metrics.latency.labels(method, prefix + template).observe(time.perf_counter() - started)


async def metrics_endpoint(request: Request) -> Response:
    svc = services(request)
    metrics: Metrics = request.app.state.metrics
    metrics.endpoints.set(len(await svc.registry.all()))
    metrics.online.set(len(await svc.presence.online_ids(svc.clock())))
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
