"""Reading UI form input: strings, numbers as people type them, safe redirect targets."""

from __future__ import annotations

import re

from starlette.datastructures import FormData

from vcs.errors import FieldError, ValidationFailed

__all__ = ["errors_by_field", "number_text", "safe_next", "text"]

_GROUPED = re.compile(r"^\d{1,3}([.,\s]\d{3})+$")


def text(form: FormData, name: str, limit: int = 500) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def number_text(raw: str, integer: bool) -> str:
    """What a person typed, made parseable: "200.000" or "200 000" is two hundred thousand, "1,5" is 1.5."""
    raw = raw.strip()
    if integer and _GROUPED.match(raw):
        return re.sub(r"[.,\s]", "", raw)
    if not integer and raw.count(",") == 1 and "." not in raw:
        return raw.replace(",", ".")
    return raw


def safe_next(raw: object, default: str = "/") -> str:
    """A local path to go back to; anything else (other hosts, schemes, "//x") gives `default`."""
    if not isinstance(raw, str) or not raw.startswith("/") or raw.startswith(("//", "/\\")) or len(raw) > 2000:
        return default
    if any(ord(ch) < 32 or ch == "\\" for ch in raw):
        return default
    return raw


def errors_by_field(exc: ValidationFailed) -> dict[str, FieldError]:
    """The first error of each field (templates translate it with `reason()`)."""
    found: dict[str, FieldError] = {}
    for error in exc.errors:
        found.setdefault(error.field, error)
    return found
