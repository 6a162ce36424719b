"""Vietnam's time zone, the one the schedule, the UI and the API's local times are in."""

from __future__ import annotations

from datetime import timedelta, timezone, tzinfo

__all__ = ["LOCAL_TZ", "LOCAL_TZ_NAME"]

LOCAL_TZ_NAME = "Asia/Ho_Chi_Minh"


def _local_tz() -> tzinfo:
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(LOCAL_TZ_NAME)
    except Exception:  # no tz database on this machine: Vietnam keeps UTC+7 all year
        return timezone(timedelta(hours=7), "ICT")


LOCAL_TZ = _local_tz()
