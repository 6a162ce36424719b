"""The application factory: API, health, metrics; the SFU node and scheduler join in `vcs serve`."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route

from scheduler.actions import LifecycleActions
from scheduler.runner import SchedulerRole
from sfu import SfuConfig, SfuNode, create_sfu_app
from sfu.registry_links import registry_link_lookup
from vcs.config import Settings
from vcs.redis_server import redis_client, wait_until_ready
from vcs.registry import Registry
from web import ui
from web.api import agent, agent_ws, endpoints, live, meetings, provinces, sessions
from web.errors import EXCEPTION_HANDLERS
from web.health import healthz, openapi, readyz
from web.metrics import Metrics, MetricsMiddleware, metrics_endpoint
from web.services import Services

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def create_app(settings: Settings, *, run_scheduler: bool = False, sfu_config: SfuConfig | None = None) -> Starlette:
    """The web app, as `vcs serve` runs it with both options.

    `run_scheduler`: also compete for the scheduler lease. `sfu_config`: embed an
    SFU node answering WHIP/WHEP under /sfu on the same host and port.
    """
    if not settings.redis_url:
        raise ValueError("create_app needs a resolved redis_url (see vcs.redis_server.open_redis)")
    metrics = Metrics()
    redis = redis_client(settings.redis_url)  # connects lazily, inside the server's event loop
    node = None
    if sfu_config is not None:
        node = SfuNode(sfu_config, secret=settings.secret_key, redis=redis, link_lookup=registry_link_lookup(Registry(redis)))

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
            scheduler = None
            if run_scheduler:
                scheduler = SchedulerRole(
                    services.meetings,
                    LifecycleActions(services.meetings, services.roster, public_url=settings.public_url, sfu=services.sfu_control),
                )
                await scheduler.start()
            app.state.scheduler = scheduler
            if node is not None:
                await node.start()
            try:
                yield
            finally:
                if node is not None:
                    await node.stop()
                if scheduler is not None:
                    await scheduler.stop()
                await services.hub.stop()
                with contextlib.suppress(RedisError, OSError):
                    await services.presence.flush()
        finally:
            await redis.aclose()

    api = endpoints.routes + provinces.routes + agent.routes + agent_ws.routes + meetings.routes + live.routes + sessions.routes
    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint),
            Route("/api/v1/openapi.json", openapi),
            Mount("/api/v1", routes=api),
            *([Mount("/sfu", app=create_sfu_app(node))] if node is not None else []),
            *ui.routes,  # the organizer/ops web UI and /static
        ],
        middleware=[Middleware(ui.SecurityHeadersMiddleware), Middleware(MetricsMiddleware, metrics=metrics)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.templates = ui.build_templates()  # web.ui.rendering.render() reads it
    return app
