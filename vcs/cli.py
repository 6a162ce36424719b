"""The `vcs` command: one binary, every role.

This is the composition root: it reads the environment once, resolves Redis,
and imports the `web`, `sfu` and `scheduler` roles lazily, only for the
command that runs them (the core package itself never imports them).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from vcs.config import ConfigError, Settings
from vcs.errors import VcsError
from vcs.redis_server import RedisUnavailable, connected, open_redis

__all__ = ["main"]

log = logging.getLogger("vcs")


def _with_redis(settings: Settings, work: Callable[..., Awaitable[int]], *args: object) -> int:
    """Run `work(redis, *args)` against the deployment's Redis (embedded one started if needed)."""

    async def run(url: str) -> int:
        async with connected(url) as redis:
            return await work(redis, *args)

    with open_redis(settings) as url:
        return asyncio.run(run(url))


# --- serve ----------------------------------------------------------------


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from web.app import create_app

    host = args.host or settings.host
    port = args.port or settings.port
    public_url = settings.public_url
    if args.port and not os.environ.get("VCS_PUBLIC_URL"):
        public_url = f"http://{host}:{port}"
    sfu_config = _sfu_config(host, public_url)
    with open_redis(settings) as url:
        settings = settings.with_overrides(redis_url=url, host=host, port=port, public_url=public_url)
        app = create_app(settings, run_scheduler=True, sfu_config=sfu_config)
        log.info("serving on http://%s:%d", host, port)
        config = uvicorn.Config(app, host=host, port=port, log_level=settings.log_level.lower(), lifespan="on")
        _serve_until_signal(uvicorn.Server(config))
    return 0


def _sfu_config(host: str, public_url: str):
    """The embedded node's settings (`VCS_SFU_*`); on a loopback-only deployment, ICE stays on loopback too."""
    import ipaddress

    from sfu import SfuConfig

    environ = dict(os.environ)
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if loopback and "VCS_SFU_ICE_HOSTS" not in environ:
        environ["VCS_SFU_ICE_HOSTS"] = "127.0.0.1"
        environ.setdefault("VCS_SFU_ICE_ALLOW", "127.0.0.0/8")
    try:
        return SfuConfig.from_environ(environ, public_url=public_url)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


class _Stop(Exception):
    """Raised by the re-delivered SIGINT/SIGTERM once uvicorn has shut the app down."""


def _serve_until_signal(server) -> None:
    """Run uvicorn; a signal ends it cleanly so the caller's cleanup (the embedded Redis) runs.

    uvicorn handles the signal itself, shuts the app down, then re-raises it with
    the previous handler in place: ours turns that into an exception, not a kill.
    """

    def stop(signum, frame):
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
    from scheduler.main import run_scheduler

    with open_redis(settings) as url:
        asyncio.run(run_scheduler(settings.with_overrides(redis_url=url), lease_ttl=args.lease_ttl))
    return 0


# --- registry -------------------------------------------------------------


async def _registry_seed(redis) -> int:
    from vcs.registry import Registry

    added = await Registry(redis).seed()
    total = len(await Registry(redis).all())
    print(f"registry: {total} endpoints ({added} added)")
    return 0


async def _registry_import(redis, path: Path) -> int:
    from vcs.link_csv import parse_csv
    from vcs.registry import Registry

    registry = Registry(redis)
    await registry.seed()
    rows = parse_csv(path.read_text(encoding="utf-8"), set(await registry.all()))
    updated = await registry.set_links(rows)
    print(f"imported {len(updated)} link profiles from {path}")
    return 0


async def _registry_export(redis, output: Path | None, province: str | None) -> int:
    from vcs.divisions import province_code
    from vcs.link_csv import export_csv
    from vcs.registry import EndpointQuery, Registry

    registry = Registry(redis)
    await registry.seed()
    code = None
    if province:
        code = province_code(province)
        if code is None:
            raise VcsError(f"unknown province code {province!r}")
    text = export_csv(await registry.query(EndpointQuery(province_code=code)))
    if output:
        output.write_text(text, encoding="utf-8")
        print(f"exported to {output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_registry(args: argparse.Namespace, settings: Settings) -> int:
    if args.registry_command == "seed":
        return _with_redis(settings, _registry_seed)
    if args.registry_command == "import":
        if not args.file.is_file():
            raise VcsError(f"no such file: {args.file}")
        return _with_redis(settings, _registry_import, args.file)
    return _with_redis(settings, _registry_export, args.output, args.province)


# --- tokens, users, endpoint secrets ---------------------------------------


async def _token_create(redis, role: str, province: str | None, name: str) -> int:
    from vcs.api_tokens import ApiTokens

    print(await ApiTokens(redis).create(role, province, name))
    return 0


def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    if args.token_command == "create":
        return _with_redis(settings, _token_create, args.role, args.province, args.name)
    from vcs.media_tokens import mint_media_token

    print(mint_media_token(settings.secret_key, room=args.room, identity=args.identity, role=args.role, ttl=args.ttl))
    return 0


async def _user_add(redis, username: str, password: str, role: str, province: str | None, full_name: str) -> int:
    from vcs.users import Users

    user = await Users(redis).add(username, password, role, province, full_name)
    scope = f" for province {user.province_code}" if user.province_code else ""
    print(f"user {user.username} added as {user.role.value}{scope}")
    return 0


def _read_password(args: argparse.Namespace) -> str:
    if args.password_file:
        return args.password_file.read_text().strip()
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Repeat password: "):
            raise VcsError("passwords differ")
        return first
    return sys.stdin.readline().strip()  # piped: `echo "$PASSWORD" | vcs user add ...`


def cmd_user(args: argparse.Namespace, settings: Settings) -> int:
    password = _read_password(args)
    return _with_redis(settings, _user_add, args.username, password, args.role, args.province, args.full_name)


async def _rotate(redis, ids: list[str], every: bool, province: str | None, output: Path | None) -> int:
    from vcs.credentials import EndpointCredentials
    from vcs.divisions import province_code
    from vcs.registry import EndpointQuery, Registry

    registry = Registry(redis)
    await registry.seed()
    known = await registry.all()
    if every:
        ids = list(known)
    elif province:
        code = province_code(province)
        if code is None:
            raise VcsError(f"unknown province code {province!r}")
        ids = [e.id for e in await registry.query(EndpointQuery(province_code=code))]
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise VcsError(f"unknown endpoint id(s): {', '.join(unknown[:10])}")
    if not ids:
        raise VcsError("name endpoint ids, or --province CODE, or --all")
    issued = await EndpointCredentials(redis).rotate(ids)
    lines = "".join(f"{endpoint_id},{secret}\n" for endpoint_id, secret in issued.items())
    if output:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("endpoint_id,secret\n" + lines)
        print(f"{len(issued)} new secret(s) written to {output}", file=sys.stderr)
    else:
        sys.stdout.write(lines)
    return 0


def cmd_endpoint(args: argparse.Namespace, settings: Settings) -> int:
    return _with_redis(settings, _rotate, args.ids, args.all, args.province, args.output)


# --- parser -----------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vcs", description="Video conferencing for Vietnam's central, province and commune meeting rooms.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the whole system: web, API, scheduler, SFU node, embedded Redis")
    serve.add_argument("--host", help="bind address (default VCS_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default VCS_PORT or 8000)")
    serve.set_defaults(func=cmd_serve)

    scheduler = commands.add_parser("scheduler", help="run the meeting scheduler (leader or standby; one lease in Redis)")
    scheduler.add_argument("--lease-ttl", type=float, default=5.0, help="seconds a dead leader keeps the lease (default 5)")
    scheduler.set_defaults(func=cmd_scheduler)

    registry = commands.add_parser("registry", help="the national registry of endpoints")
    registry_commands = registry.add_subparsers(dest="registry_command", required=True, metavar="ACTION")
    registry_commands.add_parser("seed", help="add the 34 provinces' halls, 3,321 communes and the central studio (keeps edits)")
    importer = registry_commands.add_parser("import", help="replace link profiles from a CSV file (all or nothing)")
    importer.add_argument("file", type=Path)
    exporter = registry_commands.add_parser("export", help="write link profiles as CSV")
    exporter.add_argument("-o", "--output", type=Path, help="file to write (default stdout)")
    exporter.add_argument("--province", help="only this province (two-digit code)")
    registry.set_defaults(func=cmd_registry)

    token = commands.add_parser("token", help="mint API and media tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True, metavar="KIND")
    create = token_commands.add_parser("create", help="an API bearer token for a role")
    create.add_argument("--role", required=True, choices=["admin", "organizer", "ops", "viewer"])
    create.add_argument("--province", help="scope an organizer to one province (two-digit code)")
    create.add_argument("--name", default="", help="who the token is for, shown in logs and audit")
    media = token_commands.add_parser("media", help="a short-lived signed token for WHIP/WHEP signaling")
    media.add_argument("--room", required=True)
    media.add_argument("--identity", required=True, help="endpoint id of the holder")
    media.add_argument("--role", required=True, choices=["publish", "subscribe", "control"])
    media.add_argument("--ttl", type=int, default=300, help="seconds of validity (default 300)")
    token.set_defaults(func=cmd_token)

    user = commands.add_parser("user", help="organizer, ops and viewer accounts for the web UI")
    user_commands = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = user_commands.add_parser("add", help="add a user; the password is read from a prompt, stdin or --password-file")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=["admin", "organizer", "ops", "viewer"])
    add.add_argument("--province", help="scope an organizer to one province")
    add.add_argument("--full-name", default="")
    add.add_argument("--password-file", type=Path)
    user.set_defaults(func=cmd_user)

    endpoint = commands.add_parser("endpoint", help="endpoint credentials")
    endpoint_commands = endpoint.add_subparsers(dest="endpoint_command", required=True, metavar="ACTION")
    rotate = endpoint_commands.add_parser("rotate-secret", help="issue new secrets (printed once as id,secret)")
    rotate.add_argument("ids", nargs="*", metavar="ID")
    rotate.add_argument("--all", action="store_true", help="every endpoint")
    rotate.add_argument("--province", help="every endpoint of one province")
    rotate.add_argument("-o", "--output", type=Path, help="write a CSV (mode 600) instead of stdout")
    endpoint.set_defaults(func=cmd_endpoint)

    from vcs.agent_cli import add_agent_command, add_fleet_command

    add_agent_command(commands)
    add_fleet_command(commands)
    _add_role_commands(commands)
    return parser


def _add_role_commands(commands: argparse._SubParsersAction) -> None:
    """Commands whose code lives with their role's package."""
    from loadtests.cli import add_loadtest_command
    from sfu.cli import add_bench_command, add_sfu_command

    add_loadtest_command(commands)

    sfu = add_sfu_command(commands, link_lookup_factory=_registry_links)
    run_node = sfu.get_default("func")
    sfu.set_defaults(func=lambda args, settings: _with_redis_url(settings, lambda resolved: run_node(args, resolved)))
    bench = commands.add_parser("bench", help="benchmarks")
    bench_commands = bench.add_subparsers(dest="bench_command", required=True, metavar="TARGET")
    add_bench_command(bench_commands)


def _registry_links(settings: Settings, redis):
    from sfu.registry_links import registry_link_lookup
    from vcs.registry import Registry

    return registry_link_lookup(Registry(redis))


def _with_redis_url(settings: Settings, run: Callable[[Settings], int]) -> int:
    with open_redis(settings) as url:
        return run(settings.with_overrides(redis_url=url))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.load()
    except ConfigError as exc:
        print(f"vcs: configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args, settings)
    except VcsError as exc:
        print(f"vcs: {exc.message}", file=sys.stderr)
        for field in getattr(exc, "errors", []):
            print(f"  {field.field}: {field.reason}", file=sys.stderr)
        return 1
    except RedisUnavailable as exc:
        print(f"vcs: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
