"""The relay processes `vcs serve` runs beside its embedded origin: every core of one machine.

One Python process is one core, so `vcs serve` runs the origin inside the web
app and, on each remaining core, a relay: `vcs sfu --role relay` on its own
port, exactly as a relay on another machine runs, registered in the same
Redis. The deployment's secret reaches a relay through its environment
(`VCS_SECRET_KEY`), never its command line.

`LocalRelays` supervises them: a relay that exits is started again on the same
port and node id (so placements naming it stay valid) after a back-off that
doubles while it keeps failing. Relays run in their own session, so a Ctrl-C in
the terminal reaches `vcs serve` only, which stops them in order (before the
embedded Redis, so they leave the registry); they die with it if it is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import signal
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

__all__ = ["LocalRelays", "RelaySpec", "default_sfu_processes", "relay_specs"]

log = logging.getLogger("vcs.relays")

BACKOFF_FIRST = 0.5  # seconds before a relay that exited is started again
BACKOFF_MAX = 30.0  # the back-off doubles while a relay keeps failing, up to this
STABLE_AFTER = 30.0  # a relay that ran this long before exiting starts again after BACKOFF_FIRST
STOP_WAIT = 3.0  # seconds a relay has to stop after SIGTERM before it is killed
PROCESSES_ENV = "VCS_SFU_PROCESSES"


@dataclass(frozen=True)
class RelaySpec:
    node_id: str
    host: str
    port: int
    public_url: str
    udp_port: int | None = None  # the media's UDP port when the deployment fixes one; else as VCS_SFU_UDP_PORT says

    def argv(self) -> list[str]:
        udp = ["--udp-port", str(self.udp_port)] if self.udp_port is not None else []
        return [
            sys.executable, "-m", "app.cli", "sfu", "--role", "relay",
            "--host", self.host, "--port", str(self.port), "--public-url", self.public_url, *udp,
        ]  # fmt: skip


def default_sfu_processes(option: int | None, environ: Mapping[str, str], cores: int | None) -> int:
    """`--sfu-processes`, else `VCS_SFU_PROCESSES`, else one per core; ValueError when negative or not an integer.

    0: no SFU in `vcs serve` (web, API and scheduler only; the nodes run on other machines).
    """
    if option is None:
        raw = environ.get(PROCESSES_ENV, "").strip()
        if not raw:
            return max(1, cores or 1)
        try:
            option = int(raw)
        except ValueError:
            raise ValueError(f"{PROCESSES_ENV} must be a whole number of processes, got {raw!r}") from None
    if option < 0:
        raise ValueError(f"the SFU processes cannot be fewer than 0 (no SFU here), got {option}")
    return option


def relay_specs(
    count: int, *, origin_id: str, host: str, public_url: str, ports: Mapping[str, int] | None = None, udp_port: int | None = None
) -> list[RelaySpec]:
    """`count` relays on ports of `host`: the one each had before (`ports`, by node id) when it is free, else a
    free one; each reached at the public URL's host on its own port. When the origin's media has a fixed UDP
    port (`udp_port`, not 0 or None), relay i has the i-th after it; otherwise each takes its own as configured."""
    specs = []
    parts = urlsplit(public_url)
    for index in range(1, count + 1):
        node_id = f"{origin_id}-relay{index}"
        remembered = (ports or {}).get(node_id)
        port = remembered if remembered is not None and _port_free(host, remembered) else _free_port(host)
        netloc = f"{parts.hostname}:{port}" if parts.hostname and ":" not in parts.hostname else f"[{parts.hostname}]:{port}"
        url = urlunsplit((parts.scheme or "http", netloc, "", "", ""))
        udp = udp_port + index if udp_port and udp_port + index <= 65535 else None  # past the last port: an ephemeral one
        specs.append(RelaySpec(node_id=node_id, host=host, port=port, public_url=url, udp_port=udp))
    return specs


def _port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when `vcs serve` dies, even by SIGKILL (Linux's PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


class LocalRelays:
    """Start, keep running and stop the relay processes; `async with` does start and stop."""

    def __init__(self, specs: list[RelaySpec], environ: Mapping[str, str]) -> None:
        self.specs = specs
        self._environ = dict(environ)
        self.processes: dict[str, asyncio.subprocess.Process] = {}  # node id -> the running process
        self._tasks: list[asyncio.Task] = []
        self._stopping: asyncio.Event | None = None

    async def __aenter__(self) -> LocalRelays:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._stopping is not None:
            return
        self._stopping = asyncio.Event()
        self._tasks = [asyncio.create_task(self._supervise(spec), name=f"relay-{spec.node_id}") for spec in self.specs]

    async def _supervise(self, spec: RelaySpec) -> None:
        assert self._stopping is not None
        env = {**self._environ, "VCS_SFU_NODE_ID": spec.node_id, "VCS_SFU_ROLE": "relay"}
        delay = BACKOFF_FIRST
        while not self._stopping.is_set():
            began = time.monotonic()
            try:
                process = await asyncio.create_subprocess_exec(
                    *spec.argv(), env=env, stdin=asyncio.subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent
                )
            except OSError as exc:
                log.error("relay %s cannot be started: %s", spec.node_id, exc)
            else:
                self.processes[spec.node_id] = process
                if self._stopping.is_set():  # stop() came while it was starting
                    process.terminate()
                log.info("relay %s started (pid %d, %s)", spec.node_id, process.pid, spec.public_url)
                code = await process.wait()
                if self._stopping.is_set():
                    return
                if time.monotonic() - began >= STABLE_AFTER:
                    delay = BACKOFF_FIRST
                log.warning("relay %s exited (code %s); starting it again in %.1fs", spec.node_id, code, delay)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            delay = min(delay * 2, BACKOFF_MAX)

    async def stop(self, timeout: float = STOP_WAIT) -> None:
        """SIGTERM to every relay (each unregisters itself), SIGKILL to any still running after `timeout`."""
        if self._stopping is None:
            return
        self._stopping.set()
        for process in self.processes.values():
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
        # each supervisor returns once its process has exited
        _, late = await asyncio.wait(self._tasks, timeout=timeout) if self._tasks else (set(), set())
        if late:
            for process in self.processes.values():
                if process.returncode is None:
                    log.warning("relay pid %d did not stop within %.0fs; killing it", process.pid, timeout)
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
            await asyncio.gather(*late, return_exceptions=True)
