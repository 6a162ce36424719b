"""Everything a load run needs from the deployment, made with the `vcs` command before Locust starts.

- Endpoint secrets for every endpoint: `vcs endpoint rotate-secret --all -o
  secrets.csv`. This REPLACES the secrets of every endpoint of that
  deployment (real agents holding the old ones are locked out), so it is for
  test deployments only; pass `--secrets FILE` to reuse a file instead.
- An admin API token (`vcs token create --role admin`) for booking the
  national meeting and reading online counts; revoked at the end of the run.
- Organizer accounts (`vcs user add`, a fresh name per run, random passwords).
- An expired agent token for the probes, signed with the deployment's key
  (read from its data directory, as every `vcs` command does).
- For the media plane, a room and its WHEP/WHIP tokens (`vcs token media`),
  and one subscribe token per media subscriber, each for a commune of its own.

The `vcs` commands run against the data directory given (the deployment's
`VCS_DATA_DIR`, or its `VCS_REDIS_URL` from the environment); they share the
running server's Redis.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from vcs.agent_tokens import mint_agent_token
from vcs.config import SECRET_KEY_FILE, Settings
from vcs.media_tokens import mint_media_token

__all__ = ["ProvisionError", "Provisioned", "find_sfu", "provision", "revoke"]

EXPIRED_FOR = 3600  # the probe token expired this long ago


class ProvisionError(Exception):
    pass


@dataclass
class Provisioned:
    directory: Path
    secrets: Path
    admin_token_file: Path
    organizers: Path | None = None
    expired_agent_token_file: Path | None = None
    media_target: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def admin_token(self) -> str:
        return self.admin_token_file.read_text().strip()


def _vcs(args: list[str], env: dict[str, str], *, stdin: str | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", *args], input=stdin, env=env, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise ProvisionError(f"vcs {' '.join(args[:3])} failed: {done.stderr.strip()[-500:]}")
    return done.stdout


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def provision(
    directory: Path,
    env: dict[str, str],
    *,
    run_id: str,
    organizer_accounts: int,
    secrets_file: Path | None = None,
    admin_token_file: Path | None = None,
    media_base: str | None = None,
    media_subscribers: int = 0,
    media_ttl: int = 6 * 3600,
) -> Provisioned:
    """Make (or take) every credential in `directory` (mode 700, files 600)."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    settings = Settings.from_environ(env)
    local = bool(settings.redis_url) or (settings.data_dir / "redis").exists()
    notes: list[str] = []

    if secrets_file is None:
        if not local:
            raise ProvisionError(
                f"the data directory {settings.data_dir} holds no deployment: set VCS_DATA_DIR (or --data-dir) to the "
                "deployment's, or pass --secrets FILE made with `vcs endpoint rotate-secret --all -o FILE`"
            )
        secrets_file = directory / "secrets.csv"
        _vcs(["endpoint", "rotate-secret", "--all", "-o", str(secrets_file)], env)
        notes.append("every endpoint's secret was replaced (`vcs endpoint rotate-secret --all`): a test deployment only")

    if admin_token_file is None:
        admin_token_file = directory / "admin.token"
        _write_private(admin_token_file, _vcs(["token", "create", "--role", "admin", "--name", f"loadtest-{run_id}"], env).strip() + "\n")

    result = Provisioned(directory, secrets_file, admin_token_file, notes=notes)

    if organizer_accounts > 0 and local:
        rows = []
        processes = []
        for n in range(organizer_accounts):
            username, password = f"lt-{run_id}-org{n:02d}", secrets.token_urlsafe(18)
            rows.append(f"{username},{password}\n")
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "app.cli", "user", "add", username, "--role", "organizer", "--full-name", f"Load test organizer {n}"],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True,
            ))
            processes[-1].stdin.write(password + "\n")  # type: ignore[union-attr]
            processes[-1].stdin.close()  # type: ignore[union-attr]
        for process in processes:
            if process.wait(timeout=120) != 0:
                raise ProvisionError(f"vcs user add failed: {process.stderr.read().strip()[-300:]}")  # type: ignore[union-attr]
        result.organizers = directory / "organizers.csv"
        _write_private(result.organizers, "username,password\n" + "".join(rows))
        notes.append(f"{organizer_accounts} organizer accounts lt-{run_id}-org* were added")

    key_present = bool(settings.secret_key) or (settings.data_dir / SECRET_KEY_FILE).exists()
    if key_present:
        key = Settings.load(env).secret_key
        probe_id = next((line.split(",")[0] for line in secrets_file.read_text().splitlines()[1:] if line[:1].isdigit()), "00004")
        token = mint_agent_token(key, probe_id, ttl=60, now=time.time() - EXPIRED_FOR)
        result.expired_agent_token_file = directory / "expired-agent.token"
        _write_private(result.expired_agent_token_file, token + "\n")

    if media_base:
        room = f"lt-media-{run_id}"

        def media(identity: str, role: str, *extra: str) -> str:
            return _vcs(["token", "media", "--room", room, "--identity", identity, "--role", role, "--ttl", str(media_ttl), *extra], env).strip()

        target = {
            "room": room,
            "whep_url": f"{media_base}/whep/{room}",
            "subscribe_token": media("lt-viewer", "subscribe"),
            "whip_url": f"{media_base}/whip/{room}",
            "publish_token": media("central", "publish", "--host"),
        }
        if key_present and media_subscribers:
            # one token per subscriber, each for a commune, minted as `vcs token media` would
            key = Settings.load(env).secret_key
            communes = [line.split(",")[0] for line in secrets_file.read_text().splitlines()[1:] if line[:1].isdigit()]
            target["subscribers"] = [
                {"identity": c, "token": mint_media_token(key, room=room, identity=c, role="subscribe", ttl=media_ttl)}
                for c in communes[:media_subscribers]
            ]
        result.media_target = directory / "media-target.json"
        _write_private(result.media_target, json.dumps(target, indent=2))
    return result


def find_sfu(url: str) -> str | None:
    """The SFU's base URL if the deployment embeds one (`/sfu/whep/` answers other than 404)."""
    base = url.rstrip("/") + "/sfu"
    try:
        response = httpx.post(f"{base}/whep/lt-probe", content=b"", headers={"Content-Type": "application/sdp"}, timeout=10)
    except httpx.HTTPError:
        return None
    return None if response.status_code == 404 else base


def revoke(url: str, token: str) -> bool:
    """Revoke an API token (the admin token made for the run)."""
    try:
        response = httpx.delete(f"{url.rstrip('/')}/api/v1/auth/token", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    except httpx.HTTPError:
        return False
    return response.status_code == 204
