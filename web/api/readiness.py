"""The readiness board of an occurrence or a drill: JSON, CSV, re-runs; drills started and listed.

Who sees what is the one visibility rule: a province-scoped caller sees the
meetings touching its province and, on a board, only its province's rooms;
it may start a drill only for its own province (403 otherwise).
"""

from __future__ import annotations

import csv
import io

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from scheduler.meeting import format_utc
from scheduler.readiness import RUNNERS, Subject
from vcs.errors import FieldError, ValidationFailed
from vcs.roles import Principal
from web.api.live import visible_occurrence
from web.auth import api_principal
from web.requests import json_body
from web.services import services

__all__ = ["board_csv", "drill_summary", "routes"]

CSV_COLUMNS = ("endpoint_id", "name", "province_code", "province", "online", "status", "reasons", "planned_tier", "tier",
               "bitrate_kbps", "loss_pct", "rtt_ms", "jitter_ms", "camera_ok", "mic_ok", "tested_at", "contact_name", "contact_phone")  # fmt: skip


async def _subject(request: Request) -> tuple[Principal, Subject]:
    principal = await api_principal(request)
    svc = services(request)
    if "drill_id" in request.path_params:
        record = await svc.readiness.drill(request.path_params["drill_id"])
        svc.readiness.check_drill_visible(principal, record)
        return principal, Subject(drill_id=record["id"])
    meeting, occurrence = await visible_occurrence(request)
    return principal, Subject(meeting.id, format_utc(occurrence))


def _province(request: Request) -> str | None:
    return request.query_params.get("province") or None


async def get_board(request: Request) -> Response:
    principal, subject = await _subject(request)
    svc = services(request)
    return JSONResponse(await svc.readiness.board(subject, principal, svc.clock(), _province(request)))


def board_csv(board: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in board["rooms"]:
        writer.writerow(["" if row.get(c) is None else (" ".join(row[c]) if c == "reasons" else row[c]) for c in CSV_COLUMNS])
    return out.getvalue()


async def get_board_csv(request: Request) -> Response:
    principal, subject = await _subject(request)
    svc = services(request)
    board = await svc.readiness.board(subject, principal, svc.clock(), _province(request))
    name = subject.key.replace(":", "-")
    return Response(board_csv(board), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="readiness-{name}.csv"'})  # fmt: skip


async def run_tests(request: Request) -> Response:
    """Re-run the test for one room (`endpoint_id`), a province (`province`) or every room (empty body)."""
    principal, subject = await _subject(request)
    principal.require(*RUNNERS)
    body = await json_body(request) if request.headers.get("content-length", "0") != "0" else {}
    svc = services(request)
    province = body.get("province") if isinstance(body.get("province"), str) else None
    endpoint_id = body.get("endpoint_id")
    if endpoint_id is not None and not isinstance(endpoint_id, str):
        raise ValidationFailed([FieldError("endpoint_id", "not a room of this board that you may see")])
    asked, offline = await svc.readiness.rerun(principal, subject, svc.clock(), province=province or None, endpoint_id=endpoint_id)
    return JSONResponse({**subject.fields(), "asked": asked, "offline": offline}, status_code=202)


async def start_drill(request: Request) -> Response:
    principal = await api_principal(request)
    principal.require(*RUNNERS)
    body = await json_body(request)
    province = body.get("province")
    if province is not None and (not isinstance(province, str) or not province):
        raise ValidationFailed([FieldError("province", "a province code, or null for the whole country")])
    svc = services(request)
    record = await svc.readiness.start_drill(principal, province, svc.clock())
    return JSONResponse(drill_summary(record), status_code=201)


def drill_summary(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != "expected"} | {"expected": len(record["expected"])}


async def list_drills(request: Request) -> Response:
    principal = await api_principal(request)
    return JSONResponse({"drills": await services(request).readiness.drills(principal)})


_OCC = "/meetings/{meeting_id}/occurrences/{occurrence}/readiness"
_DRILL = "/drills/{drill_id}/readiness"
routes = [
    Route(_OCC, get_board, methods=["GET"]),
    Route(_OCC + ".csv", get_board_csv, methods=["GET"]),
    Route(_OCC + "/run", run_tests, methods=["POST"]),
    Route("/drills", list_drills, methods=["GET"]),
    Route("/drills", start_drill, methods=["POST"]),
    Route(_DRILL, get_board, methods=["GET"]),
    Route(_DRILL + ".csv", get_board_csv, methods=["GET"]),
    Route(_DRILL + "/run", run_tests, methods=["POST"]),
]
