"""The application factory: API, UI, health, metrics.

Other roles (the SFU node, the scheduler) are not built here: the composition
root (`app.serve`) passes their routes as `mounts` and their start/stop as
`hooks`, which run inside the app's lifespan once the shared services exist.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route

from vcs.config import Settings
from vcs.redis_server import redis_client, wait_until_ready
from web import ui
from web.api import agent, agent_ws, endpoints, live, meetings, provinces, reports, sessions
from web.errors import EXCEPTION_HANDLERS
from web.health import healthz, openapi, readyz
from web.metrics import Metrics, MetricsMiddleware, metrics_endpoint
from web.security_headers import SecurityHeadersMiddleware
from web.services import Services

__all__ = ["Hook", "create_app"]

log = logging.getLogger(__name__)


# Started in order once the services exist, stopped in reverse before they go.
Hook = Callable[[Services], AbstractAsyncContextManager[None]]


def create_app(
    settings: Settings,
    *,
    redis: aioredis.Redis | None = None,
    mounts: Sequence[BaseRoute] = (),
    hooks: Sequence[Hook] = (),
) -> Starlette:
    """The web app. `redis`: a client the app takes over and closes (default: one on settings.redis_url)."""
    if redis is None:
        redis = redis_client(settings.redis_url)
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await wait_until_ready(redis)
        try:
            services = Services.build(settings, redis)
            added = await services.registry.seed()
            if added:
                log.info("registry seeded with %d endpoints", added)
            app.state.services = services
            await services.hub.start()
            try:
                async with contextlib.AsyncExitStack() as roles:
                    for hook in hooks:
                        await roles.enter_async_context(hook(services))
                    yield
            finally:
                await services.hub.stop()
                with contextlib.suppress(RedisError, OSError):
                    await services.presence.flush()
        finally:
            await redis.aclose()

    state = State()  # one state for the app and the mounted UI: services, metrics, templates
    api = endpoints.routes + provinces.routes + agent.routes + agent_ws.routes + meetings.routes + live.routes + reports.routes + sessions.routes
    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint),
            Route("/api/v1/openapi.json", openapi),
            Mount("/api/v1", routes=api),
            *mounts,
            Mount("", app=ui.create_ui_app(state)),  # the organizer/ops web UI and /static: every other path, HTML errors
        ],
        middleware=[Middleware(SecurityHeadersMiddleware), Middleware(MetricsMiddleware, metrics=metrics)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state = state
    app.state.metrics = metrics
    app.state.templates = ui.build_templates()  # web.ui.rendering.render() reads it
    return app
