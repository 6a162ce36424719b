"""Reading untrusted request input: bodies within a limit, JSON objects, query parameters, with clear 4xx errors.

Every body is read through `bounded()`: a declared Content-Length over the
limit is refused before anything is read, and a body that streams past it is
cut off there (413 PayloadTooLarge, "too_large" with the limit).
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.types import Message

from vcs.errors import BadRequest, FieldError, PayloadTooLarge, UnsupportedMediaType, ValidationFailed

__all__ = ["MAX_JSON_BYTES", "bounded", "json_body", "query_int", "read_body", "required_strings"]

MAX_JSON_BYTES = 1_000_000


def bounded(request: Request, limit: int) -> Request:
    """The same request, its body capped at `limit` bytes: read it (`.body()`, `.form()`) as usual."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(limit)
    receive = request.receive
    seen = 0

    async def capped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise PayloadTooLarge(limit)
        return message

    return Request(request.scope, capped)


async def read_body(request: Request, limit: int) -> bytes:
    return await bounded(request, limit).body()


async def json_body(request: Request) -> dict:
    if "json" not in request.headers.get("content-type", ""):
        raise UnsupportedMediaType("send application/json")
    raw = await read_body(request, MAX_JSON_BYTES)
    try:
        body = json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"body is not valid JSON: {exc}", code="bad_json") from None
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object", code="not_an_object")
    return body


def required_strings(body: dict, *names: str) -> tuple[str, ...]:
    """The named fields of a JSON body, each a non-empty string; 422 naming every one that is not."""
    values = tuple(body.get(name) for name in names)
    missing = [FieldError(name, "required") for name, value in zip(names, values, strict=True) if not isinstance(value, str) or not value]
    if missing:
        raise ValidationFailed(missing)
    return values  # type: ignore[return-value]


def query_int(request: Request, name: str, default: int, *, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationFailed(FieldError.of(name, "whole_number")) from None
    if not low <= value <= high:
        raise ValidationFailed(FieldError.of(name, "between", low=low, high=high))
    return value
