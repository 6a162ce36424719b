"""`vcs scheduler`: the scheduler role on its own, leader or standby, until a signal stops it."""

from __future__ import annotations

import asyncio
import logging
import signal

from scheduler.actions import LifecycleActions
from scheduler.participants import Groups
from scheduler.roster import Roster
from scheduler.runner import SchedulerRole
from scheduler.sfu_control import SfuControl
from scheduler.store import MeetingStore
from vcs.config import Settings
from vcs.redis_server import connected
from vcs.registry import Registry

__all__ = ["run_scheduler"]

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
        sfu = SfuControl(settings.secret_key)
        actions = LifecycleActions(store, roster, public_url=settings.public_url, sfu=sfu, ladder=settings.ladder)
        role = SchedulerRole(store, actions, lease_ttl=lease_ttl)
        await role.start()
        log.info("scheduler %s running (standby until it holds the lease)", role.lease.holder)
        try:
            await stop.wait()
        finally:
            await role.stop()
            log.info("scheduler stopped")
