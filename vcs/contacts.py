"""The on-duty IT contact of a room: name and phone, edited one by one or by CSV.

A phone is a Vietnamese number: a mobile (ten digits, 03/05/07/08/09...) or a
landline (eleven digits, 02x...), written from 0 or after +84 / 84; spaces,
dots, dashes and brackets are ignored and it is stored from 0. An empty name and phone clear the
contact. A CSV (columns id, contact_name, contact_phone; the same encodings
and separators as the link profile CSV) is all or nothing: every bad line is
reported and nothing is applied.
"""

from __future__ import annotations

import csv
import io
import re

from vcs.errors import FieldError, ValidationFailed

__all__ = ["CONTACT_COLUMNS", "normalise_phone", "parse_contacts_csv", "validate_contact"]

CONTACT_COLUMNS = ("id", "contact_name", "contact_phone")
MAX_NAME = 80
_SEPARATORS = re.compile(r"[\s.\-()]")
_PHONE = re.compile(r"^0(?:[35789]\d{8}|2\d{9})$")


def normalise_phone(raw: str) -> str | None:
    """The number from 0, or None when `raw` is not a Vietnamese phone number."""
    digits = _SEPARATORS.sub("", raw)
    if digits.startswith("+84"):
        digits = "0" + digits[3:]
    elif digits.startswith("84") and len(digits) in (11, 12):
        digits = "0" + digits[2:]
    return digits if _PHONE.match(digits) else None


def validate_contact(name: str, phone: str) -> tuple[tuple[str, str], list[FieldError]]:
    """((name, phone) cleaned, problems); both empty clears the contact."""
    name, phone = name.strip(), phone.strip()
    problems = []
    if len(name) > MAX_NAME or any(c in name for c in "\r\n\t"):
        problems.append(FieldError.of("contact_name", "contact_name_length", max=MAX_NAME))
    normal = normalise_phone(phone) if phone else ""
    if normal is None:
        problems.append(FieldError.of("contact_phone", "phone_format"))
    return (name, normal or ""), problems


def parse_contacts_csv(text: str, known_ids: set[str]) -> list[tuple[str, str, str]]:
    """Rows as (endpoint id, name, phone); ValidationFailed naming every bad line otherwise."""
    if text.startswith("\ufeff"):
        text = text[1:]
    header = next(iter(text.splitlines()), "")
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=max(",;\t", key=header.count))
    missing = [c for c in CONTACT_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ValidationFailed(FieldError.of("line 1", "missing_columns", columns=", ".join(missing), line=1), "bad CSV header")
    rows: list[tuple[str, str, str]] = []
    errors: list[FieldError] = []
    seen: set[str] = set()
    try:
        for row in reader:
            line = reader.line_num
            endpoint_id = (row.get("id") or "").strip()
            if endpoint_id not in known_ids:
                errors.append(FieldError.of(f"line {line}", "unknown_endpoint_id", endpoint_id=endpoint_id, line=line))
                continue
            if endpoint_id in seen:
                errors.append(FieldError.of(f"line {line}", "endpoint_twice", endpoint_id=endpoint_id, line=line))
                continue
            seen.add(endpoint_id)
            (name, phone), problems = validate_contact(row.get("contact_name") or "", row.get("contact_phone") or "")
            if problems:
                errors.extend(p.at_line(line) for p in problems)
                continue
            rows.append((endpoint_id, name, phone))
    except csv.Error as exc:
        raise ValidationFailed(FieldError(f"line {reader.line_num}", f"not CSV: {exc}"), "bad CSV") from None
    if errors:
        raise ValidationFailed(errors, f"{len(errors)} bad row(s); nothing was imported")
    if not rows:
        raise ValidationFailed(FieldError.of("line 2", "no_rows", line=2), "empty CSV")
    return rows
