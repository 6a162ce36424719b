"""`vcs scheduler`: the scheduler role on its own, leader or standby, until a signal stops it."""

from __future__ import annotations

import asyncio
import logging
import signal

from datetime import datetime, timedelta

from scheduler.actions import LifecycleActions
from scheduler.live import LiveState
from scheduler.participants import Groups
from scheduler.roster import Roster
from scheduler.reports import Reports
from scheduler.runner import PeriodicJob, SchedulerRole
from scheduler.sfu_control import SfuControl
from scheduler.store import MeetingStore
from vcs.config import Settings
from vcs.presence import Presence
from vcs.recordings import purge_recordings
from vcs.redis_server import connected
from vcs.registry import Registry

__all__ = ["leader_jobs", "run_scheduler"]

RETENTION_EVERY_S = 3600.0  # how often the leader deletes what is past retention


def leader_jobs(settings: Settings, reports: Reports) -> list[PeriodicJob]:
    """What the scheduler leader does besides the lifecycle steps."""

    async def retention(now: datetime) -> None:
        await reports.purge(now)
        before = (now - timedelta(days=settings.retention_days)).timestamp()
        if deleted := await purge_recordings(reports.redis, settings.recording_dir, before):
            log.info("deleted %d recording(s) past retention", deleted)

    return [
        PeriodicJob("report-sample", settings.report_sample_s, reports.sample_live),
        PeriodicJob("retention", RETENTION_EVERY_S, retention),
    ]

log = logging.getLogger(__name__)


async def run_scheduler(settings: Settings, *, lease_ttl: float = 5.0) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with connected(settings.redis_url) as redis:
        store = MeetingStore(redis)
        registry = Registry(redis)
        await registry.seed()
        roster = Roster(store, registry, Groups(redis))
        live = LiveState(redis, roster, registry, Presence(redis, settings.presence_timeout))
        reports = Reports(
            redis, store, roster, registry, live, retention=timedelta(days=settings.retention_days), sample_s=settings.report_sample_s
        )
        actions = LifecycleActions(store, roster, public_url=settings.public_url, sfu=SfuControl(settings.secret_key), reports=reports)
        role = SchedulerRole(store, actions, lease_ttl=lease_ttl, jobs=leader_jobs(settings, reports))
        await role.start()
        log.info("scheduler %s running (standby until it holds the lease)", role.lease.holder)
        try:
            await stop.wait()
        finally:
            await role.stop()
            log.info("scheduler stopped")
