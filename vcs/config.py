"""Deployment settings, read once from the environment at the program's edge.

Core code receives a frozen `Settings` and never reads `os.environ` itself.

| variable            | meaning                                               | default               |
|---------------------|-------------------------------------------------------|-----------------------|
| VCS_HOST            | address `vcs serve` binds                             | 127.0.0.1             |
| VCS_PORT            | port `vcs serve` binds                                | 8000                  |
| VCS_PUBLIC_URL      | URL agents and browsers use to reach this deployment  | http://HOST:PORT      |
| VCS_DATA_DIR        | embedded Redis data, generated secret key             | ./var                 |
| VCS_REDIS_URL       | external Redis; unset means the embedded server       | (embedded)            |
| VCS_SECRET_KEY      | signs media and agent tokens; generated when unset    | (data dir file)       |
| VCS_PRESENCE_TIMEOUT| seconds without a heartbeat before offline            | 30                    |
| VCS_LOG_LEVEL       | logging level                                         | INFO                  |
| VCS_SFU_TIERS       | the tier ladder (`vcs.tiers.parse_tiers`)             | 720p,360p,180p,audio  |
| VCS_SFU_SHARE       | share of a commune's link reserved for VCS            | 0.5                   |
| VCS_SFU_AUDIO_KBPS  | audio budget added to every tier's cost               | 64                    |
| VCS_RECORDING_DIR   | where the origin writes recordings; `off` disables    | DATA_DIR/recordings   |
| VCS_RETENTION_DAYS  | days reports and recordings are kept after a meeting  | 365                   |
| VCS_REPORT_SAMPLE_S | seconds between two attendance samples of a meeting   | 5                     |

The last three are the one ladder the booking preview, the agents' schedules
and the SFU fit against (`vcs.tiers.Ladder`).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from vcs.tiers import DEFAULT_LADDER, Ladder

__all__ = ["ConfigError", "Settings", "load_secret_key"]

SECRET_KEY_FILE = "secret_key"
MIN_SECRET_LENGTH = 32


class ConfigError(ValueError):
    """A setting has a value the program cannot use."""


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = "http://127.0.0.1:8000"
    data_dir: Path = Path("var")
    redis_url: str | None = None
    secret_key: str = ""
    presence_timeout: float = 30.0
    log_level: str = "INFO"
    ladder: Ladder = DEFAULT_LADDER
    recording: str = ""  # VCS_RECORDING_DIR as given: a directory, "off", or "" for DATA_DIR/recordings
    retention_days: float = 365.0
    report_sample_s: float = 5.0

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        """Parse settings; the secret key is resolved separately (it may touch disk)."""
        host = environ.get("VCS_HOST", cls.host)
        port = _int(environ, "VCS_PORT", cls.port)
        if not 0 < port < 65536:
            raise ConfigError(f"VCS_PORT must be 1-65535, got {port}")
        public_url = environ.get("VCS_PUBLIC_URL") or f"http://{host}:{port}"
        presence_timeout = float(_int(environ, "VCS_PRESENCE_TIMEOUT", 30))
        try:
            ladder = Ladder.from_environ(environ)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        data_dir = Path(environ.get("VCS_DATA_DIR", "var"))
        recording = environ.get("VCS_RECORDING_DIR", "")
        retention_days = float(_int(environ, "VCS_RETENTION_DAYS", 365))
        if retention_days <= 0:
            raise ConfigError("VCS_RETENTION_DAYS must be positive")
        try:
            sample_s = float(environ.get("VCS_REPORT_SAMPLE_S") or 5)
        except ValueError:
            raise ConfigError("VCS_REPORT_SAMPLE_S must be a number of seconds") from None
        if not 0.2 <= sample_s <= 60:
            raise ConfigError("VCS_REPORT_SAMPLE_S must be between 0.2 and 60 seconds")
        return cls(
            host=host,
            port=port,
            public_url=public_url.rstrip("/"),
            data_dir=data_dir,
            redis_url=environ.get("VCS_REDIS_URL") or None,
            secret_key=environ.get("VCS_SECRET_KEY", ""),
            presence_timeout=presence_timeout,
            log_level=environ.get("VCS_LOG_LEVEL", "INFO").upper(),
            ladder=ladder,
            recording=recording,
            retention_days=retention_days,
            report_sample_s=sample_s,
        )

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The one call entry points make: environment plus a resolved secret key."""
        settings = cls.from_environ(os.environ if environ is None else environ)
        return replace(settings, secret_key=load_secret_key(settings))

    @property
    def recording_dir(self) -> Path | None:
        """Where recordings are written and served from; None: recording is off on this deployment."""
        if self.recording == "off":
            return None
        return Path(self.recording) if self.recording else self.data_dir / "recordings"

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)


def load_secret_key(settings: Settings) -> str:
    """Return the configured key, or the one kept in the data directory (made on first run)."""
    if settings.secret_key:
        if len(settings.secret_key) < MIN_SECRET_LENGTH:
            raise ConfigError(f"VCS_SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters")
        return settings.secret_key
    path = settings.data_dir / SECRET_KEY_FILE
    if path.exists():
        return path.read_text().strip()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # Create with owner-only permissions before writing the key into it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
