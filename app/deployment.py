"""Which deployment a `vcs` command works on, from whatever folder it is run.

In order: `VCS_DATA_DIR`; else the data directory a running `vcs serve` of
this user recorded (`$XDG_RUNTIME_DIR/vcs/current`, or
`~/.local/state/vcs/current` without a runtime dir); else `./var`. A record
whose server has gone is ignored. The CLI says on stderr when it falls back
to a data directory that holds nothing yet, so a token is never minted
silently into a new, empty store.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from vcs.processes import pid_alive

__all__ = ["Deployment", "find_deployment", "record_file", "recorded_while_serving"]


@dataclass(frozen=True)
class Deployment:
    data_dir: Path
    source: str  # where it came from, for messages: "VCS_DATA_DIR", the record file, or "./var"

    @property
    def is_new(self) -> bool:
        """Nothing stored there yet: a command would start an empty store."""
        return not (self.data_dir.is_dir() and any(self.data_dir.iterdir()))


def record_file(environ: Mapping[str, str]) -> Path:
    runtime = environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "vcs" / "current"
    home = Path(environ.get("HOME") or Path.home())
    return home / ".local" / "state" / "vcs" / "current"


def find_deployment(environ: Mapping[str, str], cwd: Path, *, running: bool = True) -> Deployment:
    """`running`: look for a running server's record (not for a command that starts a server)."""
    if environ.get("VCS_DATA_DIR"):
        return Deployment(Path(environ["VCS_DATA_DIR"]), "VCS_DATA_DIR")
    record = record_file(environ)
    recorded = _read_record(record) if running else None
    if recorded is not None:
        return Deployment(recorded, f"the running server ({record})")
    return Deployment(cwd / "var", "./var")


def _read_record(record: Path) -> Path | None:
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
        pid, data_dir = int(data["pid"]), Path(data["data_dir"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not pid_alive(pid) or not data_dir.is_dir():
        return None
    return data_dir


@contextlib.contextmanager
def recorded_while_serving(data_dir: Path, environ: Mapping[str, str]) -> Iterator[None]:
    """Record `data_dir` as this user's running deployment while the block runs (best effort)."""
    record = record_file(environ)
    mine = json.dumps({"pid": os.getpid(), "data_dir": str(data_dir.resolve())})
    try:
        record.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = record.with_name(f".current.{os.getpid()}")
        tmp.write_text(mine, encoding="utf-8")
        os.replace(tmp, record)
    except OSError:
        pass  # a read-only home: commands then need VCS_DATA_DIR or the serving folder
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            if record.read_text(encoding="utf-8") == mine:  # another server may have recorded itself since
                record.unlink()
