"""The load shapes: a working day, the join storm, the media ramp, and a smoke run of everything.

Each scenario locustfile (`loadtests/scenarios/`) imports exactly one of
these (Locust uses the first shape class it finds). Counts and durations come
from the run's settings; every shape ends by itself.

- `WorkingDay`: every endpoint user plus the organizers and a monitor, spawned
  at `--vcs-spawn-rate`, then held for `--vcs-hold` seconds. With no
  organizers and `--vcs-expect-restart` it is the reconnect storm: the runner
  restarts the orchestrator during the hold, and the hold lasts until every
  dropped agent is back (at most `--vcs-reconnect-deadline` longer), however
  long a busy machine takes to restart it.
- `JoinStorm`: every endpoint user, the storm admin, a monitor (and media
  users with a studio, when asked); ends soon after the admin cancelled the
  national meeting, at the latest after the worst-case time bound.
- `MediaRamp`: media subscribers stepping through `--vcs-media-steps`,
  `--vcs-media-step-seconds` each, and a studio publishing when
  `--vcs-studio` is given (else someone else publishes into the room); with
  `--vcs-media-meeting` the subscribers are communes of a meeting the media
  admin books (the studio its host), each joining the node its province is
  placed on.
- `Smoke`: a few of every user class at once, with a short national meeting;
  it holds `--vcs-hold` seconds and until the meeting is cancelled.
"""

from __future__ import annotations

import math
from typing import Any

from locust import LoadTestShape

from loadtests.admin import ONLINE_WAIT, MediaAdmin, MonitorUser, StormAdmin
from loadtests.endpoint import EndpointUser
from loadtests.media import MediaUser, StudioUser
from loadtests.organizer import OrganizerUser
from loadtests.run import run_of

__all__ = ["JoinStorm", "MediaRamp", "Smoke", "WorkingDay"]

MEDIA_SPAWN_RATE = 5.0  # WHEP joins a second: each costs a DTLS handshake on both sides
END_GRACE = 5.0  # seconds between the admin's cancel and the end of the storm


class _Shape(LoadTestShape):
    """Sets each class's fixed count once, then answers `tick` from a plan of stages."""

    _counts: dict[type, int] | None = None

    def counts(self) -> dict[type, int]:
        raise NotImplementedError

    def setup(self) -> dict[type, int]:
        if self._counts is None:
            self._counts = {cls: n for cls, n in self.counts().items() if n > 0}
            for cls, n in self._counts.items():
                cls.fixed_count = n
        return self._counts

    @property
    def settings(self) -> Any:
        return run_of(self.runner.environment).settings

    def endpoint_count(self) -> int:
        run = run_of(self.runner.environment)
        available = len(run.pool) if run.pool is not None else 0
        wanted = run.settings.endpoints or available
        return min(wanted, available)

    def everyone(self, rate: float) -> tuple[int, float, list[type]]:
        counts = self.setup()
        return sum(counts.values()), rate, list(counts)

    def spawn_seconds(self, rate: float) -> float:
        return sum(self.setup().values()) / rate


class WorkingDay(_Shape):
    def counts(self) -> dict[type, int]:
        return {EndpointUser: self.endpoint_count(), OrganizerUser: self.settings.organizer_users, MonitorUser: 1}

    def tick(self) -> tuple[int, float, list[type]] | None:
        rate = self.settings.spawn_rate
        held = self.get_run_time() - self.spawn_seconds(rate) - self.settings.hold
        if held > 0 and (self.reconnected() or held > self.settings.reconnect_deadline):
            return None
        return self.everyone(rate)

    def reconnected(self) -> bool:
        """True unless the orchestrator is to be restarted and not every endpoint has dropped and come back."""
        if not self.settings.expect_restart:
            return True
        counters = run_of(self.runner.environment).samples.counters
        return counters["socket drops"] >= self.endpoint_count() and counters["socket reconnects"] >= counters["socket drops"]


class JoinStorm(_Shape):
    def counts(self) -> dict[type, int]:
        media = self.settings.media_users
        return {
            EndpointUser: self.endpoint_count() - media,
            MediaUser: media,
            StudioUser: 1 if (media or self.settings.studio) else 0,
            StormAdmin: 1,
            MonitorUser: 1,
        }

    def tick(self) -> tuple[int, float, list[type]] | None:
        rate = self.settings.spawn_rate
        if self.storm_over(self.get_run_time(), rate):
            return None
        return self.everyone(rate)

    def storm_over(self, elapsed: float, rate: float) -> bool:
        """The admin cancelled the meeting a moment ago, or the worst case has passed."""
        bound = self.spawn_seconds(rate) + ONLINE_WAIT + self.settings.storm_lead + self.settings.storm_hold + 30
        if self.runner.stats.get("cancel national meeting", "DELETE").num_requests:
            self._cancelled_at = getattr(self, "_cancelled_at", None) or elapsed
            return elapsed > self._cancelled_at + END_GRACE
        return elapsed > bound


class MediaRamp(_Shape):
    def counts(self) -> dict[type, int]:
        meeting = self.settings.media_meeting
        return {StudioUser: 1 if (self.settings.studio or meeting) else 0, MediaAdmin: 1 if meeting else 0}

    def tick(self) -> tuple[int, float, list[type]] | None:
        studio = self.setup()
        MediaUser.fixed_count = 0  # weighted: the step's total decides how many subscribers run
        steps = self.settings.media_steps or (1,)
        index = math.floor(self.get_run_time() / self.settings.media_step_seconds)
        if index >= len(steps):
            return None
        return len(studio) + steps[index], MEDIA_SPAWN_RATE, [*studio, MediaUser]


class Smoke(JoinStorm):
    def counts(self) -> dict[type, int]:
        settings = self.settings
        return {
            EndpointUser: self.endpoint_count(),
            OrganizerUser: settings.organizer_users,
            StormAdmin: 1,
            MonitorUser: 1,
            MediaUser: settings.media_users,
            StudioUser: 1 if (settings.media_users or settings.studio) else 0,
        }

    def tick(self) -> tuple[int, float, list[type]] | None:
        rate = self.settings.spawn_rate
        elapsed = self.get_run_time()
        if elapsed > self.spawn_seconds(rate) + self.settings.hold and self.storm_over(elapsed, rate):
            return None
        return self.everyone(rate)
