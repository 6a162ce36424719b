"""The readiness board of an occurrence or a drill, and the drills page.

| path                                             | roles                   | what                                  |
|--------------------------------------------------|-------------------------|---------------------------------------|
| GET /meetings/{id}/readiness?occurrence=[&province=] | every role          | an occurrence's board                 |
| GET /meetings/{id}/readiness.csv?occurrence=     | every role              | the same as CSV                       |
| POST /meetings/{id}/readiness/run                | admin, ops, organizer   | re-run all, a province, one room      |
| GET /drills                                      | every role              | start a drill; the drills so far      |
| POST /drills                                     | admin, ops, organizer   | start a drill for a province or all   |
| GET /drills/{id}[?province=], /drills/{id}.csv   | every role              | a drill's board; CSV                  |
| POST /drills/{id}/run                            | admin, ops, organizer   | re-run all, a province, one room      |

The board and every rule are the API's (`scheduler.readiness`): a
province-scoped user sees only its province's rooms and drills, starts
drills only for it. While rooms wait their turn or test, the page reloads
itself every few seconds (static/readiness.js); without JavaScript the
Refresh link does the same.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from scheduler.lifecycle import current_or_next_occurrence
from scheduler.meeting import format_utc, parse_utc
from scheduler.readiness import RUNNERS, STATUSES, Subject
from vcs.errors import NotFound, ValidationFailed
from web.api.readiness import board_csv, drill_summary
from web.services import services
from web.ui.access import SignedIn, page
from web.ui.i18n import N_
from web.ui.meeting_views import named_occurrence, now_utc
from web.ui.nav import EVERYONE
from web.ui.pages_meetings import visible_meeting
from web.ui.rendering import render
from web.ui.sessions import Sessions
from web.ui.tilemap import share_class, tiles

__all__ = ["drill_board", "drill_csv", "drill_run", "drill_start", "drills_page", "occurrence_board", "occurrence_csv", "occurrence_run"]

REFRESH_SECONDS = 3  # how often the page reloads while tests wait or run
REASON_LABELS = {
    "error": N_("the test could not run"),
    "tier_below_plan": N_("quality below plan"),
    "loss": N_("packet loss over 2 %"),
    "camera": N_("camera: no or black picture"),
    "microphone": N_("microphone: nothing or silence"),
}
STATUS_LABELS = {"failed": N_("Failed"), "at_risk": N_("At risk"), "not_tested": N_("Not tested"), "ready": N_("Ready")}


def _province(request: Request) -> str | None:
    return request.query_params.get("province", "").strip()[:10] or None


def _tile_rows(board: dict) -> list[dict]:
    """Every province on the map with its rooms ready out of expected (and the problems), coloured by the share ready."""
    rows = []
    for tile in tiles():
        counts = board["provinces"].get(tile.code, {})
        expected, ready = counts.get("expected", 0), counts.get("ready", 0)
        problems = counts.get("failed", 0) + counts.get("at_risk", 0)
        rows.append({"tile": tile, "expected": expected, "ready": ready, "problems": problems, "css": share_class(ready, expected)})
    return rows


async def _board_page(request: Request, me: SignedIn, subject: Subject, context: dict) -> Response:
    svc = services(request)
    province = _province(request)
    board = await svc.readiness.board(subject, me.principal, svc.clock(), province)
    everything = board if not province else await svc.readiness.board(subject, me.principal, svc.clock())
    pending = await svc.readiness.pending(subject)
    for row in board["rooms"]:
        row["tested_epoch"] = parse_utc(row["tested_at"]).timestamp() if row["tested_at"] else None
    names = {t.code: t.name for t in tiles()}
    context.update(
        board=board,
        province=province,
        provinces=[(code, names.get(code, code)) for code in everything["provinces"] if code],
        tiles=_tile_rows(everything),
        statuses=STATUSES,
        status_labels=STATUS_LABELS,
        reason_labels=REASON_LABELS,
        pending=pending,
        refresh_seconds=REFRESH_SECONDS if pending else 0,
        can_run=me.principal.role in RUNNERS,
        now=svc.clock(),
    )
    return render(request, "readiness/board.html", context, section="drills" if subject.drill_id else "meetings")


# --- an occurrence ------------------------------------------------------------


async def _occurrence(request: Request, me: SignedIn, raw: object) -> tuple:
    svc = services(request)
    meeting = await visible_meeting(request, me)
    occurrence = named_occurrence(raw, meeting) or current_or_next_occurrence(meeting, now_utc(svc))
    if occurrence is None:
        raise NotFound("the meeting has no current or upcoming occurrence")
    return meeting, occurrence, Subject(meeting.id, format_utc(occurrence))


def _occurrence_url(meeting_id: str, occurrence: datetime, suffix: str = "", **extra: str | None) -> str:
    params = {"occurrence": format_utc(occurrence), **{k: v for k, v in extra.items() if v}}
    return f"/meetings/{meeting_id}/readiness{suffix}?{urlencode(params)}"


@page(*EVERYONE)
async def occurrence_board(request: Request, me: SignedIn) -> Response:
    meeting, occurrence, subject = await _occurrence(request, me, request.query_params.get("occurrence"))
    province = _province(request)
    return await _board_page(request, me, subject, {
        "meeting": meeting,
        "title": meeting.title,
        "starts_at": occurrence.timestamp(),
        "back_url": f"/meetings/{meeting.id}",
        "base_url": _occurrence_url(meeting.id, occurrence),
        "refresh_url": _occurrence_url(meeting.id, occurrence, province=province),
        "csv_url": _occurrence_url(meeting.id, occurrence, ".csv", province=province),
        "run_url": f"/meetings/{meeting.id}/readiness/run",
        "hidden": {"occurrence": format_utc(occurrence)},
    })  # fmt: skip


@page(*EVERYONE)
async def occurrence_csv(request: Request, me: SignedIn) -> Response:
    _, _, subject = await _occurrence(request, me, request.query_params.get("occurrence"))
    return await _csv(request, me, subject)


@page(*RUNNERS)
async def occurrence_run(request: Request, me: SignedIn) -> Response:
    form = await request.form()
    meeting, occurrence, subject = await _occurrence(request, me, form.get("occurrence"))
    province = form.get("back_province") or None
    return await _run(request, me, subject, _occurrence_url(meeting.id, occurrence, province=province if isinstance(province, str) else None))


# --- drills -------------------------------------------------------------------


async def _drill(request: Request, me: SignedIn) -> dict:
    svc = services(request)
    record = await svc.readiness.drill(request.path_params["drill_id"][:40])
    svc.readiness.check_drill_visible(me.principal, record)
    return record


def _drill_url(drill_id: str, suffix: str = "", province: str | None = None) -> str:
    return f"/drills/{drill_id}{suffix}" + (f"?{urlencode({'province': province})}" if province else "")


@page(*EVERYONE)
async def drills_page(request: Request, me: SignedIn) -> Response:
    svc = services(request)
    drills = await svc.readiness.drills(me.principal)
    names = {t.code: t.name for t in tiles()}
    choices = [(t.code, t.name) for t in sorted(tiles(), key=lambda t: t.name)]
    if me.principal.scoped:
        choices = [(code, name) for code, name in choices if code == me.principal.province_code]
    return render(request, "readiness/drills.html", {
        "drills": drills,
        "province_names": names,
        "choices": choices,
        "national": not me.principal.scoped,
        "can_run": me.principal.role in RUNNERS,
        "statuses": STATUSES,
        "status_labels": STATUS_LABELS,
    }, section="drills")  # fmt: skip


@page(*RUNNERS)
async def drill_start(request: Request, me: SignedIn) -> Response:
    svc = services(request)
    raw = (await request.form()).get("province")
    province = raw.strip()[:10] if isinstance(raw, str) and raw.strip() and raw.strip() != "all" else None
    record = await svc.readiness.start_drill(me.principal, province, svc.clock(), via="ui")
    await Sessions(svc.redis).set_flash(me.session, N_("Drill started: {count} rooms are asked to test."), count=drill_summary(record)["expected"])
    return RedirectResponse(_drill_url(record["id"]), status_code=303)


@page(*EVERYONE)
async def drill_board(request: Request, me: SignedIn) -> Response:
    record = await _drill(request, me)
    names = {t.code: t.name for t in tiles()}
    province = _province(request)
    scope = names.get(record["province"], record["province"]) if record["province"] else None
    return await _board_page(request, me, Subject(drill_id=record["id"]), {
        "drill": record,
        "title": scope,
        "starts_at": record["started_at"],
        "back_url": "/drills",
        "base_url": _drill_url(record["id"]),
        "refresh_url": _drill_url(record["id"], province=province),
        "csv_url": _drill_url(record["id"], ".csv", province),
        "run_url": f"/drills/{record['id']}/run",
        "hidden": {},
    })  # fmt: skip


@page(*EVERYONE)
async def drill_csv(request: Request, me: SignedIn) -> Response:
    record = await _drill(request, me)
    return await _csv(request, me, Subject(drill_id=record["id"]))


@page(*RUNNERS)
async def drill_run(request: Request, me: SignedIn) -> Response:
    record = await _drill(request, me)
    province = (await request.form()).get("back_province") or None
    return await _run(request, me, Subject(drill_id=record["id"]), _drill_url(record["id"], province=province if isinstance(province, str) else None))


# --- shared -------------------------------------------------------------------


async def _csv(request: Request, me: SignedIn, subject: Subject) -> Response:
    svc = services(request)
    board = await svc.readiness.board(subject, me.principal, svc.clock(), _province(request))
    stamp = datetime.fromtimestamp(svc.clock(), UTC).strftime("%Y%m%dT%H%MZ")
    name = subject.key.replace(":", "-")
    return Response(board_csv(board), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="readiness-{name}-{stamp}.csv"'})  # fmt: skip


async def _run(request: Request, me: SignedIn, subject: Subject, back: str) -> Response:
    """The three re-run buttons: `scope` all, province (with `province`) or room (with `endpoint_id`)."""
    svc = services(request)
    form = await request.form()
    scope = form.get("scope")
    province = form.get("province") if scope == "province" and isinstance(form.get("province"), str) else None
    endpoint_id = form.get("endpoint_id") if scope == "room" and isinstance(form.get("endpoint_id"), str) else None
    sessions = Sessions(svc.redis)
    try:
        asked, offline = await svc.readiness.rerun(me.principal, subject, svc.clock(), province=province or None,
                                                   endpoint_id=endpoint_id[:20] if endpoint_id else None, via="ui")  # fmt: skip
    except ValidationFailed:
        await sessions.set_flash(me.session, N_("Choose a room of this board."), "error")
        return RedirectResponse(back, status_code=303)
    if offline:
        await sessions.set_flash(me.session, N_("{asked} rooms are asked to test again; {offline} are offline and cannot."), asked=asked, offline=offline)
    else:
        await sessions.set_flash(me.session, N_("{asked} rooms are asked to test again."), asked=asked)
    return RedirectResponse(back, status_code=303)
