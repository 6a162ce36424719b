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

__all__ = ["STATES", "RecordingLog", "check_writable", "purge_recordings", "recording_path"]

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

    async def started_since(self, since: float) -> list[dict[str, str]]:
        """The states of the recordings started since `since` (epoch seconds)."""
        members = await self.redis.zrangebyscore(keys.RECORDINGS, since, "+inf")
        async with self.redis.pipeline(transaction=False) as pipe:
            for member in members:
                pipe.hgetall(keys.recording(*member.split("/", 1)))
            states = await pipe.execute() if members else []
        return [s for s in states if s]

    async def started_before(self, before: float) -> list[tuple[str, str, dict[str, str]]]:
        """(meeting id, occurrence, state) of the recordings started before `before`."""
        members = await self.redis.zrangebyscore(keys.RECORDINGS, "-inf", f"({before}")
        found = []
        for member in members:
            meeting_id, occurrence = member.split("/", 1)
            found.append((meeting_id, occurrence, await self.get(meeting_id, occurrence)))
        return found

    async def forget(self, meeting_id: str, occurrence: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.recording(meeting_id, occurrence))
            pipe.zrem(keys.RECORDINGS, f"{meeting_id}/{occurrence}")
            await pipe.execute()


async def purge_recordings(redis: Any, directory: Path | None, before: float) -> int:
    """Delete the recordings started before `before` (epoch seconds): file, floor list and state; returns how many."""
    log = RecordingLog(redis)
    old = await log.started_before(before)
    for meeting_id, occurrence, state in old:
        if directory is not None:
            path = directory / (state.get("file") or recording_path(meeting_id, occurrence))
            for leftover in (path, path.with_suffix(path.suffix + ".json")):
                leftover.unlink(missing_ok=True)
            try:
                path.parent.rmdir()  # the meeting's folder, once its last recording is gone
            except OSError:
                pass
        await log.forget(meeting_id, occurrence)
    return len(old)
