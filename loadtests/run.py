"""What the users of one Locust process share: settings, identities, exact samples, the media loop.

Kept on the Locust `Environment` (one per process, one per run), built on
first use; `record` is the one way users report a timing, so that it lands
both in Locust's statistics and, when asked, in the exact samples.
"""

from __future__ import annotations

import csv
import os
import random
from typing import TYPE_CHECKING, Any

from gevent.event import Event

from loadtests.identities import IdentityPool, read_secrets
from loadtests.samples import SampleBook
from loadtests.settings import LoadSettings, settings_of

if TYPE_CHECKING:
    from loadtests.media_loop import MediaLoop

__all__ = ["Run", "process_slot", "record", "run_of"]


class Run:
    def __init__(self, environment: Any, settings: LoadSettings, organizers: list[tuple[str, str]]) -> None:
        self.environment = environment
        self.settings = settings
        self.samples = SampleBook()
        self.organizers = organizers
        self._numbers: dict[str, int] = {}
        self.bad_passwords_left = settings.bad_password_probes
        self.organizer_seed = random.randrange(1 << 16)
        self.booked: dict[str, float] = {}  # meeting id => when an organizer of this process booked it
        self.spawned = Event()  # set when Locust reports the spawn complete
        self.media: MediaLoop | None = None
        self._pool: IdentityPool | None = None

    def number(self, kind: str) -> int:
        """The next number for a user of `kind`, unique across the run's Locust processes."""
        local = self._numbers.get(kind, 0)
        self._numbers[kind] = local + 1
        index, count = process_slot(self.environment)
        return local * count + index

    @property
    def pool(self) -> IdentityPool | None:
        """Built on first use: a worker learns its index from the master only after `init`."""
        if self._pool is None and self.settings.secrets and self.settings.secrets.exists():
            index, count = process_slot(self.environment)
            self._pool = IdentityPool(read_secrets(self.settings.secrets), index=index, stride=count, spread=self.settings.media_meeting)
        return self._pool

    def media_loop(self) -> MediaLoop:
        """The process's asyncio loop for aiortc, started on first use."""
        if self.media is None:
            from loadtests.media_loop import MediaLoop

            self.media = MediaLoop()
        self.media.start()  # the first caller starts it; the others wait until it runs
        return self.media


def expect_refusal(user: Any, method: str, path: str, status: int, what: str, **kwargs: Any) -> None:
    """A probe that must be refused with `status`: a success named "expected ...", counted apart."""
    with user.client.request(method, path, name=f"expected {status}: {what}", catch_response=True, **kwargs) as response:
        if response.status_code == status:
            response.success()
            run_of(user.environment).samples.count(f"expected {status}")
        else:
            response.failure(f"expected HTTP {status}, got {response.status_code}")


def ramp_step(environment: Any, user_class: str) -> str:
    """The media ramp's step (whole-run subscriber count) this process is in.

    A process sees only its share of the users: with N processes, step S is
    S // N or S // N + 1 here. Counts between steps (spawning) read "ramping".
    """
    runner = environment.runner
    if runner is None:
        return "0"
    counts = getattr(runner, "target_user_classes_count", None) or runner.user_classes_count
    _, processes = process_slot(environment)
    return step_label(counts.get(user_class, 0), processes, settings_of(environment).media_steps)


def step_label(running: int, processes: int, steps: tuple[int, ...]) -> str:
    if processes == 1:
        return str(running)
    for step in steps:
        if step // processes <= running <= -(-step // processes):
            return str(step)
    return "ramping"


def process_slot(environment: Any) -> tuple[int, int]:
    """(index, count) of this Locust process among those sharing the run."""
    runner = environment.runner
    if runner is None or type(runner).__name__ != "WorkerRunner":
        return 0, 1
    workers = settings_of(environment).workers or getattr(environment.parsed_options, "processes", None) or 1
    if workers < 0:  # --processes -1: one per core
        workers = os.cpu_count() or 1
    return runner.worker_index, max(1, workers)


def run_of(environment: Any) -> Run:
    run = getattr(environment, "vcs_run", None)
    if run is None:
        settings = settings_of(environment)
        organizers: list[tuple[str, str]] = []
        if settings.organizers and settings.organizers.exists():
            with settings.organizers.open(newline="") as handle:
                organizers = [(r[0], r[1]) for r in csv.reader(handle) if len(r) >= 2 and r[0] != "username"]
        run = Run(environment, settings, organizers)
        environment.vcs_run = run
    return run


def record(
    environment: Any,
    request_type: str,
    name: str,
    response_time: float,
    *,
    length: int = 0,
    exception: BaseException | None = None,
    sample: bool = False,
) -> None:
    """Fire Locust's request event; with `sample` also keep the exact value (successes only)."""
    environment.events.request.fire(
        request_type=request_type,
        name=name,
        response_time=response_time,
        response_length=length,
        response=None,
        context={},
        exception=exception,
    )
    if sample and exception is None:
        run_of(environment).samples.add(name, response_time)
