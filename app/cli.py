"""The `vcs` command: one binary, every role.

This package is the composition root: it reads the environment once, finds
the deployment (`app.deployment`: the same data directory from any folder),
resolves Redis, and hands each subcommand to the role that owns it
(`app.serve` for the server roles, `app.admin` for data commands,
`agent.cli`, `sfu.cli`, `loadtests.cli`). No other package imports it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from agent.cli import add_agent_command, add_fleet_command
from app.admin import cmd_endpoint, cmd_registry, cmd_token, cmd_user, with_redis_url
from app.deployment import find_deployment, recorded_while_serving
from app.serve import cmd_scheduler, cmd_serve
from loadtests.cli import add_loadtest_command
from sfu.cli import add_bench_command, add_links_bench_command, add_sfu_command
from sfu.registry_links import registry_link_lookup
from vcs.config import ConfigError, Settings
from vcs.errors import VcsError
from vcs.redis_server import RedisUnavailable
from vcs.registry import Registry

__all__ = ["build_parser", "main"]

ROLES = ["admin", "organizer", "ops", "viewer"]
# commands that read or write the deployment's data (its Redis or its secret key)
DATA_COMMANDS = {"registry", "token", "user", "endpoint", "fleet"}

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
    importer.add_argument("file", type=Path, help="CSV as exported; UTF-8, UTF-16 or Windows-1258; comma, semicolon or tab")
    exporter = registry_commands.add_parser("export", help="write link profiles as CSV (UTF-8 with BOM, for Excel)")
    exporter.add_argument("-o", "--output", type=Path, help="file to write (default stdout)")
    exporter.add_argument("--province", help="only this province (two-digit code)")
    registry.set_defaults(func=cmd_registry)

    token = commands.add_parser("token", help="mint API and media tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True, metavar="KIND")
    create = token_commands.add_parser("create", help="an API bearer token for a role (recorded in the audit log)")
    create.add_argument("--role", required=True, choices=ROLES, help="what the token may do")
    create.add_argument("--province", help="scope an organizer to one province (two-digit code)")
    create.add_argument("--name", default="", help="who the token is for, shown in logs and audit")
    media = token_commands.add_parser("media", help="a short-lived signed token for WHIP/WHEP signaling")
    media.add_argument("--room", required=True, help="the SFU room it opens")
    media.add_argument("--identity", required=True, help="endpoint id of the holder")
    media.add_argument("--role", required=True, choices=["publish", "subscribe", "control"], help="what the holder may do in the room")
    media.add_argument("--ttl", type=int, default=300, help="seconds of validity (default 300)")
    media.add_argument("--host", action="store_true", help="with --role publish: the holder is the room's host (its picture is the program)")
    token.set_defaults(func=cmd_token)

    user = commands.add_parser("user", help="organizer, ops, viewer and admin accounts for the web UI and /api/v1/auth/token")
    user_commands = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = user_commands.add_parser("add", help="add a user; the password is read from a prompt, stdin or --password-file")
    add.add_argument("username", help="2-64 characters: lowercase letters, digits, . _ -")
    add.add_argument("--role", required=True, choices=ROLES, help="what the user may do")
    add.add_argument("--province", help="scope an organizer to one province (two-digit code)")
    add.add_argument("--full-name", default="", help="shown in the UI")
    add.add_argument("--password-file", type=Path, help="read the password from this file instead")
    user_commands.add_parser("list", help="every account with its role, province and state")
    for action, text in (("disable", "stop a user signing in and end its sessions and tokens"), ("enable", "let a disabled user sign in again")):
        toggle = user_commands.add_parser(action, help=text)
        toggle.add_argument("username", help="the account")
    password = user_commands.add_parser("password", help="set a new password (prompt, stdin or --password-file)")
    password.add_argument("username", help="the account")
    password.add_argument("--password-file", type=Path, help="read the password from this file instead")
    user.set_defaults(func=cmd_user)

    endpoint = commands.add_parser("endpoint", help="endpoint credentials")
    endpoint_commands = endpoint.add_subparsers(dest="endpoint_command", required=True, metavar="ACTION")
    rotate = endpoint_commands.add_parser("rotate-secret", help="issue new secrets (printed once as id,secret); the old ones stop working")
    rotate.add_argument("ids", nargs="*", metavar="ID", help="endpoint ids, e.g. 00070 hall-01 central")
    rotate.add_argument("--all", action="store_true", help="every endpoint")
    rotate.add_argument("--province", help="every endpoint of one province")
    rotate.add_argument("-o", "--output", type=Path, help="write a CSV (mode 600) instead of stdout")
    endpoint.set_defaults(func=cmd_endpoint)

    add_agent_command(commands)
    add_fleet_command(commands)
    _add_role_commands(commands)
    return parser


def _add_role_commands(commands: argparse._SubParsersAction) -> None:
    """Commands whose code lives with their role's package."""
    add_loadtest_command(commands)

    sfu = add_sfu_command(commands, link_lookup_factory=_registry_links)
    run_node = sfu.get_default("func")
    sfu.set_defaults(func=lambda args, settings: with_redis_url(settings, lambda resolved: run_node(args, resolved), "sfu"))
    bench = commands.add_parser("bench", help="benchmarks")
    bench_commands = bench.add_subparsers(dest="bench_command", required=True, metavar="TARGET")
    add_bench_command(bench_commands)
    add_links_bench_command(bench_commands)


def _registry_links(settings: Settings, redis):  # type: ignore[no-untyped-def]
    return registry_link_lookup(Registry(redis))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    deployment = find_deployment(os.environ, Path.cwd(), running=args.command in DATA_COMMANDS)
    is_new = deployment.is_new  # before loading settings, which writes the secret key there
    try:
        settings = Settings.load({**os.environ, "VCS_DATA_DIR": str(deployment.data_dir)})
    except ConfigError as exc:
        print(f"vcs: configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if is_new and args.command in DATA_COMMANDS and not settings.redis_url:
        print(
            f"vcs: no running deployment found (no VCS_DATA_DIR, no `vcs serve` of this user running): "
            f"starting a new, empty one in {deployment.data_dir.resolve()}",
            file=sys.stderr,
        )
    try:
        if args.command == "serve":
            with recorded_while_serving(settings.data_dir, os.environ):
                return args.func(args, settings)
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
