"""The `vcs` command as a user runs it: real processes, the embedded Redis, real HTTP."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.vcs.test_link_csv import windows_1258
from tests.waiting import scaled

VCS = [sys.executable, "-m", "app.cli"]


def run_vcs(env: dict, *args: str, input: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*VCS, *args], env=env, input=input, capture_output=True, text=True, timeout=120, cwd=cwd)


@pytest.fixture
def env(tmp_path: Path) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VCS_")}
    # a private runtime dir: the record of the running server is this test's own
    (tmp_path / "run").mkdir()
    return {**clean, "VCS_DATA_DIR": str(tmp_path / "var"), "VCS_LOG_LEVEL": "WARNING", "XDG_RUNTIME_DIR": str(tmp_path / "run")}


def start_serve(env: dict, port: int, cwd: Path | None = None) -> subprocess.Popen:
    process = subprocess.Popen([*VCS, "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd)
    deadline = time.monotonic() + scaled(60)
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        assert process.poll() is None, process.stdout.read()
        time.sleep(0.2)
    process.kill()
    raise AssertionError("vcs serve did not become ready")


def stop_serve(process: subprocess.Popen, sig: int = signal.SIGINT) -> str:
    process.send_signal(sig)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    return output


def test_serve_starts_stops_cleanly_and_keeps_data(env, tmp_path):
    port = free_port()
    process = start_serve(env, port)
    token = run_vcs(env, "token", "create", "--role", "viewer")
    assert token.returncode == 0, token.stderr
    headers = {"Authorization": f"Bearer {token.stdout.strip()}"}
    listing = httpx.get(f"http://127.0.0.1:{port}/api/v1/endpoints?kind=commune", headers=headers).json()
    assert listing["total"] == 3321
    ops = run_vcs(env, "token", "create", "--role", "ops").stdout.strip()
    edit = httpx.patch(
        f"http://127.0.0.1:{port}/api/v1/endpoints/00070",
        json={"link": {"access": "satellite", "down_kbps": 1800}},
        headers={"Authorization": f"Bearer {ops}"},
    )
    assert edit.status_code == 200
    stop_serve(process)
    # the embedded server went away with it, and its socket answers no more
    pid = int((tmp_path / "var" / "redis" / "server.pid").read_text()) if (tmp_path / "var" / "redis" / "server.pid").exists() else None
    if pid:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)

    process = start_serve(env, port)
    try:
        after = httpx.get(f"http://127.0.0.1:{port}/api/v1/endpoints/00070", headers=headers)
        assert after.status_code == 200, "the token minted before the restart still works"
        assert after.json()["link"]["access"] == "satellite" and after.json()["link"]["down_kbps"] == 1800
    finally:
        stop_serve(process, signal.SIGTERM)


def test_secret_key_is_generated_once_and_private(env, tmp_path):
    assert run_vcs(env, "registry", "seed").returncode == 0
    key_file = tmp_path / "var" / "secret_key"
    first = key_file.read_text()
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert "3356 endpoints (0 added)" in run_vcs(env, "registry", "seed").stdout
    assert key_file.read_text() == first


def test_a_media_token_for_one_node(env, tmp_path):
    from vcs.media_tokens import MediaTokenError, verify_media_token

    result = run_vcs(env, "token", "media", "--room", "r1", "--identity", "00070", "--role", "subscribe", "--node", "relay-hn")
    assert result.returncode == 0, result.stderr
    secret = (tmp_path / "var" / "secret_key").read_text().strip()
    token = result.stdout.strip()
    assert verify_media_token(secret, token, room="r1", role="subscribe", node="relay-hn").node == "relay-hn"
    with pytest.raises(MediaTokenError, match="another node"):
        verify_media_token(secret, token, room="r1", role="subscribe", node="origin-1")
    result = run_vcs(env, "token", "media", "--room", "r1", "--identity", "00070", "--role", "subscribe", "--node", "")
    assert result.returncode == 1 and "node must not be empty" in result.stderr


@pytest.mark.parametrize(
    "command",
    [
        [], ["serve"], ["registry"], ["registry", "seed"], ["registry", "import"], ["registry", "export"],
        ["token"], ["token", "create"], ["token", "media"], ["user"], ["user", "add"], ["user", "list"], ["user", "disable"],
        ["user", "enable"], ["user", "password"], ["endpoint"], ["endpoint", "rotate-secret"], ["fleet"],
    ],
)
def test_every_command_has_help(env, command):
    result = run_vcs(env, *command, "--help")
    assert result.returncode == 0 and "usage: vcs" in result.stdout


def test_bad_input_gets_a_message_and_exit_code(env, tmp_path):
    result = run_vcs(env, "token", "create", "--role", "viewer", "--province", "01")
    assert result.returncode == 1 and "only organizers" in result.stderr
    result = run_vcs(env, "token", "create", "--role", "organizer", "--province", "77")
    assert result.returncode == 1 and "unknown province" in result.stderr
    result = run_vcs(env, "token", "create", "--role", "king")
    assert result.returncode == 2 and "invalid choice" in result.stderr
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("id,access,down_kbps,up_kbps,rtt_ms,loss_pct\n00070,4g,x,1,1,1\n")
    result = run_vcs(env, "registry", "import", str(bad_csv))
    assert result.returncode == 1 and "line 2: down_kbps must be a whole number" in result.stderr
    result = run_vcs(env, "endpoint", "rotate-secret", "nope")
    assert result.returncode == 1 and "unknown endpoint" in result.stderr
    result = run_vcs(env, "user", "add", "an", "--role", "admin", input="short\n")
    assert result.returncode == 1 and "password" in result.stderr


def test_registry_export_import_and_secrets_round_trip(env, tmp_path):
    exported = tmp_path / "links.csv"
    assert run_vcs(env, "registry", "export", "--province", "1", "-o", str(exported)).returncode == 0
    assert exported.read_bytes().startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM: Excel shows the names right
    lines = exported.read_text(encoding="utf-8-sig").splitlines()
    assert lines[0] == "id,name,province_code,access,down_kbps,up_kbps,rtt_ms,loss_pct"
    assert len(lines) == 1 + 1 + 126  # header, Hà Nội hall, its 126 communes
    result = run_vcs(env, "registry", "import", str(exported))
    assert result.returncode == 0 and "imported 127" in result.stdout
    # the same file as Excel saves it on a Vietnamese Windows (cp1258), and one it cannot read
    legacy = tmp_path / "legacy.csv"
    legacy.write_bytes(windows_1258("\n".join(lines[:3])))
    result = run_vcs(env, "registry", "import", str(legacy))
    assert result.returncode == 0 and "imported 2" in result.stdout, result.stderr
    garbled = tmp_path / "garbled.csv"
    garbled.write_bytes(b"id,access\n\x81\x8a\x8d\n")
    result = run_vcs(env, "registry", "import", str(garbled))
    assert result.returncode == 1 and "CSV UTF-8" in result.stderr and "Traceback" not in result.stderr
    secrets_file = tmp_path / "secrets.csv"
    result = run_vcs(env, "endpoint", "rotate-secret", "--province", "01", "-o", str(secrets_file))
    assert result.returncode == 0
    assert oct(secrets_file.stat().st_mode & 0o777) == "0o600"
    assert len(secrets_file.read_text().splitlines()) == 1 + 127
    assert run_vcs(env, "user", "add", "admin", "--role", "admin", input="a-long-password\n").returncode == 0


def test_every_command_and_option_is_explained():
    import argparse

    from app.cli import build_parser

    def unexplained(parser: argparse.ArgumentParser, prefix: str):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    if not choice.help:
                        yield f"{prefix} {choice.dest}"
                for name, sub in action.choices.items():
                    yield from unexplained(sub, f"{prefix} {name}")
            elif not isinstance(action, argparse._HelpAction) and not action.help:
                yield f"{prefix} {'/'.join(action.option_strings) or action.dest}"

    assert list(unexplained(build_parser(), "vcs")) == []


def test_the_cli_finds_the_running_deployment_from_any_folder(env, tmp_path):
    del env["VCS_DATA_DIR"]
    served, elsewhere, later = (tmp_path / name for name in ("deployment", "elsewhere", "later"))
    for folder in (served, elsewhere, later):
        folder.mkdir()
    port = free_port()
    process = start_serve(env, port, cwd=served)
    try:
        token = run_vcs(env, "token", "create", "--role", "viewer", cwd=elsewhere)
        assert token.returncode == 0 and "new, empty" not in token.stderr, token.stderr
        headers = {"Authorization": f"Bearer {token.stdout.strip()}"}
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/provinces", headers=headers).status_code == 200
        assert not (elsewhere / "var").exists()
    finally:
        stop_serve(process)
    # no server any more: the command says it starts an empty deployment, and where
    token = run_vcs(env, "token", "create", "--role", "viewer", cwd=later)
    assert token.returncode == 0
    assert "starting a new, empty one in" in token.stderr and str(later / "var") in token.stderr


def _sign_in_ui(client: httpx.Client, username: str, password: str) -> httpx.Response:
    import re

    form = client.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    return client.post("/login", data={"username": username, "password": password, "next": "/", "csrf": csrf})


def test_user_accounts_from_the_cli_and_the_audit_log(env, tmp_path):
    import getpass

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = start_serve(env, port)
    try:
        assert run_vcs(env, "user", "add", "ops.hue", "--role", "ops", "--full-name", "Lê Văn Huế", input="first-long-password\n").returncode == 0
        listed = run_vcs(env, "user", "list")
        assert listed.returncode == 0 and "ops.hue" in listed.stdout and "enabled" in listed.stdout and "Lê Văn Huế" in listed.stdout

        api = httpx.post(f"{base}/api/v1/auth/token", json={"username": "ops.hue", "password": "first-long-password"})
        assert api.status_code == 200
        api_headers = {"Authorization": f"Bearer {api.json()['token']}"}
        browser = httpx.Client(base_url=base, timeout=20)
        assert _sign_in_ui(browser, "ops.hue", "first-long-password").status_code == 303
        assert browser.get("/endpoints").status_code == 200

        disabled = run_vcs(env, "user", "disable", "ops.hue")
        assert disabled.returncode == 0 and "1 session(s) ended" in disabled.stdout
        assert "disabled" in run_vcs(env, "user", "list").stdout
        # its session and its API token end; it cannot sign in again, by either door
        assert browser.get("/endpoints", follow_redirects=False).status_code in (302, 303)
        assert httpx.get(f"{base}/api/v1/provinces", headers=api_headers).status_code == 401
        assert httpx.post(f"{base}/api/v1/auth/token", json={"username": "ops.hue", "password": "first-long-password"}).status_code == 401
        assert _sign_in_ui(browser, "ops.hue", "first-long-password").status_code != 303

        assert run_vcs(env, "user", "enable", "ops.hue").returncode == 0
        assert run_vcs(env, "user", "password", "ops.hue", input="second-long-password\n").returncode == 0
        assert httpx.post(f"{base}/api/v1/auth/token", json={"username": "ops.hue", "password": "first-long-password"}).status_code == 401
        assert httpx.post(f"{base}/api/v1/auth/token", json={"username": "ops.hue", "password": "second-long-password"}).status_code == 200
        assert run_vcs(env, "user", "disable", "nobody").returncode == 1
        short = run_vcs(env, "user", "password", "ops.hue", input="short\n")
        assert short.returncode == 1 and "password" in short.stderr

        # every change made from the CLI is in the audit log, by the OS user who ran it
        rotated = run_vcs(env, "endpoint", "rotate-secret", "00070")
        assert rotated.returncode == 0
        links = tmp_path / "links.csv"
        links.write_text("id,access,down_kbps,up_kbps,rtt_ms,loss_pct\n00070,4g,9000,2500,70,1\n")
        assert run_vcs(env, "registry", "import", str(links)).returncode == 0
        assert run_vcs(env, "token", "create", "--role", "admin", "--name", "auditor").returncode == 0
        browser.close()
    finally:
        stop_serve(process)
    actions = [entry for entry in _audit_entries(env) if entry[1].startswith("cli:")]  # not the sign-ins
    actor = f"cli:{getpass.getuser()}"
    expected = ["user.add", "user.disable", "user.enable", "user.password", "endpoint.secret_rotate", "endpoint.csv_import", "token.create"]
    assert [(a, who) for a, who, _ in actions] == [(a, actor) for a in expected], actions
    assert dict((a, target) for a, _, target in actions)["endpoint.secret_rotate"] == "00070"


def _audit_entries(env: dict) -> list[tuple[str, str, str]]:
    """(action, actor, target) of the deployment's audit log, oldest first, read from its store."""
    import asyncio

    from vcs import audit
    from vcs.config import Settings
    from vcs.redis_server import connected, open_redis

    settings = Settings(data_dir=Path(env["VCS_DATA_DIR"]), secret_key="x" * 40)

    async def read(url: str) -> list:
        async with connected(url) as redis:
            return await audit.recent(redis, limit=50)

    with open_redis(settings) as url:
        entries = asyncio.run(read(url))
    return [(e.action, e.actor, e.target) for e in reversed(entries)]


def test_fleet_says_whose_secrets_it_rotates_and_asks_about_live_agents(env):
    from vcs.divisions import communes

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    first_of_hanoi = min(c.code for c in communes() if c.province_code == "01")
    process = start_serve(env, port)
    try:
        secret = run_vcs(env, "endpoint", "rotate-secret", first_of_hanoi).stdout.strip().split(",")[1]
        agent = httpx.post(f"{base}/api/v1/agent/login", json={"endpoint_id": first_of_hanoi, "secret": secret}).json()["token"]
        admin = {"Authorization": f"Bearer {run_vcs(env, 'token', 'create', '--role', 'admin').stdout.strip()}"}
        deadline = time.monotonic() + 30
        while httpx.get(f"{base}/api/v1/endpoints/{first_of_hanoi}", headers=admin).json()["status"] != "online":
            assert time.monotonic() < deadline, "the heartbeat did not make the endpoint online"
            httpx.post(f"{base}/api/v1/agent/heartbeat", headers={"Authorization": f"Bearer {agent}"})
            time.sleep(0.2)

        refused = run_vcs(env, "fleet", "--server", base, "--count", "1", "--province", "01", input="")
        assert refused.returncode == 1
        assert f"rotating the secrets of 1 endpoint(s): {first_of_hanoi}" in refused.stderr
        assert "live agent" in refused.stderr and "--yes" in refused.stderr
        # nothing was rotated: the real agent's secret still works
        assert httpx.post(f"{base}/api/v1/agent/login", json={"endpoint_id": first_of_hanoi, "secret": secret}).status_code == 200
    finally:
        stop_serve(process)
