"""An occurrence's attendance and quality report: JSON and CSV (scheduler.reports).

Whoever may see the meeting may read its reports; before the occurrence has
ended (or before its end step ran) the figures are partial: `"final": false`.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from scheduler.reports import report_rows
from web.api.live import visible_occurrence
from web.auth import api_principal
from web.services import services

__all__ = ["report_csv", "routes"]


async def _report(request: Request) -> dict:
    await api_principal(request)
    meeting, occurrence = await visible_occurrence(request)
    svc = services(request)
    return await svc.reports.get(meeting, occurrence, datetime.fromtimestamp(svc.clock(), UTC))


def report_csv(report: dict) -> Response:
    """The rooms as CSV, UTF-8 with a byte-order mark so spreadsheet programs read the Vietnamese names."""
    out = io.StringIO()
    csv.writer(out).writerows(report_rows(report))
    name = f"report-{report['meeting_id']}-{report['occurrence'].replace(':', '')}.csv"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response("\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)


async def get_report(request: Request) -> Response:
    return JSONResponse(await _report(request))


async def get_report_csv(request: Request) -> Response:
    return report_csv(await _report(request))


routes = [
    Route("/meetings/{meeting_id}/occurrences/{occurrence}/report", get_report, methods=["GET"]),
    Route("/meetings/{meeting_id}/occurrences/{occurrence}/report.csv", get_report_csv, methods=["GET"]),
]
