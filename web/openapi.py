"""The OpenAPI 3.1 document of /api/v1, written out so clients can rely on it."""

from __future__ import annotations

__all__ = ["openapi_document"]

_ERROR = {"$ref": "#/components/schemas/Error"}


def _op(summary: str, *, ok: dict | None = None, body: dict | None = None, auth: str = "bearer", params: list | None = None, status: str = "200") -> dict:
    op: dict = {
        "summary": summary,
        "responses": {
            status: {"description": "OK", **({"content": {"application/json": {"schema": ok}}} if ok else {})},
            "401": {"description": "no or bad token", "content": {"application/json": {"schema": _ERROR}}},
            "403": {"description": "role or province scope forbids it", "content": {"application/json": {"schema": _ERROR}}},
            "404": {"description": "unknown id", "content": {"application/json": {"schema": _ERROR}}},
            "422": {"description": "invalid fields", "content": {"application/json": {"schema": _ERROR}}},
        },
    }
    if auth:
        op["security"] = [{auth: []}]
    if body:
        op["requestBody"] = {"required": True, "content": body}
    if params:
        op["parameters"] = params
    return op


def _q(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _path(name: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


_FILTERS = [
    _q("province", {"type": "string"}, "two-digit province code"),
    _q("kind", {"enum": ["central", "hall", "commune"]}, "endpoint kind"),
    _q("access", {"enum": ["gov_fiber", "internet_fiber", "4g", "satellite"]}, "link access type"),
    _q("status", {"enum": ["online", "offline"]}, "presence"),
    _q("q", {"type": "string"}, "name search, with or without diacritics"),
]


def openapi_document(extra_paths: dict | None = None) -> dict:
    endpoint = {"$ref": "#/components/schemas/Endpoint"}
    paths = {
        "/api/v1/endpoints": {
            "get": _op(
                "List endpoints",
                ok={"type": "object", "properties": {"items": {"type": "array", "items": endpoint}, "total": {"type": "integer"}, "page": {"type": "integer"}, "per_page": {"type": "integer"}}},
                params=_FILTERS + [_q("page", {"type": "integer", "minimum": 1}, "page number"), _q("per_page", {"type": "integer", "minimum": 1, "maximum": 500}, "page size")],
            )
        },
        "/api/v1/endpoints/{endpoint_id}": {
            "get": _op("Get one endpoint", ok=endpoint, params=[_path("endpoint_id")]),
            "patch": _op(
                "Update an endpoint's link profile (admin, ops)",
                ok=endpoint,
                params=[_path("endpoint_id")],
                body={"application/json": {"schema": {"type": "object", "properties": {"link": {"$ref": "#/components/schemas/LinkProfile"}}}}},
            ),
        },
        "/api/v1/endpoints/{endpoint_id}/secret": {
            "post": _op("Rotate an endpoint's secret; the new one is returned once (admin, ops)", params=[_path("endpoint_id")]),
        },
        "/api/v1/endpoints.csv": {
            "get": _op("Export link profiles as CSV", params=_FILTERS),
            "post": _op("Import link profiles from CSV, all or nothing (admin, ops)", body={"text/csv": {"schema": {"type": "string"}}}),
        },
        "/api/v1/provinces": {"get": _op("Per-province summaries: communes, online")},
        "/api/v1/provinces/{code}": {"get": _op("One province's summary", params=[_path("code")])},
        "/api/v1/agent/login": {
            "post": _op(
                "Exchange an endpoint id and secret for an agent token",
                auth="",
                body={"application/json": {"schema": {"type": "object", "required": ["endpoint_id", "secret"], "properties": {"endpoint_id": {"type": "string"}, "secret": {"type": "string"}}}}},
            )
        },
        "/api/v1/agent/heartbeat": {"post": _op("Report the endpoint alive", auth="agent")},
        "/healthz": {"get": {"summary": "Process alive", "responses": {"200": {"description": "OK"}}}},
        "/readyz": {"get": {"summary": "Redis reachable", "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text format"}}}},
    }
    paths.update(extra_paths or {})
    return {
        "openapi": "3.1.0",
        "info": {"title": "VCS orchestration API", "version": "1"},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "token from `vcs token create`"},
                "agent": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "from /api/v1/agent/login"},
            },
            "schemas": {
                "Error": {"type": "object", "properties": {"error": {"type": "string"}, "fields": {"type": "array", "items": {"type": "object", "properties": {"field": {"type": "string"}, "reason": {"type": "string"}}}}}},
                "LinkProfile": {
                    "type": "object",
                    "properties": {
                        "access": {"enum": ["gov_fiber", "internet_fiber", "4g", "satellite"]},
                        "down_kbps": {"type": "integer"},
                        "up_kbps": {"type": "integer"},
                        "rtt_ms": {"type": "integer"},
                        "loss_pct": {"type": "number"},
                    },
                },
                "Endpoint": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "kind": {"enum": ["central", "hall", "commune"]},
                        "name": {"type": "string"},
                        "province_code": {"type": ["string", "null"]},
                        "division_type": {"type": "string"},
                        "link": {"$ref": "#/components/schemas/LinkProfile"},
                        "status": {"enum": ["online", "offline"]},
                        "last_seen": {"type": ["string", "null"], "format": "date-time"},
                    },
                },
            },
        },
    }
