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
from tests.waiting import scaled

VCS = [sys.executable, "-m", "app.cli"]


def run_vcs(env: dict, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*VCS, *args], env=env, input=input, capture_output=True, text=True, timeout=120)


@pytest.fixture
def env(tmp_path: Path) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VCS_")}
    return {**clean, "VCS_DATA_DIR": str(tmp_path / "var"), "VCS_LOG_LEVEL": "WARNING"}


def start_serve(env: dict, port: int) -> subprocess.Popen:
    process = subprocess.Popen([*VCS, "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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


@pytest.mark.parametrize(
    "command",
    [
        [], ["serve"], ["registry"], ["registry", "seed"], ["registry", "import"], ["registry", "export"],
        ["token"], ["token", "create"], ["token", "media"], ["user"], ["user", "add"], ["endpoint"],
        ["endpoint", "rotate-secret"],
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
    lines = exported.read_text().splitlines()
    assert lines[0] == "id,name,province_code,access,down_kbps,up_kbps,rtt_ms,loss_pct"
    assert len(lines) == 1 + 1 + 126  # header, Hà Nội hall, its 126 communes
    result = run_vcs(env, "registry", "import", str(exported))
    assert result.returncode == 0 and "imported 127" in result.stdout
    secrets_file = tmp_path / "secrets.csv"
    result = run_vcs(env, "endpoint", "rotate-secret", "--province", "01", "-o", str(secrets_file))
    assert result.returncode == 0
    assert oct(secrets_file.stat().st_mode & 0o777) == "0o600"
    assert len(secrets_file.read_text().splitlines()) == 1 + 127
    assert run_vcs(env, "user", "add", "admin", "--role", "admin", input="a-long-password\n").returncode == 0
