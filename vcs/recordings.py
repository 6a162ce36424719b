"""Recordings of occurrences: where their files live and the state their origin node reports.

The origin node records (``sfu.recorder``) into the deployment's recording
directory, one file per occurrence at ``recording_path``; it writes the
recording's state to Redis (``keys.recording``), which the meeting page,
``/metrics`` and the download read. The web app serves the file from the same
directory: on one machine it is the same directory; with nodes on other
machines it is a shared mount (docs/recordings.md).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

from vcs import keys

__all__ = ["STATES", "RecordingLog", "check_writable", "recording_path"]

STATES = ("recording", "done", "failed")
_SAFE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def recording_path(meeting_id: str, occurrence: str) -> str:
    """The file's path under the recording directory: `<meeting id>/<UTC start, no colons>.webm`."""
    if not _SAFE.match(meeting_id):
        raise ValueError(f"not a meeting id: {meeting_id!r}")
    return f"{meeting_id}/{occurrence.replace(':', '').replace('-', '')}.webm"


def check_writable(directory: Path | None) -> str | None:
    """Why recordings cannot be written to `directory` (None: they can)."""
    if directory is None:
        return "recording is off on this deployment (VCS_RECORDING_DIR=off)"
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"the recording directory {directory} cannot be created: {exc.strerror or exc}"
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"the recording directory {directory} is not writable"
    return None


class RecordingLog:
    """The recording states in Redis: written by the recording node, read by the web app and the retention job."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis

    async def write(self, meeting_id: str, occurrence: str, fields: dict[str, object], *, keep_s: int) -> None:
        key = keys.recording(meeting_id, occurrence)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={k: str(v) for k, v in {**fields, "updated": f"{time.time():.1f}"}.items()})
            pipe.expire(key, keep_s)
            pipe.zadd(keys.RECORDINGS, {f"{meeting_id}/{occurrence}": time.time()}, nx=True)
            await pipe.execute()

    async def get(self, meeting_id: str, occurrence: str) -> dict[str, str]:
        return await self.redis.hgetall(keys.recording(meeting_id, occurrence))
