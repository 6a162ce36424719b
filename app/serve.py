"""`vcs serve` and `vcs scheduler`: the roles of one deployment wired together.

`build_app` is the one place the web app, the scheduler role and the embedded
SFU node meet: the node's routes are mounted under /sfu and both roles start
and stop inside the web app's lifespan (`web.app.create_app` hooks).

Stopping is ordered so a standby and the browsers move on at once: as soon as
`vcs serve` is told to stop, before uvicorn waits for connections to close, the
scheduler lease is released, live-view streams end and the SFU node closes its
peers (`StopFirst`); then uvicorn closes the connections (cancelling what is
still open after `STOP_GRACE`), the app's lifespan ends, and last the embedded
Redis stops.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import os
import signal
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount

from app.node_identity import NodeIdentity
from app.relays import LocalRelays, default_sfu_processes, relay_specs
from scheduler.actions import LifecycleActions
from scheduler.main import leader_jobs, run_scheduler
from scheduler.runner import SchedulerRole
from sfu import SfuConfig, SfuNode, create_sfu_app
from sfu.registry_links import registry_link_lookup
from vcs.config import ConfigError, Settings
from vcs.redis_server import open_redis, redis_client
from vcs.registry import Registry
from vcs.tiers import Ladder
from web.app import Hook, create_app
from web.services import Services

__all__ = ["StopFirst", "build_app", "cmd_scheduler", "cmd_serve", "local_relays", "sfu_config_for", "sfu_environ"]

log = logging.getLogger("vcs")

STOP_DRAIN = 0.5  # seconds the SFU node waits for rooms to end when the server stops, before closing them
STOP_GRACE = 2.0  # seconds uvicorn then waits for connections still open before cancelling them


class StopFirst:
    """What a stopping server does before waiting for its connections, in this order; each safe to repeat later."""

    def __init__(self) -> None:
        self.role: SchedulerRole | None = None
        self.services: Services | None = None
        self.node: SfuNode | None = None
        self.relays: LocalRelays | None = None

    async def __call__(self) -> None:
        if self.role is not None:
            await self.role.stop()  # the lease first: a standby takes over now, not after its TTL
        if self.services is not None:
            self.services.stopping.set()  # live-view streams end
        stopping = []
        if self.node is not None:
            stopping.append(self.node.stop(drain_timeout=STOP_DRAIN))  # no new rooms, then every peer closed
        if self.relays is not None:
            stopping.append(self.relays.stop())  # each relay closes its peers and leaves the registry, meanwhile
        await asyncio.gather(*stopping)


def build_app(
    settings: Settings, *, run_scheduler: bool = False, sfu_config: SfuConfig | None = None, relays: LocalRelays | None = None
) -> Starlette:
    """The web app, as `vcs serve` runs it with every option.

    `run_scheduler`: also compete for the scheduler lease. `sfu_config`: embed an
    SFU node answering WHIP/WHEP under /sfu on the same host and port (the origin).
    `relays`: relay processes started and stopped with the app (`app.relays`).
    """
    redis = redis_client(settings.redis_url)
    stop_first = StopFirst()

    @contextlib.asynccontextmanager
    async def known_services(services: Services) -> AsyncIterator[None]:
        stop_first.services = services
        yield

    hooks: list[Hook] = [known_services]
    mounts = []
    if run_scheduler:

        @contextlib.asynccontextmanager
        async def scheduler_role(services: Services) -> AsyncIterator[None]:
            actions = LifecycleActions(
                services.meetings, services.roster, public_url=settings.public_url, sfu=services.sfu_control, ladder=settings.ladder,
                reports=services.reports,
            )
            role = stop_first.role = SchedulerRole(services.meetings, actions, jobs=leader_jobs(settings, services.reports))
            await role.start()
            try:
                yield
            finally:
                await role.stop()

        hooks.append(scheduler_role)
    if sfu_config is not None:
        node = stop_first.node = SfuNode(sfu_config, secret=settings.secret_key, redis=redis, link_lookup=registry_link_lookup(Registry(redis)))

        @contextlib.asynccontextmanager
        async def sfu_node(services: Services) -> AsyncIterator[None]:
            async with node:
                yield

        hooks.append(sfu_node)
        mounts.append(Mount("/sfu", app=create_sfu_app(node)))
    if relays is not None:
        stop_first.relays = relays

        @contextlib.asynccontextmanager
        async def relay_processes(services: Services) -> AsyncIterator[None]:
            async with relays:
                yield

        hooks.append(relay_processes)
    app = create_app(settings, redis=redis, mounts=mounts, hooks=hooks)
    app.state.stop_first = stop_first
    return app


class _Server(uvicorn.Server):
    """uvicorn, with the app's `StopFirst` run before it waits for the open connections."""

    async def shutdown(self, sockets=None) -> None:  # type: ignore[no-untyped-def]
        stop_first = getattr(getattr(self.config.app, "state", None), "stop_first", None)
        if stop_first is not None:
            try:
                await stop_first()
            except Exception:
                log.exception("stopping the roles")
        await super().shutdown(sockets)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    host = args.host or settings.host
    port = args.port or settings.port
    public_url = settings.public_url
    if args.port and not os.environ.get("VCS_PUBLIC_URL"):
        public_url = f"http://{host}:{port}"
    try:
        processes = default_sfu_processes(args.sfu_processes, os.environ, os.cpu_count())
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    sfu_config = sfu_config_for(host, public_url, os.environ, settings.ladder, settings.recording_dir) if processes else None
    identity = NodeIdentity.load(settings.data_dir) if sfu_config is not None else None
    if identity is not None and "VCS_SFU_NODE_ID" not in os.environ:
        sfu_config = sfu_config.with_changes(node_id=identity.origin_id)  # the same nodes after a restart
    with open_redis(settings, "serve", owner=True) as url:
        settings = settings.with_overrides(redis_url=url, host=host, port=port, public_url=public_url)
        relays = local_relays(processes - 1, settings, sfu_config, os.environ, identity) if sfu_config and processes > 1 else None
        app = build_app(settings, run_scheduler=True, sfu_config=sfu_config, relays=relays)
        sfu = "none here" if sfu_config is None else "origin" + (f" + {processes - 1} relay processes" if relays else "")
        log.info("serving on http://%s:%d (SFU: %s)", host, port, sfu)
        config = uvicorn.Config(
            app, host=host, port=port, log_level=settings.log_level.lower(), lifespan="on", timeout_graceful_shutdown=STOP_GRACE
        )
        _serve_until_signal(_Server(config))
    return 0


def sfu_environ(host: str, environ: Mapping[str, str]) -> dict[str, str]:
    """The `VCS_SFU_*` variables of this host's nodes; on a loopback-only deployment, ICE stays on loopback too."""
    environ = dict(environ)
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if loopback and "VCS_SFU_ICE_HOSTS" not in environ:
        environ["VCS_SFU_ICE_HOSTS"] = "127.0.0.1"
        environ.setdefault("VCS_SFU_ICE_ALLOW", "127.0.0.0/8")
    return environ


def sfu_config_for(host: str, public_url: str, environ: Mapping[str, str], ladder: Ladder, recording_dir: Path | None = None) -> SfuConfig:
    """The embedded node's settings (`VCS_SFU_*`, `sfu_environ`).

    The ladder, share and audio budget are the deployment's (`Settings.ladder`),
    so the node fits links as the booking preview and the agents' schedules do;
    so is the recording directory, which the web app serves the recordings from.
    """
    try:
        return SfuConfig.from_environ(sfu_environ(host, environ), public_url=public_url, ladder=ladder).with_changes(recording_dir=recording_dir)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def local_relays(
    count: int, settings: Settings, origin: SfuConfig, environ: Mapping[str, str], identity: NodeIdentity | None = None
) -> LocalRelays:
    """`count` relay processes beside the origin, with the deployment's settings: its Redis, secret, data and ladder.

    They stop as the origin does: after STOP_DRAIN, so `vcs serve` keeps its stop bound. With `identity`,
    each relay takes the port it had before, so join info that names it stays valid across a restart.
    """
    env = sfu_environ(settings.host, environ)
    env.update(
        VCS_REDIS_URL=settings.redis_url or "",
        VCS_SECRET_KEY=settings.secret_key,
        VCS_DATA_DIR=str(settings.data_dir.resolve()),
        VCS_LOG_LEVEL=settings.log_level,
        VCS_SFU_DRAIN_TIMEOUT=str(STOP_DRAIN),
    )
    env.pop("VCS_SFU_PUBLIC_URL", None)  # the origin's: each relay has its own
    ports = identity.relay_ports if identity is not None else None
    specs = relay_specs(count, origin_id=origin.node_id, host=settings.host, public_url=settings.public_url, ports=ports,
                        udp_port=origin.udp_port)  # fmt: skip
    if identity is not None:
        identity.relay_ports.update({spec.node_id: spec.port for spec in specs})
        identity.save()
    return LocalRelays(specs, env)


class _Stop(Exception):
    """Raised by the re-delivered SIGINT/SIGTERM once uvicorn has shut the app down."""


def _serve_until_signal(server) -> None:  # type: ignore[no-untyped-def]
    """Run uvicorn; a signal ends it cleanly so the caller's cleanup (the embedded Redis) runs.

    uvicorn handles the signal itself, shuts the app down, then re-raises it with
    the previous handler in place: ours turns that into an exception, not a kill.
    """

    def stop(signum, frame):  # type: ignore[no-untyped-def]
        raise _Stop

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run()
    except _Stop:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def cmd_scheduler(args: argparse.Namespace, settings: Settings) -> int:
    with open_redis(settings, "scheduler") as url:
        asyncio.run(run_scheduler(settings.with_overrides(redis_url=url), lease_ttl=args.lease_ttl))
    return 0
