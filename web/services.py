"""The long-lived objects a request handler needs, built once per app at startup."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

import redis.asyncio as aioredis
from starlette.requests import HTTPConnection

from scheduler.agent_schedule import ScheduleBuilder
from scheduler.booking import BookingService
from scheduler.floor import Floor
from scheduler.live import LiveState
from scheduler.participants import Groups
from scheduler.reports import Reports
from scheduler.roster import Roster
from scheduler.sfu_control import SfuControl
from scheduler.store import MeetingStore
from vcs.api_tokens import ApiTokens
from vcs.config import Settings
from vcs.credentials import EndpointCredentials
from vcs.presence import Presence
from vcs.recordings import check_writable
from vcs.registry import Registry
from vcs.users import Users
from web.agent_hub import AgentHub

__all__ = ["Services", "services"]


@dataclass
class Services:
    settings: Settings
    redis: aioredis.Redis
    registry: Registry
    presence: Presence
    api_tokens: ApiTokens
    credentials: EndpointCredentials
    users: Users
    meetings: MeetingStore
    groups: Groups
    roster: Roster
    booking: BookingService
    live: LiveState
    schedules: ScheduleBuilder
    hub: AgentHub
    sfu_control: SfuControl
    floor: Floor
    reports: Reports
    clock: Callable[[], float] = time.time
    stopping: asyncio.Event = field(default_factory=asyncio.Event)  # set when the server is stopping: streams end

    @classmethod
    def build(cls, settings: Settings, redis: aioredis.Redis, clock: Callable[[], float] = time.time) -> Services:
        registry = Registry(redis)
        presence = Presence(redis, settings.presence_timeout)
        meetings = MeetingStore(redis)
        groups = Groups(redis)
        roster = Roster(meetings, registry, groups, clock)
        schedules = ScheduleBuilder(roster, settings.secret_key, settings.public_url, settings.ladder)
        recording_check = partial(check_writable, settings.recording_dir)
        booking = BookingService(meetings, registry, groups, roster=roster, ladder=settings.ladder, recording_check=recording_check)
        sfu_control = SfuControl(settings.secret_key)
        live = LiveState(redis, roster, registry, presence)
        reports = Reports(
            redis, meetings, roster, registry, live, retention=timedelta(days=settings.retention_days), sample_s=settings.report_sample_s
        )
        return cls(
            settings=settings,
            redis=redis,
            registry=registry,
            presence=presence,
            api_tokens=ApiTokens(redis),
            credentials=EndpointCredentials(redis),
            users=Users(redis),
            meetings=meetings,
            groups=groups,
            roster=roster,
            booking=booking,
            live=live,
            schedules=schedules,
            hub=AgentHub(redis, registry, meetings, schedules, clock),
            sfu_control=sfu_control,
            floor=Floor(redis, roster, booking, schedules, sfu_control),
            reports=reports,
            clock=clock,
        )


def services(conn: HTTPConnection) -> Services:
    return conn.app.state.services
