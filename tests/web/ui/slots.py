"""Meeting times for the tests: whole minutes in Vietnam, counted in days from today."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["VN", "local_slot"]

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def local_slot(days: int = 1, hour: int = 8, minute: int = 0) -> datetime:
    """A wall time in Vietnam `days` from today, aware."""
    today = datetime.now(VN).date()
    return datetime.combine(today + timedelta(days=days), time(hour, minute), tzinfo=VN)
