"""A node's recordings: one ``Recorder`` per recorded room, and its state written for the meeting page.

The state (recording, done or failed with its reason; size, duration, floor
changes) goes to the shared store (``vcs.recordings.RecordingLog``) when it
changes, at most once a tick, so that the meeting page and the recordings list
follow a recording wherever its node runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime

from vcs.recordings import RecordingLog, recording_path

from .config import SfuConfig
from .errors import BadRequest
from .recorder import Recorder
from .room import Room

__all__ = ["Recordings"]

logger = logging.getLogger(__name__)


def _seconds_until(occurrence: str) -> float:
    """Seconds from now to an occurrence's start (its UTC start); 0 when it has begun or is not a time."""
    try:
        start = datetime.fromisoformat(occurrence)
    except ValueError:
        return 0.0
    if start.tzinfo is None:
        return 0.0
    return max(0.0, start.timestamp() - time.time())


class Recordings:
    def __init__(self, config: SfuConfig, log: RecordingLog | None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._log = log
        self._clock = clock
        self.recorders: dict[str, tuple[Recorder, str, str]] = {}  # room => (recorder, meeting id, occurrence)
        self._reported: dict[str, tuple[str, int, int]] = {}  # room => (state, bytes, whole seconds) last written

    async def start(self, room: Room, meeting_id: str, occurrence: str) -> None:
        """Record ``room``'s program into the occurrence's file; asked twice, the recording already made goes on.

        A node without a recording directory, or one that cannot create the file, records the failure
        (state "failed" with its reason) so that the meeting page shows it.
        """
        if room.name in self.recorders:
            return
        try:
            relative = recording_path(meeting_id, occurrence)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        directory = self.config.recording_dir
        delay_s = _seconds_until(occurrence)  # the room opens at warm-up; the recording begins with the meeting
        fields: dict[str, object] = {"node": self.config.node_id, "file": relative, "started": f"{time.time() + delay_s:.1f}", "bytes": 0}
        if directory is None:
            failed = {**fields, "state": "failed", "reason": "this node has no recording directory"}
            await self._write(meeting_id, occurrence, failed)
            return
        path = directory / relative
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            reason = "disk full" if exc.errno == 28 else f"cannot create {path.parent}: {exc.strerror}"
            await self._write(meeting_id, occurrence, {**fields, "state": "failed", "reason": reason})
            return
        recorder = Recorder(path, tuple(t.name for t in self.config.video_tiers), clock=self._clock, delay_s=delay_s)
        self.recorders[room.name] = (recorder, meeting_id, occurrence)
        recorder.follow(room)
        logger.info("room %s: recording into %s", room.name, path)
        await self._report(room.name)

    async def follow(self, room_name: str, room: Room) -> None:
        """Each tick: the recorder follows the room's tiers and floor, and its state is written when it changed."""
        if room_name in self.recorders:
            self.recorders[room_name][0].follow(room)
            await self._report(room_name)

    async def stop(self, room_name: str) -> None:
        entry = self.recorders.get(room_name)
        if entry is None:
            return
        recorder = entry[0]
        await asyncio.to_thread(recorder.close)
        await self._report(room_name, force=True)
        del self.recorders[room_name]
        self._reported.pop(room_name, None)

    async def _report(self, room_name: str, *, force: bool = False) -> None:
        """Write the recording's state when it changed (its size and duration with each tick); a failure is logged once.

        The muxer writes the file in large blocks, so its size alone grows in steps: the duration tells the progress.
        """
        recorder, meeting_id, occurrence = self.recorders[room_name]
        size = recorder.bytes
        last = self._reported.get(room_name)
        now = (recorder.state, size, int(recorder.duration_s))
        if not force and last == now:
            return
        if recorder.state == "failed" and (last is None or last[0] != "failed"):
            logger.error("room %s: recording failed (%s); the meeting goes on", room_name, recorder.reason)
        self._reported[room_name] = now
        fields = {"state": recorder.state, "bytes": size, "reason": recorder.reason, "node": self.config.node_id,
                  "tier": recorder.tier or "", "floor_changes": len(recorder.floor),
                  "duration_s": round(recorder.duration_s, 1), "frames": recorder.frames, "gaps": recorder.gaps, "dropped": recorder.dropped}  # fmt: skip
        await self._write(meeting_id, occurrence, fields)

    async def _write(self, meeting_id: str, occurrence: str, fields: dict[str, object]) -> None:
        if self._log is None:
            return
        try:
            await self._log.write(meeting_id, occurrence, fields, keep_s=self.config.recording_keep_s)
        except Exception:
            logger.warning("recording state of %s %s not written", meeting_id, occurrence, exc_info=True)
