"""Reading untrusted request input: JSON bodies and query parameters, with clear 4xx errors."""

from __future__ import annotations

import json

from starlette.requests import Request

from vcs.errors import FieldError, ValidationFailed, VcsError

__all__ = ["json_body", "query_int"]

MAX_JSON_BYTES = 1_000_000


class BadRequest(VcsError):
    status = 400


async def json_body(request: Request) -> dict:
    if "json" not in request.headers.get("content-type", ""):
        raise UnsupportedMediaType("send application/json")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_JSON_BYTES:
            raise BadRequest("body too large")
    try:
        body = json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    return body


class UnsupportedMediaType(VcsError):
    status = 415


def query_int(request: Request, name: str, default: int, *, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationFailed(FieldError(name, "must be a whole number")) from None
    if not low <= value <= high:
        raise ValidationFailed(FieldError(name, f"must be between {low} and {high}"))
    return value
