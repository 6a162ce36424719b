"""After a meeting: its attendance report (a page that prints on A4, and CSV) and its recording."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from scheduler.meeting import format_utc, parse_utc
from vcs.errors import NotFound
from vcs.recordings import RecordingLog, recording_path
from web.api.reports import report_csv
from web.services import services
from web.ui.access import SignedIn, page
from web.ui.meeting_views import check_visible, named_occurrence
from web.ui.nav import BOOKERS, EVERYONE
from web.ui.rendering import render

__all__ = ["recording_file", "recording_rows", "report_csv_page", "report_page"]


async def visible_meeting(request: Request, me: SignedIn):
    svc = services(request)
    meeting = await svc.meetings.get(request.path_params["meeting_id"])
    await check_visible(svc, me.principal, meeting)
    return meeting


def _epoch(text: str | None) -> float | None:
    return parse_utc(text).timestamp() if text else None


async def _report(request: Request, me: SignedIn) -> dict:
    svc = services(request)
    meeting = await visible_meeting(request, me)
    occurrence = named_occurrence(request.path_params["occurrence"], meeting)
    return await svc.reports.get(meeting, occurrence, datetime.fromtimestamp(svc.clock(), UTC))


@page(*EVERYONE)
async def report_page(request: Request, me: SignedIn) -> Response:
    report = await _report(request, me)
    for row in report["rooms"]:
        row["first_join_at"], row["last_leave_at"] = _epoch(row["first_join"]), _epoch(row["last_leave"])
    context = {
        "report": report,
        "starts_at": _epoch(report["start"]),
        "ends_at": _epoch(report["end"]),
        "as_of": _epoch(report["as_of"]),
        "csv_url": f"{request.url.path}.csv",
    }
    return render(request, "meetings/report.html", context, section="meetings")


@page(*EVERYONE)
async def report_csv_page(request: Request, me: SignedIn) -> Response:
    return report_csv(await _report(request, me))


@page(*BOOKERS)
async def recording_file(request: Request, me: SignedIn) -> Response:
    """The recording, to play in the page (range requests) or to download (`?download=1`)."""
    svc = services(request)
    meeting = await visible_meeting(request, me)
    occurrence = named_occurrence(request.path_params["occurrence"], meeting)
    directory = svc.settings.recording_dir
    relative = recording_path(meeting.id, format_utc(occurrence))
    path = directory / relative if directory is not None else None
    if path is None or not path.is_file():
        raise NotFound("no recording of this occurrence")
    name = f"{meeting.id}-{relative.rsplit('/', 1)[-1]}"
    disposition = "attachment" if request.query_params.get("download") else "inline"
    return FileResponse(path, media_type="video/webm", filename=name, content_disposition_type=disposition)


async def recording_rows(svc, meeting, starts: list[datetime]) -> list[dict]:
    """For the meeting page: each started occurrence with its report link and its recording's state."""
    log = RecordingLog(svc.redis)
    rows = []
    for start in starts:
        occ = format_utc(start)
        state = await log.get(meeting.id, occ)
        rows.append({
            "key": occ,
            "starts_at": start.timestamp(),
            "report_url": f"/meetings/{meeting.id}/occurrences/{occ}/report",
            "recording_url": f"/meetings/{meeting.id}/occurrences/{occ}/recording",
            "recording": state.get("state"),
            "recording_bytes": int(state.get("bytes") or 0),
            "recording_reason": state.get("reason", ""),
        })  # fmt: skip
    return rows
