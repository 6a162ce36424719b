"""An occurrence's recording: its state (JSON) and its file (range requests, so a player seeks).

The origin node writes the file and reports its state to Redis
(`vcs.recordings`); the web app serves the file from its own recording
directory (the same one, or a shared mount: docs/recordings.md). The meeting
page serves the file through `recording_file` too. Admins and organizers who
may see the meeting read both; viewers and ops do not (403).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from scheduler.meeting import Meeting, format_utc
from vcs.errors import NotFound
from vcs.recordings import RecordingLog, recording_path
from vcs.roles import Role
from web.api.live import visible_occurrence
from web.auth import api_principal
from web.services import Services, services

__all__ = ["recording_file", "routes"]


def _path(svc: Services, meeting: Meeting, occurrence: datetime) -> Path | None:
    directory = svc.settings.recording_dir
    return directory / recording_path(meeting.id, format_utc(occurrence)) if directory is not None else None


def recording_file(svc: Services, meeting: Meeting, occurrence: datetime, *, download: bool) -> Response:
    """The file, inline (to play) or as an attachment; 404 when this web host has none."""
    path = _path(svc, meeting, occurrence)
    if path is None or not path.is_file():
        raise NotFound("no recording of this occurrence")
    name = f"{meeting.id}-{path.name}"
    disposition = "attachment" if download else "inline"
    return FileResponse(path, media_type="video/webm", filename=name, content_disposition_type=disposition)


def _floor_list(path: Path | None) -> list[dict] | None:
    """The finished recording's floor changes, from the list written next to it (None: not there, or unreadable)."""
    if path is None:
        return None
    try:
        return json.loads(path.with_suffix(path.suffix + ".json").read_text())["floor"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


async def _visible(request: Request) -> tuple[Meeting, datetime]:
    principal = await api_principal(request)
    principal.require(Role.ADMIN, Role.ORGANIZER)
    return await visible_occurrence(request)


async def get_recording(request: Request) -> Response:
    meeting, occurrence = await _visible(request)
    svc = services(request)
    occ = format_utc(occurrence)
    state = await RecordingLog(svc.redis).get(meeting.id, occ)
    path = _path(svc, meeting, occurrence)
    on_disk = path is not None and path.is_file()
    if not state and not on_disk:
        raise NotFound("no recording of this occurrence")
    floor = _floor_list(path)
    url = f"/api/v1/meetings/{meeting.id}/occurrences/{occ}/recording.webm"
    return JSONResponse({
        "meeting_id": meeting.id,
        "occurrence": occ,
        "state": state.get("state", "done"),
        "reason": state.get("reason") or None,
        "bytes": path.stat().st_size if on_disk else int(state.get("bytes") or 0),
        "duration_s": float(state["duration_s"]) if state.get("duration_s") else None,
        "tier": state.get("tier") or None,
        "node": state.get("node") or None,
        "floor_changes": len(floor) if floor is not None else int(state.get("floor_changes") or 0),
        "floor": floor,
        "download_url": url if on_disk else None,
    })  # fmt: skip


async def get_recording_file(request: Request) -> Response:
    meeting, occurrence = await _visible(request)
    return recording_file(services(request), meeting, occurrence, download=bool(request.query_params.get("download")))


routes = [
    Route("/meetings/{meeting_id}/occurrences/{occurrence}/recording", get_recording, methods=["GET"]),
    Route("/meetings/{meeting_id}/occurrences/{occurrence}/recording.webm", get_recording_file, methods=["GET"]),
]
