"""Dates and numbers as the UI shows them: Asia/Ho_Chi_Minh time, dd/MM/yyyy HH:mm.

Vietnamese groups thousands with "." and writes decimals with ","; English
the other way round. Times are stored as UTC epoch seconds and converted here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone, tzinfo

__all__ = ["DISPLAY_TZ", "format_date", "format_datetime", "format_decimal", "format_int", "format_percent", "format_time", "iso_utc"]


def _display_tz() -> tzinfo:
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo("Asia/Ho_Chi_Minh")
    except Exception:  # no tz database on this machine: Vietnam keeps UTC+7 all year
        return timezone(timedelta(hours=7), "ICT")


DISPLAY_TZ = _display_tz()


def format_datetime(epoch: float | None, seconds: bool = False) -> str:
    """dd/MM/yyyy HH:mm (optionally :ss) in Vietnam time; "" for no time."""
    if epoch is None:
        return ""
    moment = datetime.fromtimestamp(epoch, UTC).astimezone(DISPLAY_TZ)
    return moment.strftime("%d/%m/%Y %H:%M:%S" if seconds else "%d/%m/%Y %H:%M")


def format_time(epoch: float) -> str:
    """HH:mm in Vietnam time."""
    return datetime.fromtimestamp(epoch, UTC).astimezone(DISPLAY_TZ).strftime("%H:%M")


def format_date(value: float | date) -> str:
    """dd/MM/yyyy: of an epoch (in Vietnam time) or of a calendar date."""
    if not isinstance(value, date):
        value = datetime.fromtimestamp(value, UTC).astimezone(DISPLAY_TZ).date()
    return value.strftime("%d/%m/%Y")


def iso_utc(epoch: float) -> str:
    """For <time datetime="...">: machine-readable, UTC."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def _localise(text: str, lang: str) -> str:
    if lang != "vi":
        return text
    return text.translate(str.maketrans({",": ".", ".": ","}))


def format_int(value: int | float, lang: str) -> str:
    return _localise(f"{round(value):,}", lang)


def format_decimal(value: float, lang: str, places: int = 2) -> str:
    text = f"{value:,.{places}f}".rstrip("0").rstrip(".") if places else f"{value:,.0f}"
    return _localise(text, lang)


def format_percent(fraction: float, lang: str, places: int = 1) -> str:
    return _localise(f"{fraction * 100:,.{places}f}", lang) + " %"
