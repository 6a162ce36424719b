"""The on-duty IT contact of a room: name and phone, edited one by one or by CSV.

A phone is a Vietnamese number: a mobile (ten digits, 03/05/07/08/09...) or a
landline (eleven digits, 02x...), written from 0 or after +84 / 84; spaces,
dots, dashes and brackets are ignored and it is stored from 0. An empty name and phone clear the
contact. A CSV (columns id, contact_name, contact_phone; the same encodings
and separators as the link profile CSV) is all or nothing: every bad line is
reported and nothing is applied.
"""

from __future__ import annotations

import re

from vcs.errors import FieldError
from vcs.link_csv import parse_endpoint_rows

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

    def contact(row: dict[str, str]) -> tuple[tuple[str, str], list[FieldError]]:
        return validate_contact(row.get("contact_name") or "", row.get("contact_phone") or "")

    rows = parse_endpoint_rows(text, known_ids, CONTACT_COLUMNS, contact)
    return [(endpoint_id, name, phone) for endpoint_id, (name, phone) in rows]
