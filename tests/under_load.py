"""Run the test suite while spinning processes keep every core busy (`make test-under-load`).

    python -m tests.under_load [--hogs N] [--slowdown F] [-- pytest arguments]

A test that passes here waits for events, not for time. The hogs are started
before pytest and stopped after it, whatever happens; the deadlines of the
tests are scaled by `--slowdown` (`VCS_TEST_SLOWDOWN`, see tests/waiting.py).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys


def _spin() -> None:
    while True:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.under_load", description=__doc__.splitlines()[0])
    parser.add_argument("--hogs", type=int, default=os.cpu_count() or 2, help="spinning processes (default: one per core)")
    parser.add_argument("--slowdown", type=float, default=3.0, help="factor for the tests' deadlines (default 3)")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to pytest")
    args = parser.parse_args(argv)
    hogs = [multiprocessing.Process(target=_spin, daemon=True, name=f"cpu-hog-{n}") for n in range(args.hogs)]
    for hog in hogs:
        hog.start()
    print(f"under load: {args.hogs} spinning processes, deadlines x{args.slowdown:g}", file=sys.stderr, flush=True)
    try:
        env = {**os.environ, "VCS_TEST_SLOWDOWN": str(args.slowdown)}
        return subprocess.call([sys.executable, "-m", "pytest", *args.pytest_args], env=env)
    except KeyboardInterrupt:
        return 130
    finally:
        for hog in hogs:
            hog.terminate()
        for hog in hogs:
            hog.join(5)


if __name__ == "__main__":
    sys.exit(main())
