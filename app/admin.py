"""Data commands of `vcs`: the registry, tokens, users and endpoint secrets.

Each handler runs against the deployment's Redis (the embedded server started
for the command when nothing else runs it) and prints what it did. Every
change is written to the audit log as "cli:<os user>", as the UI writes its
users' (`vcs.audit`).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from vcs.config import Settings
from vcs.errors import VcsError
from vcs.redis_server import connected, open_redis

__all__ = ["cmd_endpoint", "cmd_registry", "cmd_token", "cmd_user", "with_redis", "with_redis_url"]


async def _audit(redis, action: str, target: str = "", **details: object) -> None:  # type: ignore[no-untyped-def]
    from vcs.audit import cli_actor, record

    await record(redis, cli_actor(), action, target, {"via": "cli", **details})


def with_redis(settings: Settings, work: Callable[..., Awaitable[int]], *args: object) -> int:
    """Run `work(redis, *args)` against the deployment's Redis (embedded one started if needed)."""

    async def run(url: str) -> int:
        async with connected(url) as redis:
            return await work(redis, *args)

    with open_redis(settings) as url:
        return asyncio.run(run(url))


def with_redis_url(settings: Settings, run: Callable[[Settings], int], command: str = "command") -> int:
    """Run `run(settings)` with the deployment's Redis URL; `command` names the user in the owner lock."""
    with open_redis(settings, command) as url:
        return run(settings.with_overrides(redis_url=url))


# --- registry -------------------------------------------------------------


async def _registry_seed(redis) -> int:
    from vcs.registry import Registry

    added = await Registry(redis).seed()
    total = len(await Registry(redis).all())
    print(f"registry: {total} endpoints ({added} added)")
    return 0


async def _registry_import(redis, path: Path) -> int:
    from vcs.link_csv import decode_csv, parse_csv
    from vcs.registry import Registry

    registry = Registry(redis)
    await registry.seed()
    rows = parse_csv(decode_csv(path.read_bytes()), set(await registry.all()))
    updated = await registry.set_links(rows)
    await _audit(redis, "endpoint.csv_import", "", rows=len(updated), filename=path.name)
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
        sys.stdout.flush()
        sys.stdout.buffer.write(text.encode("utf-8"))  # UTF-8 whatever the terminal's locale
    return 0


def cmd_registry(args: argparse.Namespace, settings: Settings) -> int:
    if args.registry_command == "seed":
        return with_redis(settings, _registry_seed)
    if args.registry_command == "import":
        if not args.file.is_file():
            raise VcsError(f"no such file: {args.file}")
        return with_redis(settings, _registry_import, args.file)
    return with_redis(settings, _registry_export, args.output, args.province)


# --- tokens, users, endpoint secrets ---------------------------------------


async def _token_create(redis, role: str, province: str | None, name: str) -> int:
    from vcs.api_tokens import ApiTokens

    token = await ApiTokens(redis).create(role, province, name)
    await _audit(redis, "token.create", name, role=role, province=province or "")
    print(token)
    return 0


def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    if args.token_command == "create":
        return with_redis(settings, _token_create, args.role, args.province, args.name)
    from vcs.media_tokens import mint_media_token

    try:
        print(mint_media_token(settings.secret_key, room=args.room, identity=args.identity, role=args.role, ttl=args.ttl,
                               host=args.host, node=args.node))  # fmt: skip
    except ValueError as exc:
        raise VcsError(str(exc)) from None
    return 0


async def _user_add(redis, username: str, password: str, role: str, province: str | None, full_name: str) -> int:
    from vcs.users import Users

    user = await Users(redis).add(username, password, role, province, full_name)
    await _audit(redis, "user.add", user.username, role=user.role.value, province=user.province_code or "")
    scope = f" for province {user.province_code}" if user.province_code else ""
    print(f"user {user.username} added as {user.role.value}{scope}")
    return 0


async def _user_list(redis) -> int:
    from vcs.users import Users

    users = await Users(redis).all()
    print(f"{'USERNAME':<24} {'ROLE':<10} {'PROVINCE':<8} {'STATE':<8} NAME")
    for user in users:
        state = "disabled" if user.disabled else "enabled"
        print(f"{user.username:<24} {user.role.value:<10} {user.province_code or '-':<8} {state:<8} {user.full_name}")
    print(f"{len(users)} user(s)", file=sys.stderr)
    return 0


async def _user_set_disabled(redis, username: str, disabled: bool) -> int:
    from vcs.users import Users
    from web.ui.sessions import Sessions

    user = await Users(redis).set_disabled(username, disabled)
    if disabled:
        ended = await Sessions(redis).revoke_user(user.username)  # its API tokens stop at their next use
        await _audit(redis, "user.disable", user.username, sessions=ended)
        print(f"user {user.username} disabled; {ended} session(s) ended")
    else:
        await _audit(redis, "user.enable", user.username)
        print(f"user {user.username} enabled")
    return 0


async def _user_password(redis, username: str, password: str) -> int:
    from vcs.users import Users

    user = await Users(redis).set_password(username, password)
    await _audit(redis, "user.password", user.username)
    print(f"password of {user.username} changed")
    return 0


def _read_password(args: argparse.Namespace) -> str:
    if args.password_file:
        try:
            return args.password_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise VcsError(f"cannot read {args.password_file}: {exc.strerror}") from None
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Repeat password: "):
            raise VcsError("passwords differ")
        return first
    return sys.stdin.readline().strip()  # piped: `echo "$PASSWORD" | vcs user add ...`


def cmd_user(args: argparse.Namespace, settings: Settings) -> int:
    action = args.user_command
    if action == "list":
        return with_redis(settings, _user_list)
    if action in ("disable", "enable"):
        return with_redis(settings, _user_set_disabled, args.username, action == "disable")
    password = _read_password(args)
    if action == "password":
        return with_redis(settings, _user_password, args.username, password)
    return with_redis(settings, _user_add, args.username, password, args.role, args.province, args.full_name)


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
    await _audit(redis, "endpoint.secret_rotate", ids[0] if len(ids) == 1 else "", endpoints=len(ids))
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
    return with_redis(settings, _rotate, args.ids, args.all, args.province, args.output)
