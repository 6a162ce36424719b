"""`vcs agent` and `vcs fleet`: the entry points of the endpoint side.

Both run one event loop until Ctrl-C or SIGTERM, then stop cleanly (media
rooms left, peer connections closed). When the server is on this machine
(a loopback URL) ICE gathers on 127.0.0.1 only; `--ice-address` overrides.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from agent.control import Agent, AgentConfig
from agent.media import LADDER, media_from_option
from agent.room import RoomOptions
from vcs.config import Settings
from vcs.errors import VcsError

__all__ = ["add_agent_command", "add_fleet_command"]

log = logging.getLogger(__name__)

FLEET_SECRETS_FILE = "fleet-secrets.csv"


def add_agent_command(commands: argparse._SubParsersAction) -> None:
    agent = commands.add_parser("agent", help="run the agent of one meeting room: log in, keep the schedule, join on time")
    agent.add_argument("--server", metavar="URL", help="the orchestrator (default VCS_PUBLIC_URL, http://127.0.0.1:8000)")
    agent.add_argument("--endpoint", required=True, metavar="ID", help="this room's endpoint id, e.g. 00070")
    agent.add_argument("--secret-file", required=True, type=Path, metavar="F", help="the endpoint secret (or an id,secret CSV)")
    agent.add_argument("--state-dir", type=Path, metavar="DIR", help="where the schedule is cached (default <data dir>/agent-ID)")
    agent.add_argument("--media", default="testpattern", metavar="SRC", help="testpattern (default), a media file, or /dev/videoN")
    agent.add_argument("--no-media", action="store_true", help="publish nothing, only receive")
    agent.add_argument("--receive-tier", choices=LADDER[:-1], help="ask the SFU for at most this tier (default: what the link carries)")
    agent.add_argument("--host-tier", choices=LADDER[:-2], default="720p", help="the most a host publishes (default 720p)")
    agent.add_argument("--ice-address", action="append", default=[], metavar="ADDR", help="gather ICE candidates on this address only")
    agent.set_defaults(func=cmd_agent)


def add_fleet_command(commands: argparse._SubParsersAction) -> None:
    fleet = commands.add_parser("fleet", help="run N simulated agents in one process (registry identities, real WebRTC, nothing decoded)")
    fleet.add_argument("--server", metavar="URL", help="the orchestrator (default VCS_PUBLIC_URL, http://127.0.0.1:8000)")
    fleet.add_argument("--count", required=True, type=int, metavar="N", help="how many communes (the first N of the registry)")
    fleet.add_argument("--province", metavar="CODE", help="take the communes of this province only")
    fleet.add_argument(
        "--secrets-file", type=Path, metavar="F",
        help="endpoint_id,secret CSV; without it the endpoints' secrets are rotated in the local deployment (it says which)",
    )  # fmt: skip
    fleet.add_argument("--yes", action="store_true", help="rotate secrets of endpoints whose real agent is online without asking")
    fleet.add_argument("--with-host", action="store_true", help="also run the central studio, publishing as the host")
    fleet.add_argument("--full-tier-share", type=float, default=0.0, metavar="X", help="share (0-1) that receive the tier their link carries")
    fleet.add_argument("--low-tier", choices=["180p", "audio"], default="180p", help="what the others receive (default 180p)")
    fleet.add_argument("--publish-tier", choices=["180p", "audio", "none"], default="180p", help="the most members publish (default 180p)")
    fleet.add_argument("--host-tier", choices=LADDER[:-2], default="720p", help="what the host publishes (default 720p)")
    fleet.add_argument("--ice-address", action="append", default=[], metavar="ADDR", help="gather ICE candidates on this address only")
    fleet.set_defaults(func=cmd_fleet)


def cmd_agent(args: argparse.Namespace, settings: Settings) -> int:
    args.server = args.server or settings.public_url
    secret = _read_secret(args.secret_file, args.endpoint)
    if not args.no_media and args.media not in ("testpattern", "none") and not Path(args.media).exists():
        raise VcsError(f"no such media file or device: {args.media}")
    _restrict_ice(args.server, args.ice_address)
    media = None if args.no_media else media_from_option(args.media)
    options = RoomOptions(receive_tier=args.receive_tier, host_tier=args.host_tier)
    state_dir = args.state_dir or settings.data_dir / f"agent-{args.endpoint}"
    config = AgentConfig(args.server, args.endpoint, secret, state_dir=state_dir, room=options)

    async def run(stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(timeout=httpx.Timeout(20.0, connect=10.0)) as http:
            agent = Agent(config, http, media)
            await agent.start()
            try:
                await stop.wait()
            finally:
                await agent.stop()
                if media is not None:
                    await media.stop()

    return _run_until_signal(run)


def cmd_fleet(args: argparse.Namespace, settings: Settings) -> int:
    args.server = args.server or settings.public_url
    from agent.fleet import Fleet, FleetConfig, choose_members, read_secrets
    from vcs.divisions import province_code
    from vcs.endpoints import national_endpoints

    if args.count < 1:
        raise VcsError("--count must be at least 1")
    if not 0.0 <= args.full_tier_share <= 1.0:
        raise VcsError("--full-tier-share must be between 0 and 1")
    if args.secrets_file and not args.secrets_file.is_file():
        raise VcsError(f"no such secrets file: {args.secrets_file}")
    province = None
    if args.province:
        province = province_code(args.province)
        if province is None:
            raise VcsError(f"unknown province code {args.province!r}")
    config = FleetConfig(
        args.server, args.count, province=province, with_host=args.with_host, full_tier_share=args.full_tier_share,
        low_tier=args.low_tier, publish_tier=args.publish_tier, host_tier=args.host_tier, state_root=settings.data_dir / "fleet-state",
    )  # fmt: skip
    if args.secrets_file:
        # the registry's seeded identities and link profiles; no Redis needed (it may be on another machine)
        endpoints, secrets = national_endpoints(), read_secrets(args.secrets_file)
    else:
        endpoints, secrets = _provision(settings, config, assume_yes=args.yes)
    try:
        members = choose_members(endpoints, secrets, config)
    except ValueError as exc:
        raise VcsError(str(exc)) from None
    if not members:
        raise VcsError("no endpoint to simulate: check --province and the secrets file")
    _restrict_ice(args.server, args.ice_address)

    async def run(stop: asyncio.Event) -> None:
        print(f"fleet: starting {len(members)} agents against {args.server}", flush=True)  # signals are handled from here on
        await Fleet(config, members).run(stop, out=lambda line: print(line, flush=True))

    return _run_until_signal(run)


def _provision(settings: Settings, config, *, assume_yes: bool) -> tuple[list, dict[str, str]]:  # type: ignore[no-untyped-def]
    """Identities from the deployment's registry and secrets for the first N of them.

    A secret is rotated only where the kept file has none that verifies; that
    replaces the endpoint's real secret, so the command names those endpoints
    and asks first (or refuses, without a terminal) when one has a live agent.
    """
    from agent.fleet import provision_secrets, secrets_to_rotate
    from vcs.audit import cli_actor, record
    from vcs.endpoints import CENTRAL_ID, EndpointKind, national_endpoints
    from vcs.presence import Presence
    from vcs.redis_server import RedisUnavailable, connected, open_redis
    from vcs.registry import Registry

    path = settings.data_dir / FLEET_SECRETS_FILE

    async def work(url: str) -> tuple[list, dict[str, str]]:
        async with connected(url) as redis:
            endpoints = list((await Registry(redis).all()).values()) or national_endpoints()
            ids = [e.id for e in endpoints if e.kind == EndpointKind.COMMUNE and (config.province is None or e.province_code == config.province)]
            ids = ids[: config.count] + ([CENTRAL_ID] if config.with_host else [])
            _, rotating = await secrets_to_rotate(redis, ids, path)
            if rotating:
                live = sorted(await Presence(redis, settings.presence_timeout).online_among(rotating, time.time()))
                _confirm_rotation(rotating, live, path, assume_yes)
            secrets = await provision_secrets(redis, ids, path)
            if rotating:
                await record(redis, cli_actor(), "endpoint.secret_rotate", "", {"via": "cli", "command": "fleet", "endpoints": len(rotating)})
            return endpoints, secrets

    try:
        with open_redis(settings) as url:
            return asyncio.run(work(url))
    except RedisUnavailable as exc:
        raise VcsError(f"no --secrets-file, and the deployment's Redis is out of reach to provision secrets: {exc}") from None


def _confirm_rotation(rotating: list[str], live: list[str], path: Path, assume_yes: bool) -> None:
    """Say whose secrets are rotated; with live agents among them, go on only if the user agrees."""
    shown = ", ".join(rotating[:10]) + (f" and {len(rotating) - 10} more" if len(rotating) > 10 else "")
    print(f"fleet: rotating the secrets of {len(rotating)} endpoint(s): {shown}; the new ones are kept in {path}", file=sys.stderr)
    if not live or assume_yes:
        return
    names = ", ".join(live[:10]) + (" ..." if len(live) > 10 else "")
    warning = f"{len(live)} of them have a live agent now ({names}): it would lose its secret and drop out"
    if not sys.stdin.isatty():
        raise VcsError(f"{warning}. Pass --yes to rotate anyway, or --secrets-file with secrets to use.")
    answer = input(f"fleet: {warning}. Rotate anyway? [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise VcsError("nothing rotated")


def _read_secret(path: Path, endpoint_id: str) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise VcsError(f"cannot read the secret file {path}: {exc.strerror}") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) == 1 and "," not in lines[0]:
        return lines[0]
    for line in lines:
        endpoint, _, secret = line.partition(",")
        if endpoint.strip() == endpoint_id and secret.strip():
            return secret.strip()
    raise VcsError(f"{path} holds no secret for endpoint {endpoint_id}")


def _restrict_ice(server_url: str, addresses: list[str]) -> None:
    from rtc.ice import restrict_host_addresses

    if not addresses:
        host = urlsplit(server_url).hostname or ""
        with contextlib.suppress(ValueError):
            if host == "localhost" or ipaddress.ip_address(host).is_loopback:
                addresses = ["127.0.0.1"]
    for address in addresses:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise VcsError(f"--ice-address must be an IP address, got {address!r}") from None
    if addresses:
        restrict_host_addresses(addresses)


def _run_until_signal(main: Callable[[asyncio.Event], Awaitable[None]]) -> int:
    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await main(stop)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    asyncio.run(run())
    print("stopped", file=sys.stderr)
    return 0
