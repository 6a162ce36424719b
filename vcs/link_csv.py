"""CSV import and export of link profiles.

Columns: id, name, province_code, access, down_kbps, up_kbps, rtt_ms, loss_pct.
`name` and `province_code` are informative on import (the registry owns them).
Import is all-or-nothing: every row is checked first and any bad row, reported
with its line number, stops the whole file.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from vcs.endpoints import Endpoint
from vcs.errors import FieldError, ValidationFailed
from vcs.link_profiles import LinkProfile, validate_profile

__all__ = ["COLUMNS", "MAX_IMPORT_BYTES", "export_csv", "parse_csv"]

COLUMNS = ("id", "name", "province_code", "access", "down_kbps", "up_kbps", "rtt_ms", "loss_pct")
REQUIRED = ("id", "access", "down_kbps", "up_kbps", "rtt_ms", "loss_pct")
MAX_IMPORT_BYTES = 2_000_000


def export_csv(endpoints: Iterable[Endpoint]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for e in endpoints:
        link = e.link
        writer.writerow([e.id, e.name, e.province_code or "", link.access.value, link.down_kbps, link.up_kbps, link.rtt_ms, link.loss_pct])
    return out.getvalue()


def parse_csv(text: str, known_ids: set[str]) -> list[tuple[str, LinkProfile]]:
    """Rows as (endpoint id, profile); ValidationFailed naming every bad line otherwise."""
    if text.startswith("\ufeff"):  # a byte-order mark from spreadsheet exports
        text = text[1:]
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise ValidationFailed(FieldError.of("line 1", "missing_columns", columns=", ".join(missing), line=1), "bad CSV header")
    rows: list[tuple[str, LinkProfile]] = []
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
        profile, problems = validate_profile({k: (v or "").strip() for k, v in row.items() if k})
        if problems:
            errors.extend(p.at_line(line) for p in problems)
            continue
        rows.append((endpoint_id, profile))
    if errors:
        raise ValidationFailed(errors, f"{len(errors)} bad row(s); nothing was imported")
    if not rows:
        raise ValidationFailed(FieldError.of("line 2", "no_rows", line=2), "empty CSV")
    return rows
