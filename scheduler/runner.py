"""The scheduler role: hold the lease, derive APScheduler jobs from the meeting store, run them.

Jobs are never the source of truth: whenever this process takes the lease
(or a minute passes), it throws its jobs away and derives them again from the
meetings; when a meeting changes, it derives that meeting's jobs again. Steps whose time has already come
(a late start, a failover, a Redis outage) and that are not done run at once, in order, the end
of an occurrence that ended within `CATCH_UP` included; each runs exactly once because
`LifecycleActions` makes a step one recoverable unit in Redis. Stopping releases the lease
first, so a standby takes over at once. The leader also runs the deployment's periodic
jobs (`PeriodicJob`: the attendance sampler, the retention of reports and recordings), so
each runs in exactly one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from redis.exceptions import RedisError

from scheduler.actions import LifecycleActions, undone
from scheduler.lease import Lease
from scheduler.lifecycle import CATCH_UP, Phase, pending, steps_due
from scheduler.meeting import Meeting
from scheduler.store import MeetingStore, changed_meeting
from vcs import keys
from vcs.errors import NotFound

__all__ = ["PeriodicJob", "SchedulerRole"]

log = logging.getLogger(__name__)

HORIZON = timedelta(hours=48)
REBUILD_EVERY = 60.0  # seconds; also extends the horizon
STEP_RETRY = 1.0  # seconds between attempts of a step that hit a Redis error
STOP_GRACE = 1.0  # seconds a stopping scheduler gives the lease release and the steps under way


@dataclass(frozen=True)
class PeriodicJob:
    """Work the leader does every `every_s` seconds, given the time."""

    name: str
    every_s: float
    run: Callable[[datetime], Awaitable[object]]


class SchedulerRole:
    def __init__(
        self,
        store: MeetingStore,
        actions: LifecycleActions,
        *,
        jobs: Sequence[PeriodicJob] = (),
        lease_ttl: float = 5.0,
        renew_every: float = 1.0,
        clock: Callable[[], float] | None = None,
        holder: str | None = None,
    ) -> None:
        self.store = store
        self.redis = store.redis
        self.actions = actions
        self.lease = Lease(self.redis, holder or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}", lease_ttl)
        self.renew_every = renew_every
        self.jobs = tuple(jobs)
        self.clock = clock or (lambda: datetime.now(UTC).timestamp())
        self._scheduler: AsyncIOScheduler | None = None
        self._tasks: list[asyncio.Task] = []
        self._steps: set[asyncio.Task] = set()
        self._running: set[tuple[str, datetime, Phase]] = set()  # steps being run by this process now
        self._rebuild = asyncio.Event()  # every job derived again (takeover, periodic, a missed change)
        self._changed: set[str] = set()  # meetings whose jobs to derive again

    @property
    def is_leader(self) -> bool:
        return self._scheduler is not None

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    async def start(self) -> None:
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._hold_lease(), name="scheduler-lease"), asyncio.create_task(self._watch_changes(), name="scheduler-watch")]

    async def stop(self) -> None:
        """Release the lease before anything else (a standby takes over at once); safe to call twice.

        A step interrupted here stays claimed but not done: the next leader completes it.
        """
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        self._demote()
        with contextlib.suppress(RedisError, OSError, asyncio.TimeoutError):
            await asyncio.wait_for(self.lease.release(), STOP_GRACE)
        if self._steps:  # a step in an SFU call gets the time to record it; its guarded writes now fail
            await asyncio.wait(list(self._steps), timeout=STOP_GRACE)
        for task in tasks + list(self._steps):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # --- leadership ------------------------------------------------------

    async def _hold_lease(self) -> None:
        last_renewed = 0.0
        loop = asyncio.get_running_loop()
        while True:
            try:
                if self.is_leader:
                    if await self.lease.renew():
                        last_renewed = loop.time()
                    else:
                        log.warning("scheduler lease lost to another holder")
                        self._demote()
                elif await self.lease.acquire():
                    last_renewed = loop.time()
                    log.info("scheduler lease taken (fence %s)", self.lease.fence)
                    self._promote()
            except (RedisError, OSError) as exc:
                log.warning("scheduler cannot reach Redis: %s", exc)
                if self.is_leader and loop.time() - last_renewed > self.lease.ttl_ms / 1000:
                    self._demote()  # our lease has expired by now: another scheduler may hold it
            except Exception:
                log.exception("scheduler lease loop")
            await asyncio.sleep(self.renew_every)

    def _promote(self) -> None:
        self._scheduler = AsyncIOScheduler(timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1})
        self._scheduler.start()
        self._scheduler.add_job(self._rebuild.set, "interval", seconds=REBUILD_EVERY, id="rebuild")
        for job in self.jobs:
            self._scheduler.add_job(self._run_periodic, "interval", seconds=job.every_s, id=f"periodic:{job.name}", args=[job])
        self._rebuild.set()

    def _demote(self) -> None:
        """Stop scheduling; steps under way are left to finish what they started, as their writes are fenced."""
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.shutdown(wait=False)

    # --- deriving jobs ---------------------------------------------------

    async def _watch_changes(self) -> None:
        pubsub = None
        while True:
            try:
                if pubsub is None:
                    pubsub = self.redis.pubsub()
                    await pubsub.subscribe(keys.MEETINGS_CHANGED)
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
                if message is not None:
                    meeting_id = changed_meeting(message["data"])
                    if meeting_id is None:
                        self._rebuild.set()
                    else:
                        self._changed.add(meeting_id)
                if not self.is_leader:
                    self._changed.clear()  # a takeover derives everything anyway
                elif self._rebuild.is_set():
                    self._rebuild.clear()
                    self._changed.clear()
                    await self.rebuild()
                elif self._changed:
                    changed, self._changed = self._changed, set()
                    await self.reschedule(changed)
            except asyncio.CancelledError:
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()
                raise
            except (RedisError, OSError) as exc:
                log.warning("scheduler watch: %s", exc)
                pubsub = None
                self._rebuild.set()  # rebuild once Redis is back: we may have missed changes
                await asyncio.sleep(1)
            except Exception:
                log.exception("scheduler rebuild")
                await asyncio.sleep(1)

    async def rebuild(self) -> int:
        """Replace every job with ones derived from the meeting store; returns how many."""
        scheduler = self._scheduler
        if scheduler is None:
            return 0
        now = self.now()
        meetings = await self.store.all()
        for job in scheduler.get_jobs():
            if job.id != "rebuild" and not job.id.startswith("periodic:"):
                job.remove()
        count = await self._schedule(scheduler, meetings.values(), now)
        log.debug("scheduler rebuilt %d jobs", count)
        return count

    async def reschedule(self, meeting_ids: set[str]) -> int:
        """Derive again the jobs of these meetings only (a booking, an edit, a status write)."""
        scheduler = self._scheduler
        if scheduler is None:
            return 0
        now = self.now()
        meetings = await self.store.get_many(meeting_ids)
        for job in scheduler.get_jobs():
            if job.id.partition(":")[0] in meeting_ids:
                job.remove()
        return await self._schedule(scheduler, meetings.values(), now)

    async def _schedule(self, scheduler: AsyncIOScheduler, meetings: Iterable[Meeting], now: datetime) -> int:
        """Add the meetings' jobs; steps due and not done run at once. Returns how many jobs."""
        count = 0
        due: list[tuple[str, datetime, Phase]] = []
        for meeting in meetings:
            for times in pending(meeting, now, horizon=HORIZON, lookback=CATCH_UP):
                due += [(meeting.id, times.start, phase) for phase in steps_due(times, now)]
                for phase, at in times.events():
                    if at > now:
                        scheduler.add_job(
                            self._run_step_job,
                            DateTrigger(run_date=at),
                            args=[meeting.id, times.start, phase],
                            id=f"{meeting.id}:{times.start.isoformat()}:{phase.value}",
                            misfire_grace_time=int((times.end - at).total_seconds()) + 1,
                            replace_existing=True,
                        )
                        count += 1
        owed: dict[tuple[str, datetime], list[Phase]] = {}
        for (meeting_id, start, phase), missing in zip(due, await undone(self.redis, due), strict=True):
            if missing:
                owed.setdefault((meeting_id, start), []).append(phase)
        for (meeting_id, start), phases in owed.items():
            self._spawn(self._run_steps(meeting_id, start, phases))
        return count

    async def _run_periodic(self, job: PeriodicJob) -> None:
        try:
            await job.run(self.now())
        except (RedisError, OSError) as exc:
            log.warning("%s: %s", job.name, exc)
        except Exception:
            log.exception("%s failed", job.name)

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._steps.add(task)
        task.add_done_callback(self._steps.discard)

    async def _run_step_job(self, meeting_id: str, start: datetime, phase: Phase) -> None:
        # a task of ours, not of APScheduler, which cancels its jobs when it shuts down at a demotion
        self._spawn(self._run_steps(meeting_id, start, [phase]))

    async def _run_steps(self, meeting_id: str, start: datetime, phases: list[Phase]) -> None:
        for phase in phases:
            await self._run_step(meeting_id, start, phase)

    async def _run_step(self, meeting_id: str, start: datetime, phase: Phase) -> None:
        """Retry through Redis blips until it runs, the occurrence is over, or the lease is lost.

        A step already being run here is left to that run (a rebuild finds it not done yet).
        """
        step = (meeting_id, start, phase)
        if step in self._running:
            return
        self._running.add(step)
        try:
            await self._attempt(meeting_id, start, phase)
        finally:
            self._running.discard(step)

    async def _attempt(self, meeting_id: str, start: datetime, phase: Phase) -> None:
        while self.is_leader:
            try:
                result = await self.actions.run(meeting_id, start, phase, self.lease.value, self.lease.fence or 0, self.now())
                if result != "lease-lost":
                    return
                # still leader means the lease was taken again, under a new fence: run it again under that one
                log.warning("step %s %s %s interrupted: lease lost", meeting_id, start, phase.value)
            except (RedisError, OSError) as exc:
                log.warning("step %s %s %s: %s; retrying", meeting_id, start, phase.value, exc)
            meeting_end = start + (await self._duration(meeting_id))
            if self.now() >= meeting_end and phase is not Phase.ENDED:
                return
            await asyncio.sleep(STEP_RETRY)

    async def _duration(self, meeting_id: str) -> timedelta:
        try:
            return (await self.store.get(meeting_id)).duration
        except (RedisError, OSError, NotFound):
            return timedelta(hours=12)  # unknown for now: keep trying, bounded by the longest meeting
