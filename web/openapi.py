"""The OpenAPI 3.1 document of /api/v1, written out so clients can rely on it.

Every route mounted under /api/v1 is described here, with every status it
answers (tests/web/test_openapi.py checks both against the running app: the
routes, and generated requests that may get no undocumented status and no 5xx).
Error bodies are `Error` (`vcs.errors` turned into HTTP by `web.errors`).
"""

from __future__ import annotations

__all__ = ["openapi_document"]

_JSON = "application/json"

# why each error status is answered; an operation lists the ones it can give
_WHY = {
    "400": "the body is not a JSON object (or not valid JSON)",
    "401": "no, bad or expired token",
    "403": "the role or the province scope forbids it",
    "404": "no such object",
    "409": "conflicts with other meetings or a concurrent change",
    "413": "the body is too large",
    "415": "wrong Content-Type",
    "422": "invalid fields, each named with its reason",
    "429": "too many failed attempts: wait Retry-After seconds",
    "502": "the SFU node holding the room cannot be reached",
    "503": "storage unavailable, try again",
}
_ERROR_SCHEMAS = {"409": "ConflictError"}
_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _op(
    summary: str,
    ok: dict | None = None,
    *,
    errors: str = "",
    status: str = "200",
    media: str = _JSON,
    body: dict | None = None,
    body_media: str = _JSON,
    params: list | None = None,
    auth: str = "bearer",
    description: str = "",
) -> dict:
    """One operation. `errors`: the 4xx/5xx it may answer besides 401 (for authenticated ones) and 503."""
    responses: dict = {status: {"description": "OK" if status != "204" else "done, no body"}}
    if ok is not None:
        responses[status]["content"] = {media: {"schema": ok}}
    codes = set(errors.split()) | {"503"} | ({"401"} if auth else set())
    if body is not None and body_media == _JSON:
        codes |= {"400", "415"}
    for code in sorted(codes):
        responses[code] = {"description": _WHY[code], "content": {_JSON: {"schema": _ref(_ERROR_SCHEMAS.get(code, "Error"))}}}
        if code in ("429", "503"):
            responses[code]["headers"] = _RETRY_AFTER
    op: dict = {"summary": summary, "responses": responses}
    if description:
        op["description"] = description
    op["security"] = [{auth: []}] if auth else []
    if body is not None:
        op["requestBody"] = {"required": True, "content": {body_media: {"schema": body}}}
    if params:
        op["parameters"] = params
    return op


def _q(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _path(name: str, description: str, pattern: str | None = None) -> dict:
    schema = {"type": "string", **({"pattern": pattern} if pattern else {})}
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


_ENDPOINT_ID = _path("endpoint_id", "`central`, `hall-NN` or a commune's five-digit code")
_MEETING_ID = _path("meeting_id", "the meeting's id, e.g. m1a2b3c4d5e6f")
_OCCURRENCE = _path("occurrence", "the occurrence's UTC start, e.g. 2025-09-02T01:00:00Z")
_ACCESS = ["gov_fiber", "internet_fiber", "4g", "satellite"]
_FILTERS = [
    _q("province", {"type": "string"}, "two-digit province code (an organizer's own is implied)"),
    _q("kind", {"enum": ["central", "hall", "commune"]}, "endpoint kind"),
    _q("access", {"enum": _ACCESS}, "link access type"),
    _q("status", {"enum": ["online", "offline"]}, "presence"),
    _q("q", {"type": "string"}, "name search, with or without diacritics"),
]
_TIME = {"type": "string", "format": "date-time"}
_CSV = {"type": "string", "description": "columns id, name, province_code, access, down_kbps, up_kbps, rtt_ms, loss_pct"}
_ICS = {"type": "string", "description": "iCalendar (RFC 5545)"}
_REPORT_CSV = {
    "type": "string",
    "description": "columns endpoint_id, name, province, province_name, attended, first_join, last_leave, minutes_present,"
    " drops, rejoins, tier_minutes (720p=12.5;360p=3.0), worst_loss_pct, worst_rtt_ms, had_floor, floor_minutes",
}


def _meeting_paths() -> dict:
    occurrence_live = [_MEETING_ID, _OCCURRENCE]
    floor_body = {"type": "object", "required": ["endpoint_id"], "properties": {"endpoint_id": {"type": "string"}}}
    floor = {
        "post": _op(
            "Give the floor to a participant: its audio and video go to everyone (admin, organizer)",
            _ref("Floor"),
            errors="403 404 422 502",
            body=floor_body,
            params=[_MEETING_ID],
        ),
        "delete": _op("Take the floor back (admin, organizer)", _ref("Floor"), errors="403 404 422 502", params=[_MEETING_ID]),
    }
    occurrence_floor = {m: {**op, "parameters": occurrence_live} for m, op in floor.items()}
    live = _op("Live state of the current or next occurrence", _ref("LiveSummary"), errors="403 404 422", params=[_MEETING_ID])
    stream = _op(
        "The live state as Server-Sent Events: one `live` event at once, then one per change",
        {"type": "string"},
        media="text/event-stream",
        errors="403 404 422",
        params=[_MEETING_ID],
    )
    return {
        "/api/v1/meetings": {
            "get": _op(
                "Occurrences between `from` and `to` (default: yesterday to 30 days ahead), by start",
                {
                    "type": "object",
                    "properties": {"items": {"type": "array", "items": _ref("Occurrence")}, "total": {"type": "integer"}, "from": _TIME, "to": _TIME},
                },
                errors="422",
                params=[
                    _q("from", _TIME, "ISO 8601 time with offset"),
                    _q("to", _TIME, "ISO 8601 time with offset, within a year of from"),
                    _q("province", {"type": "string"}, "only meetings with communes of this province"),
                ],
            ),
            "post": _op(
                "Book a meeting (admin, organizer); refused with 409 on conflicts unless an admin overrides",
                {"type": "object", "properties": {"meeting": _ref("Meeting")}, "allOf": [_ref("Preview")]},
                status="201",
                errors="403 409 422",
                body=_ref("MeetingInput"),
            ),
        },
        "/api/v1/meetings/preview": {
            "post": _op("Conflicts and bandwidth plan of a meeting before booking it (admin, organizer)", _ref("Preview"), errors="403 422", body=_ref("MeetingInput"))
        },
        "/api/v1/meetings/{meeting_id}": {
            "get": _op("One meeting with its next occurrences", _ref("Meeting"), errors="403 404", params=[_MEETING_ID]),
            "patch": _op(
                "Change a meeting (admin, its organizer); the fields given replace the stored ones",
                {"type": "object", "properties": {"meeting": _ref("Meeting")}, "allOf": [_ref("Preview")]},
                errors="403 404 409 422",
                body={"type": "object", "properties": _meeting_fields()},
                params=[_MEETING_ID],
            ),
            "delete": _op("Cancel a meeting, every occurrence not yet over (admin, its organizer)", _ref("Meeting"), errors="403 404 409 422", params=[_MEETING_ID]),
        },
        "/api/v1/meetings/{meeting_id}.ics": {
            "get": _op("The meeting as an iCalendar file", _ICS, media="text/calendar", errors="403 404", params=[_MEETING_ID]),
        },
        "/api/v1/meetings/{meeting_id}/plan": {
            "get": _op("The meeting's bandwidth plan and conflicts as they stand", _ref("Preview"), errors="403 404 422", params=[_MEETING_ID]),
        },
        "/api/v1/meetings/{meeting_id}/occurrences/{occurrence}": {
            "delete": _op("Cancel one occurrence (admin, its organizer)", _ref("Meeting"), errors="403 404 409 422", params=occurrence_live),
        },
        "/api/v1/meetings/{meeting_id}/live": {"get": live},
        "/api/v1/meetings/{meeting_id}/live/stream": {"get": stream},
        "/api/v1/meetings/{meeting_id}/occurrences/{occurrence}/report": {
            "get": _op(
                "Attendance and quality report of an occurrence: each expected room, totals per province and for the country;"
                " `final` false while the occurrence has not ended (partial figures)",
                _ref("Report"),
                errors="403 404 422",
                params=occurrence_live,
            )
        },
        "/api/v1/meetings/{meeting_id}/occurrences/{occurrence}/report.csv": {
            "get": _op(
                "The report's rooms as CSV (UTF-8 with a byte-order mark)",
                _REPORT_CSV,
                media="text/csv",
                errors="403 404 422",
                params=occurrence_live,
            )
        },
        "/api/v1/meetings/{meeting_id}/occurrences/{occurrence}/live": {"get": {**live, "parameters": occurrence_live}},
        "/api/v1/meetings/{meeting_id}/occurrences/{occurrence}/live/stream": {"get": {**stream, "parameters": occurrence_live}},
        "/api/v1/meetings/{meeting_id}/floor": floor,
        "/api/v1/meetings/{meeting_id}/occurrences/{occurrence}/floor": occurrence_floor,
        "/api/v1/endpoints/{endpoint_id}/calendar.ics": {
            "get": _op("An endpoint's calendar: every meeting it takes part in or hosts", _ICS, media="text/calendar", errors="403 404", params=[_ENDPOINT_ID]),
        },
    }


def _meeting_fields() -> dict:
    return {
        "title": {"type": "string"},
        "host_endpoint_id": {"type": "string", "description": "`central` (default) or `hall-NN`"},
        "start": {**_TIME, "description": "first occurrence, with offset"},
        "duration_minutes": {"type": "number", "minimum": 1},
        "recurrence": {"type": ["string", "null"], "description": "RFC 5545 RRULE: FREQ=DAILY|WEEKLY|MONTHLY, INTERVAL, COUNT, UNTIL, BYDAY, BYMONTHDAY"},
        "selector": _ref("Selector"),
        "media": {"type": "object", "properties": {"max_tier": {"type": "string", "description": "highest tier sent, e.g. 720p"}}},
        "override_conflicts": {"type": "boolean", "description": "book despite conflicts (admin only)"},
    }


def _registry_paths() -> dict:
    endpoint = _ref("Endpoint")
    return {
        "/api/v1/endpoints": {
            "get": _op(
                "List endpoints",
                {"type": "object", "properties": {"items": {"type": "array", "items": endpoint}, "total": {"type": "integer"}, "page": {"type": "integer"}, "per_page": {"type": "integer"}}},
                errors="403 422",
                params=_FILTERS + [_q("page", {"type": "integer", "minimum": 1}, "page number"), _q("per_page", {"type": "integer", "minimum": 1, "maximum": 500}, "page size")],
            )
        },
        "/api/v1/endpoints/{endpoint_id}": {
            "get": _op("Get one endpoint", endpoint, errors="403 404", params=[_ENDPOINT_ID]),
            "patch": _op(
                "Update an endpoint's link profile (admin, ops)",
                endpoint,
                errors="403 404 422",
                params=[_ENDPOINT_ID],
                body={"type": "object", "required": ["link"], "properties": {"link": _ref("LinkProfile")}},
            ),
        },
        "/api/v1/endpoints/{endpoint_id}/secret": {
            "post": _op(
                "Rotate an endpoint's secret; the new one is returned once (admin, ops)",
                {"type": "object", "properties": {"endpoint_id": {"type": "string"}, "secret": {"type": "string"}}},
                errors="403 404",
                params=[_ENDPOINT_ID],
            ),
        },
        "/api/v1/endpoints.csv": {
            "get": _op("Export link profiles as CSV (UTF-8 with a byte-order mark)", _CSV, media="text/csv", errors="403 422", params=_FILTERS),
            "post": _csv_import(),
            "put": _csv_import(),
        },
        "/api/v1/provinces": {
            "get": _op("Per-province summaries: communes, online, access mix", {"type": "object", "properties": {"items": {"type": "array", "items": _ref("Province")}, "total": {"type": "integer"}}}),
        },
        "/api/v1/provinces/{code}": {"get": _op("One province's summary", _ref("Province"), errors="403 404", params=[_path("code", "two-digit province code")])},
    }


def _csv_import() -> dict:
    return _op(
        "Import link profiles from CSV, all or nothing (admin, ops)",
        {"type": "object", "properties": {"updated": {"type": "integer"}}},
        errors="403 413 422",
        body=_CSV,
        body_media="text/csv",
        description="UTF-8 with or without BOM, UTF-16 with BOM or Windows-1258; comma, semicolon or tab separated. A bad row (named by line) imports nothing.",
    )


def _session_paths() -> dict:
    credentials = {
        "type": "object",
        "required": ["endpoint_id", "secret"],
        "properties": {"endpoint_id": {"type": "string"}, "secret": {"type": "string"}},
    }
    return {
        "/api/v1/auth/token": {
            "post": _op(
                "Sign in with username and password for a 12-hour API token (throttled like the web sign-in)",
                {"type": "object", "properties": {"token": {"type": "string"}, "expires_in": {"type": "integer"}, "role": {"type": "string"}, "province": {"type": ["string", "null"]}}},
                errors="401 422 429",
                body={"type": "object", "required": ["username", "password"], "properties": {"username": {"type": "string"}, "password": {"type": "string"}}},
                auth="",
            ),
            "delete": _op("Revoke the token sent", status="204"),
        },
        "/api/v1/agent/login": {
            "post": _op(
                "Exchange an endpoint id and secret for an agent token",
                {"type": "object", "properties": {"token": {"type": "string"}, "expires_in": {"type": "integer"}, "server_time": {"type": "number"}}},
                errors="401 422 429",
                body=credentials,
                auth="",
            )
        },
        "/api/v1/agent/heartbeat": {
            "post": _op("Report the endpoint alive", {"type": "object", "properties": {"endpoint_id": {"type": "string"}, "server_time": {"type": "number"}}}, auth="agent"),
        },
        "/api/v1/agent/ws": {
            "get": {
                "summary": "The agent's WebSocket: heartbeats, its schedule, change notifications (docs/agent-protocol.md)",
                "x-websocket": True,
                "security": [{"agent": []}],
                "responses": {"101": {"description": "switching to WebSocket; a bad token closes it with code 4401"}},
            }
        },
    }


def _schemas() -> dict:
    integer, string, number = {"type": "integer"}, {"type": "string"}, {"type": "number"}
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": string, "fields": {"type": "array", "items": {"type": "object", "properties": {"field": string, "reason": string}}}},
        },
        "ConflictError": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": string, "conflicts": {"type": "array", "items": _ref("Conflict")}},
        },
        "LinkProfile": {
            "type": "object",
            "properties": {"access": {"enum": _ACCESS}, "down_kbps": integer, "up_kbps": integer, "rtt_ms": integer, "loss_pct": number},
        },
        "Endpoint": {
            "type": "object",
            "properties": {
                "id": string,
                "kind": {"enum": ["central", "hall", "commune"]},
                "name": string,
                "province_code": {"type": ["string", "null"]},
                "division_type": string,
                "link": _ref("LinkProfile"),
                "status": {"enum": ["online", "offline"]},
                "last_seen": {"type": ["string", "null"], "format": "date-time"},
            },
        },
        "Province": {
            "type": "object",
            "properties": {
                "code": string,
                "name": string,
                "division_type": string,
                "communes": integer,
                "online": integer,
                "hall_online": {"type": "boolean"},
                "access": {"type": "object", "additionalProperties": integer},
            },
        },
        "Selector": {
            "type": "object",
            "required": ["kind"],
            "properties": {
                "kind": {"enum": ["all", "provinces", "communes", "group"]},
                "province_codes": {"type": "array", "items": string},
                "commune_ids": {"type": "array", "items": string},
                "group": {"type": ["string", "null"]},
            },
        },
        "MeetingInput": {"type": "object", "required": ["title", "start", "duration_minutes", "selector"], "properties": _meeting_fields()},
        "Meeting": {
            "type": "object",
            "properties": {
                **_meeting_fields(),
                "id": string,
                "organizer": string,
                "cancelled": {"type": "array", "items": _TIME},
                "statuses": {"type": "object", "additionalProperties": string},
                "start_local": string,
                "timezone": string,
                "next_occurrences": {"type": "array", "items": _ref("Occurrence")},
            },
        },
        "Occurrence": {
            "type": "object",
            "properties": {"meeting_id": string, "title": string, "start": _TIME, "end": _TIME, "start_local": string, "status": string},
        },
        "Conflict": {
            "type": "object",
            "properties": {
                "endpoint_id": string,
                "meeting_id": string,
                "meeting_title": string,
                "occurrence_start": _TIME,
                "occurrence_end": _TIME,
                "candidate_start": _TIME,
            },
        },
        "Preview": {
            "type": "object",
            "properties": {
                "participants": integer,
                "conflicts": {"type": "array", "items": _ref("Conflict")},
                "conflict_count": integer,
                "capacity_short": integer,
                "plan": {"type": "object", "description": "tiers per commune, trunks and SFU nodes with their load"},
            },
        },
        "LiveSummary": {
            "type": "object",
            "properties": {
                "meeting_id": string,
                "occurrence": _TIME,
                "status": string,
                "expected": integer,
                "online": integer,
                "joined": integer,
                "failed": integer,
                "left": integer,
                "host": {"type": ["string", "null"]},
                "tiers": {"type": "object", "additionalProperties": integer},
                "provinces": {"type": "object", "additionalProperties": {"type": "object", "additionalProperties": integer}},
                "worst": {"type": "array", "items": {"type": "object"}},
                "floor": {"type": ["string", "null"]},
            },
        },
        "Report": {
            "type": "object",
            "properties": {
                "meeting_id": string,
                "title": string,
                "occurrence": _TIME,
                "start": _TIME,
                "end": _TIME,
                "final": {"type": "boolean", "description": "false: the occurrence has not ended, the figures are partial"},
                "as_of": {"type": ["string", "null"], "format": "date-time", "description": "time of the last sample"},
                "sample_s": {"type": "number"},
                "rooms": {"type": "array", "items": _ref("ReportRoom")},
                "provinces": {"type": "array", "items": {"type": "object", "description": "code, name and the totals"}},
                "country": {"type": "object", "description": "expected, attended, minutes_present, drops, rejoins, floor_minutes"},
            },
        },
        "ReportRoom": {
            "type": "object",
            "properties": {
                "endpoint_id": string,
                "name": string,
                "province": {"type": ["string", "null"]},
                "host": {"type": "boolean"},
                "attended": {"type": "boolean"},
                "first_join": {"type": ["string", "null"], "format": "date-time"},
                "last_leave": {"type": ["string", "null"], "format": "date-time"},
                "minutes_present": {"type": "number"},
                "drops": integer,
                "rejoins": integer,
                "tier_minutes": {"type": "object", "additionalProperties": {"type": "number"}},
                "worst_loss_pct": {"type": ["number", "null"]},
                "worst_rtt_ms": {"type": ["number", "null"]},
                "had_floor": {"type": "boolean"},
                "floor_minutes": {"type": "number"},
            },
        },
        "Floor": {"type": "object", "properties": {"meeting_id": string, "occurrence": _TIME, "floor": {"type": ["string", "null"]}}},
    }


def openapi_document(extra_paths: dict | None = None) -> dict:
    paths = {
        **_registry_paths(),
        **_meeting_paths(),
        **_session_paths(),
        "/healthz": {"get": {"summary": "Process alive", "security": [], "responses": {"200": {"description": "OK"}}}},
        "/readyz": {"get": {"summary": "Redis reachable", "security": [], "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics", "security": [], "responses": {"200": {"description": "text format"}}}},
        "/api/v1/openapi.json": {"get": {"summary": "This document", "security": [], "responses": {"200": {"description": "OpenAPI 3.1"}}}},
    }
    paths.update(extra_paths or {})
    return {
        "openapi": "3.1.0",
        "info": {"title": "VCS orchestration API", "version": "1"},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "from `vcs token create` or POST /api/v1/auth/token"},
                "agent": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "from /api/v1/agent/login"},
            },
            "schemas": _schemas(),
        },
    }
