"""CSV import and export of link profiles.

Columns: id, name, province_code, access, down_kbps, up_kbps, rtt_ms, loss_pct.
`name` and `province_code` are informative on import (the registry owns them).
Import is all-or-nothing: every row is checked first and any bad row, reported
with its line number, stops the whole file.

Files come from office spreadsheets: `decode_csv` reads UTF-8 with or without
a byte-order mark, UTF-16 with one (Excel's "Unicode text", tab-separated) and
Windows-1258 (Excel's "CSV" on a Vietnamese Windows), and normalises to NFC
because cp1258 writes tone marks as combining characters. The separator may be
a comma, a semicolon (Vietnamese regional settings) or a tab. Export writes a
UTF-8 byte-order mark so Excel shows the names right.
"""

from __future__ import annotations

import codecs
import csv
import io
import unicodedata
from collections.abc import Callable, Iterable
from typing import TypeVar

from vcs.endpoints import Endpoint
from vcs.errors import FieldError, ValidationFailed
from vcs.link_profiles import LinkProfile, validate_profile

T = TypeVar("T")

__all__ = ["COLUMNS", "MAX_IMPORT_BYTES", "NEEDS_ENCODING", "decode_csv", "export_csv", "parse_csv"]

COLUMNS = ("id", "name", "province_code", "access", "down_kbps", "up_kbps", "rtt_ms", "loss_pct")
REQUIRED = ("id", "access", "down_kbps", "up_kbps", "rtt_ms", "loss_pct")
MAX_IMPORT_BYTES = 2_000_000
NEEDS_ENCODING = "the file must be CSV in UTF-8 (Excel: Save As, CSV UTF-8), UTF-16 Unicode text or Windows-1258"
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def decode_csv(data: bytes) -> str:
    """The file's text in NFC; ValidationFailed naming the encodings it may be in otherwise."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            candidates = [encoding]
            break
    else:
        candidates = ["utf-8", "cp1258"]  # UTF-8 first: cp1258 decodes most byte strings, rightly or not
    for encoding in candidates:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" not in text:  # UTF-16 without its mark reads as text full of NULs
            return unicodedata.normalize("NFC", text)
    raise ValidationFailed(FieldError("file", NEEDS_ENCODING), "unreadable CSV: unknown text encoding")


def export_csv(endpoints: Iterable[Endpoint]) -> str:
    """CSV text beginning with a byte-order mark: Excel then reads it as UTF-8."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for e in endpoints:
        link = e.link
        writer.writerow([e.id, e.name, e.province_code or "", link.access.value, link.down_kbps, link.up_kbps, link.rtt_ms, link.loss_pct])
    return out.getvalue()


def parse_csv(text: str, known_ids: set[str]) -> list[tuple[str, LinkProfile]]:
    """Rows as (endpoint id, profile); ValidationFailed naming every bad line otherwise."""

    def profile(row: dict[str, str]) -> tuple[LinkProfile, list[FieldError]]:
        return validate_profile({k: (v or "").strip() for k, v in row.items() if k})

    return parse_endpoint_rows(text, known_ids, REQUIRED, profile)


def parse_endpoint_rows(
    text: str, known_ids: set[str], required: Iterable[str], validate: Callable[[dict[str, str]], tuple[T, list[FieldError]]]
) -> list[tuple[str, T]]:
    """A CSV of one row per known endpoint (column `id`) as (endpoint id, `validate(row)`'s value).

    Comma, semicolon or tab, with or without a byte-order mark. Every bad line is named in one
    ValidationFailed, and then nothing is returned: an import applies all its rows or none.
    """
    if text.startswith("\ufeff"):  # a byte-order mark from spreadsheet exports
        text = text[1:]
    header = next(iter(text.splitlines()), "")
    delimiter = max(",;\t", key=header.count)
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)  # newline="": csv reads \r\n, \r and \n
    try:
        return _read_rows(reader, known_ids, required, validate)
    except csv.Error as exc:  # a stray carriage return, an unterminated quote...
        raise ValidationFailed(FieldError(f"line {reader.line_num}", f"not CSV: {exc}"), "bad CSV") from None


def _read_rows(
    reader: csv.DictReader, known_ids: set[str], required: Iterable[str], validate: Callable[[dict[str, str]], tuple[T, list[FieldError]]]
) -> list[tuple[str, T]]:
    missing = [c for c in required if c not in (reader.fieldnames or [])]
    if missing:
        raise ValidationFailed(FieldError.of("line 1", "missing_columns", columns=", ".join(missing), line=1), "bad CSV header")
    rows: list[tuple[str, T]] = []
    errors: list[FieldError] = []
    seen: set[str] = set()
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
        value, problems = validate(row)
        if problems:
            errors.extend(p.at_line(line) for p in problems)
            continue
        rows.append((endpoint_id, value))
    if errors:
        raise ValidationFailed(errors, f"{len(errors)} bad row(s); nothing was imported")
    if not rows:
        raise ValidationFailed(FieldError.of("line 2", "no_rows", line=2), "empty CSV")
    return rows
