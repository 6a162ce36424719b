"""Dates and numbers as the UI shows them, with Babel: Vietnam time, dd/MM/yyyy HH:mm.

Vietnamese (vi_VN) groups thousands with "." and writes decimals with ",";
English (en_US) the other way round. Times are stored as UTC epoch seconds and
shown in `vcs.local_time.LOCAL_TZ` whatever the language: the meetings happen there.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from babel import dates, numbers

from vcs.local_time import LOCAL_TZ

__all__ = ["format_date", "format_datetime", "format_decimal", "format_int", "format_percent", "format_time", "iso_utc"]

LOCALES = {"vi": "vi_VN", "en": "en_US"}


def _local(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC).astimezone(LOCAL_TZ)


def format_datetime(epoch: float | None, seconds: bool = False) -> str:
    """dd/MM/yyyy HH:mm (optionally :ss) in Vietnam time; "" for no time."""
    if epoch is None:
        return ""
    return dates.format_datetime(_local(epoch), "dd/MM/yyyy HH:mm:ss" if seconds else "dd/MM/yyyy HH:mm", locale="vi_VN")


def format_time(epoch: float) -> str:
    """HH:mm in Vietnam time."""
    return dates.format_time(_local(epoch), "HH:mm", locale="vi_VN")


def format_date(value: float | date) -> str:
    """dd/MM/yyyy: of an epoch (in Vietnam time) or of a calendar date."""
    if not isinstance(value, date):
        value = _local(value).date()
    return dates.format_date(value, "dd/MM/yyyy", locale="vi_VN")


def iso_utc(epoch: float) -> str:
    """For <time datetime="...">: machine-readable, UTC."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def format_int(value: int | float, lang: str) -> str:
    return numbers.format_decimal(round(value), format="#,##0", locale=LOCALES.get(lang, "vi_VN"))


def format_decimal(value: float, lang: str, places: int = 2) -> str:
    """At most `places` decimals, trailing zeros dropped: 1,5 and 0."""
    pattern = "#,##0." + "#" * places if places else "#,##0"
    return numbers.format_decimal(value, format=pattern, locale=LOCALES.get(lang, "vi_VN"))


def format_percent(fraction: float, lang: str, places: int = 1) -> str:
    """92,3 %: a space before the sign, as Vietnamese writes it (and kept in English for one layout)."""
    pattern = "#,##0." + "0" * places if places else "#,##0"
    return numbers.format_decimal(fraction * 100, format=pattern, locale=LOCALES.get(lang, "vi_VN")) + " %"
