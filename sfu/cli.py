"""The SFU's commands, wired into ``vcs`` by ``app/cli.py``.

- ``vcs sfu [--host H] [--port P] [--role origin|relay] [--provinces 01,79] [--public-url URL] [--udp-port auto|off|N]``
  runs a node on its own (WHIP/WHEP under ``/sfu``; its peers' media on one UDP port, ``sfu.udp_mux``);
- ``vcs bench sfu --subscribers N --seconds S`` runs the benchmark of one node;
  ``vcs bench relay`` a relay's fan-out of one tier, relayed video pushed a
  frame at a time against packet by packet (``run_relay_batching_bench``);
- ``vcs bench cascade --relays R --subscribers N --seconds S`` the benchmark of
  an origin and R relay processes (``sfu.bench_cascade``);
- ``vcs bench links [--scenario a|b|c|d|all] [--receiver aiortc|chromium]``
  runs the link lab (`sfu.link_lab`, root only).

Every command's ``func(args, settings)`` takes the project's Settings (it
reads ``secret_key``, ``redis_url`` and ``data_dir``) and returns an exit code.
``create_node`` is the one place a node is built from Settings and the
environment; ``vcs serve`` uses it too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .config import SfuConfig, parse_udp_port
from .node import LinkLookup, SfuNode

__all__ = [
    "add_bench_command",
    "add_links_bench_command",
    "add_sfu_command",
    "create_node",
]

logger = logging.getLogger(__name__)

LinkLookupFactory = Callable[[Any, Any], LinkLookup]


def create_node(
    settings: Any,
    *,
    public_url: str,
    redis: Any = None,
    link_lookup: LinkLookup | None = None,
    environ: Mapping[str, str] | None = None,
    role: str | None = None,
    provinces: str | None = None,
    udp_port: str | None = None,
) -> SfuNode:
    """Build a node from Settings and ``VCS_SFU_*`` variables; ValueError for a bad one (or a bad `udp_port`)."""
    environ = os.environ if environ is None else environ
    config = SfuConfig.from_environ(environ, public_url=public_url, ladder=settings.ladder)
    if role is not None:
        config = config.with_changes(role=role)
    if provinces is not None:
        config = config.with_changes(provinces=tuple(provinces.split(",")))
    if udp_port is not None:
        config = config.with_changes(udp_port=parse_udp_port(udp_port))
    return SfuNode(config, secret=settings.secret_key, redis=redis, link_lookup=link_lookup)


def add_sfu_command(subparsers: Any, *, link_lookup_factory: LinkLookupFactory | None = None) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("sfu", help="run an SFU node (WHIP/WHEP under /sfu)")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8090, help="port (default 8090)")
    parser.add_argument("--role", choices=["origin", "relay"], default=None, help="origin or relay (default VCS_SFU_ROLE, else origin)")
    parser.add_argument("--provinces", default=None, help="province codes it sits near, e.g. 01,79 (default VCS_SFU_PROVINCES)")
    parser.add_argument("--public-url", default=None, help="base URL clients use (default http://HOST:PORT)")
    parser.add_argument("--udp-port", default=None,
                        help="the UDP port every peer's media shares: auto (an ephemeral one), off (a socket per peer) "
                             "or a number (default VCS_SFU_UDP_PORT, else auto)")  # fmt: skip
    parser.set_defaults(func=lambda args, settings: run_sfu(args, settings, link_lookup_factory))
    return parser


def run_sfu(args: argparse.Namespace, settings: Any, link_lookup_factory: LinkLookupFactory | None = None) -> int:
    import redis.asyncio as aioredis
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from .app import create_sfu_app

    public_url = args.public_url or f"http://{args.host}:{args.port}"
    # the client connects lazily, inside uvicorn's event loop
    client = aioredis.from_url(settings.redis_url, decode_responses=True) if settings.redis_url else None
    if client is None:
        logger.warning("no Redis URL: this node will not register itself")
    lookup = link_lookup_factory(settings, client) if link_lookup_factory else None
    try:
        node = create_node(settings, public_url=public_url, redis=client, link_lookup=lookup, role=args.role,
                           provinces=args.provinces, udp_port=args.udp_port)  # fmt: skip
    except ValueError as exc:  # a bad VCS_SFU_* value, --provinces or --udp-port
        print(f"vcs sfu: {exc}", file=sys.stderr)
        return 2

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
        try:
            async with node:
                yield
        finally:
            if client is not None:
                await client.aclose()

    app = Starlette(routes=[Mount("/sfu", app=create_sfu_app(node))], lifespan=lifespan)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def add_bench_command(bench_subparsers: Any) -> argparse.ArgumentParser:
    parser = bench_subparsers.add_parser("sfu", help="subscribers per core, before and after, against aiortc's packet relay")
    parser.add_argument("--subscribers", type=int, default=1000, help="WHEP subscribers on the node, joining at once; also measured at half (default 1000)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each measured window (default 20)")
    parser.add_argument("--relay-subscribers", type=int, default=None, help="subscribers of aiortc's packet relay (default 40)")
    parser.add_argument("--no-before", dest="before", action="store_false", help="skip the node with the old layout (VCS_SFU_UDP_PORT=off VCS_SFU_FANOUT=python)")
    parser.add_argument("--no-relay", dest="relay", action="store_false", help="skip aiortc's packet relay")
    parser.add_argument("--sample-every", type=int, default=25, help="one subscriber in K decrypts and counts in full, the others are sinks (default 25)")
    parser.add_argument("--processes", type=int, default=4, help="subscriber processes (default 4)")
    parser.add_argument("--profile", help="sample the node with py-spy into this file")
    parser.set_defaults(func=run_bench_command)
    cascade = bench_subparsers.add_parser("cascade", help="an origin, relay processes and subscribers over them: per relay core")
    cascade.add_argument("--relays", type=int, default=1, help="relay processes (default 1)")
    cascade.add_argument("--subscribers", type=int, default=200, help="WHEP subscribers, spread over the relays by province (default 200)")
    cascade.add_argument("--seconds", type=float, default=20.0, help="length of the measured window (default 20)")
    cascade.add_argument("--processes-per-relay", type=int, default=2, help="subscriber processes per relay (default 2)")
    cascade.set_defaults(func=run_cascade_command)
    relay = bench_subparsers.add_parser("relay", help="a relay's fan-out: relayed video a frame at a time against packet by packet")
    relay.add_argument("--subscribers", type=int, default=40, help="WHEP subscribers on the relay (default 40)")
    relay.add_argument("--seconds", type=float, default=15.0, help="length of each measured window (default 15)")
    relay.add_argument("--rounds", type=int, default=2, help="times each way is measured, alternating (default 2)")
    relay.set_defaults(func=run_relay_bench_command)
    feedback = bench_subparsers.add_parser("feedback", help="what one transport-cc feedback packet costs the node")
    feedback.add_argument("--packets", type=int, default=3000, help="feedback packets per pass (default 3000)")
    feedback.set_defaults(func=run_feedback_bench_command)
    return parser


def run_feedback_bench_command(args: argparse.Namespace, settings: Any = None) -> int:
    from .bench_feedback import run_feedback_bench

    if args.packets < 10:
        raise SystemExit("--packets must be at least 10")
    asyncio.run(run_feedback_bench(args.packets))
    return 0


def run_cascade_command(args: argparse.Namespace, settings: Any = None) -> int:
    from .bench_cascade import run_cascade_bench

    if args.relays < 1 or args.subscribers < 1 or args.seconds <= 0 or args.processes_per_relay < 1:
        raise SystemExit("--relays, --subscribers, --seconds and --processes-per-relay must be positive")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    asyncio.run(run_cascade_bench(args.relays, args.subscribers, args.seconds, processes_per_relay=args.processes_per_relay))
    return 0


def run_bench_command(args: argparse.Namespace, settings: Any = None) -> int:
    from .bench import run_bench

    if args.subscribers < 1 or args.seconds <= 0 or args.sample_every < 1 or args.processes < 1:
        raise SystemExit("--subscribers, --seconds, --sample-every and --processes must be positive")
    if args.relay_subscribers is not None and args.relay_subscribers < 1:
        raise SystemExit("--relay-subscribers must be positive")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # keep the report readable
    asyncio.run(
        run_bench(
            args.subscribers,
            args.seconds,
            before=args.before,
            relay_subscribers=args.relay_subscribers,
            relay=args.relay,
            processes=args.processes,
            sample_every=args.sample_every,
            profile=args.profile,
        )
    )
    return 0


def add_links_bench_command(bench_subparsers: Any) -> argparse.ArgumentParser:
    from .link_lab.scenarios import SCENARIOS

    parser = bench_subparsers.add_parser(
        "links", help="the link lab: subscribers on shaped, delayed, lossy links in network namespaces (root)"
    )
    choices = [*SCENARIOS, "all"]
    parser.add_argument("--scenario", choices=choices, default="all", help="a: fibre profile on 1 Mbps; b: 1 Mbps for 60 s mid-meeting; c: 4G; d: satellite (default all)")
    parser.add_argument("--receiver", choices=["aiortc", "chromium"], default="aiortc", help="the subscriber (default aiortc)")
    parser.add_argument("--seconds", type=float, default=None, help="length of each run (default 120, 150 for b)")
    parser.add_argument("--samples", type=Path, default=None, help="write each run's samples as JSON into this directory")
    parser.set_defaults(func=run_links_command)
    return parser


def run_links_command(args: argparse.Namespace, settings: Any = None) -> int:
    import signal

    from .link_lab.netns import netns_unavailable_reason
    from .link_lab.run import run_scenario
    from .link_lab.scenarios import SCENARIOS

    if args.seconds is not None and args.seconds < 10:
        raise SystemExit("--seconds must be at least 10")
    reason = netns_unavailable_reason()
    if reason is not None:
        raise SystemExit(f"the link lab cannot run here: {reason}")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a kill tears the lab down like Ctrl-C
    keys = list(SCENARIOS) if args.scenario == "all" else [args.scenario]

    async def run_all() -> None:
        for key in keys:
            scenario = SCENARIOS[key]
            await run_scenario(scenario, args.receiver, args.seconds or scenario.default_seconds, samples_to=args.samples)

    try:
        asyncio.run(run_all())
    except KeyboardInterrupt:
        print("interrupted: the lab's namespaces were removed")
        return 130
    except RuntimeError as exc:
        print(f"the link lab failed: {exc}")
        return 1
    return 0


def run_relay_bench_command(args: argparse.Namespace, settings: Any = None) -> int:
    from .bench import run_relay_batching_bench

    if args.subscribers < 1 or args.seconds <= 0 or args.rounds < 1:
        raise SystemExit("--subscribers, --seconds and --rounds must be positive")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    asyncio.run(run_relay_batching_bench(args.subscribers, args.seconds, rounds=args.rounds))
    return 0
