"""Locust event listeners every scenario installs: options, samples across processes, the phase summary.

`install(events)` is called once at the top of each scenario locustfile (the
entry point), never on import of this module.
"""

from __future__ import annotations

from typing import Any

from loadtests.run import run_of
from loadtests.samples import REPORT_KEY
from loadtests.settings import add_arguments
from loadtests.summary import write_phase

__all__ = ["install"]


def install(events: Any) -> None:
    events.init_command_line_parser.add_listener(add_arguments)
    events.init.add_listener(_on_init)


def _on_init(environment: Any, **_: Any) -> None:
    run = run_of(environment)
    events = environment.events
    is_worker = type(environment.runner).__name__ == "WorkerRunner"

    def spawned(**_: Any) -> None:
        run.spawned.set()

    def report(client_id: str, data: dict, **_: Any) -> None:
        data[REPORT_KEY] = run.samples.drain()

    def worker_report(client_id: str, data: dict, **_: Any) -> None:
        run.samples.merge(data.get(REPORT_KEY) or {})

    def test_stop(**_: Any) -> None:
        if run.media is not None:
            run.media.stop()

    def quitting(**_: Any) -> None:
        if not is_worker:
            write_phase(environment)

    events.spawning_complete.add_listener(spawned)
    events.report_to_master.add_listener(report)
    events.worker_report.add_listener(worker_report)
    events.test_stop.add_listener(test_stop)
    events.quitting.add_listener(quitting)
