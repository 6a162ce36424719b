"""The application factory: API, health, metrics; the SFU node and scheduler join in `vcs serve`."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route

from vcs.config import Settings
from vcs.redis_server import connected
from scheduler.actions import LifecycleActions
from scheduler.runner import SchedulerRole
from web.api import agent, agent_ws, endpoints, live, meetings, provinces, sessions
from web.errors import EXCEPTION_HANDLERS
from web.health import healthz, openapi, readyz
from web.metrics import Metrics, MetricsMiddleware, metrics_endpoint
from web.services import Services
from web import ui

__all__ = ["create_app"]

log = logging.getLogger(__name__)



def create_app(settings: Settings, *, run_scheduler: bool = False) -> Starlette:
    """The web app; with `run_scheduler` it also competes for the scheduler lease (as `vcs serve` does)."""
    if not settings.redis_url:
        raise ValueError("create_app needs a resolved redis_url (see vcs.redis_server.open_redis)")
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with connected(settings.redis_url) as redis:
            services = Services.build(settings, redis)
            added = await services.registry.seed()
            if added:
                log.info("registry seeded with %d endpoints", added)
            app.state.services = services
            await services.hub.start()
            scheduler = None
            if run_scheduler:
                scheduler = SchedulerRole(
                    services.meetings,
                    LifecycleActions(services.meetings, services.roster, public_url=settings.public_url, sfu=services.sfu_control),
                )
                await scheduler.start()
            app.state.scheduler = scheduler
            try:
                yield
            finally:
                if scheduler is not None:
                    await scheduler.stop()
                await services.hub.stop()

    api = endpoints.routes + provinces.routes + agent.routes + agent_ws.routes + meetings.routes + live.routes + sessions.routes
    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint),
            Route("/api/v1/openapi.json", openapi),
            Mount("/api/v1", routes=api),
            *ui.routes,  # the organizer/ops web UI and /static
        ],
        middleware=[Middleware(ui.SecurityHeadersMiddleware), Middleware(MetricsMiddleware, metrics=metrics)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.templates = ui.build_templates()  # web.ui.rendering.render() reads it
    return app
