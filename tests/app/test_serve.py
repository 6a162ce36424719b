"""`vcs serve` as a process: a bounded, ordered stop, one server per data directory, its Redis supervised."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from rtc.synthetic_media import AudioPattern, VideoPattern
from rtc.whip_client import publish, subscribe
from tests.conftest import TEST_SECRET, free_port
from tests.waiting import eventually
from tests.web.ui.conftest import PASSWORD, _sign_in
from vcs import keys
from vcs.media_tokens import mint_media_token
from vcs.users import Users

STOP_WITHIN = 5.0  # seconds: the bound `vcs serve` promises for a stop (docs/reliability.md)
TRIALS = range(int(os.environ.get("VCS_DRILL_TRIALS", "1")))  # repeats of the stop drill, for its figures


def vcs_env(data_dir: Path, redis_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VCS_")}
    env.update(VCS_DATA_DIR=str(data_dir), VCS_SECRET_KEY=TEST_SECRET, VCS_LOG_LEVEL="INFO")
    if redis_url:
        env["VCS_REDIS_URL"] = redis_url
    return env


class Serve:
    """A `vcs serve` subprocess on a loopback port; its log kept in the data directory."""

    def __init__(self, data_dir: Path, *, redis_url: str | None = None, args: tuple[str, ...] = ()) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env = vcs_env(data_dir, redis_url)
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log = data_dir / f"serve-{self.port}.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(self.port), *args], env=env, stdout=out, stderr=subprocess.STDOUT)

    def vcs(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """Another `vcs` command on the same data directory."""
        return subprocess.run([sys.executable, "-m", "app.cli", *args], env=self.env, capture_output=True, text=True, timeout=timeout)

    async def ready(self, timeout: float = 60) -> None:
        await eventually(self.is_ready, timeout, what=lambda: f"{self.url}/readyz never ready; log:\n{self.text()}")

    async def is_ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"vcs serve exited with {self.process.returncode}:\n{self.text()}")
        try:
            async with httpx.AsyncClient(timeout=2) as client:
                return (await client.get(f"{self.url}/readyz")).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> float:
        """SIGTERM; seconds until the process has exited."""
        began = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(30)
        return time.monotonic() - began

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def serves():
    started: list[Serve] = []

    def start(data_dir: Path, **options) -> Serve:
        started.append(Serve(data_dir, **options))
        return started[-1]

    yield start
    for serve in started:
        serve.close()
        pid = redis_pid(serve.data_dir)
        if pid and alive(pid):
            os.kill(pid, signal.SIGKILL)


def redis_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "redis" / "server.pid").read_text())
    except (OSError, ValueError):
        return None


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("trial", TRIALS)
async def test_serve_stops_within_five_seconds_with_a_room_and_live_streams_open(serves, redis, redis_url, tmp_path, mint_token, loopback_ice, trial):
    serve = serves(tmp_path / "var", redis_url=redis_url)  # an outside Redis, to see what the server left in it
    await serve.ready()
    await Users(redis).add("hanoi", PASSWORD, "admin")
    headers = await mint_token("admin")
    body = {
        "title": "Giao ban",
        "start": (datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)).isoformat(),
        "duration_minutes": 30,
        "selector": {"kind": "communes", "commune_ids": ["00070"]},
    }
    video, audio = VideoPattern.for_tier("180p"), AudioPattern()
    await video.start()
    await audio.start()
    async with httpx.AsyncClient(base_url=serve.url, timeout=20) as api, httpx.AsyncClient(base_url=serve.url, timeout=20) as browser:
        created = await api.post("/api/v1/meetings", json=body, headers=headers)
        assert created.status_code == 201, created.text
        meeting_id = created.json()["meeting"]["id"]
        assert (await _sign_in(browser, "hanoi")).status_code == 303
        room = f"{meeting_id}-room"
        token = lambda role, identity: mint_media_token(TEST_SECRET, room=room, identity=identity, role=role, host=identity == "central")  # noqa: E731
        host = await publish(api, f"{serve.url}/sfu/whip/{room}", token("publish", "central"), [video.track(), audio.track()])
        commune = await subscribe(api, f"{serve.url}/sfu/whep/{room}", token("subscribe", "00070"), max_tier="180p")
        streams = []
        try:
            await asyncio.wait_for(commune.first_media.wait(), 30)
            async with api.stream("GET", f"/api/v1/meetings/{meeting_id}/live/stream", headers=headers) as api_stream, browser.stream(
                "GET", f"/meetings/{meeting_id}/live/events"
            ) as page_stream:
                streams = [api_stream, page_stream]
                for stream in streams:
                    assert stream.status_code == 200
                    assert "event: live" in await first_event(stream)
                assert await redis.get(keys.SCHEDULER_LEASE)
                took = serve.stop()
        finally:
            await commune.close()
            await host.close()
            await video.stop()
            await audio.stop()
    print(f"vcs serve stopped in {took:.2f}s with a room (1 publisher, 1 subscriber) and 2 live streams open")
    assert serve.process.returncode == 0, serve.text()
    assert took < STOP_WITHIN, serve.text()
    assert await redis.get(keys.SCHEDULER_LEASE) is None, "the lease was released, not left to expire"
    assert await redis.zcard(keys.SFU_NODES) == 0 and not await redis.keys(keys.sfu_room("*")), "the node left Redis with its rooms"


async def first_event(stream: httpx.Response) -> str:
    text = ""
    async for chunk in stream.aiter_text():
        text += chunk
        if "\n\n" in text:
            return text
    return text


async def test_a_second_server_on_the_same_data_directory_refuses_to_start(serves, tmp_path):
    first = serves(tmp_path / "var")
    await first.ready()
    valkey = redis_pid(first.data_dir)
    second = serves(tmp_path / "var")
    assert second.process.wait(60) == 3
    assert f"in use by `vcs serve` (pid {first.process.pid})" in second.text()
    assert await first.is_ready() and redis_pid(first.data_dir) == valkey, "the first server and its Redis carry on"
    token = first.vcs("token", "create", "--role", "viewer")  # a command shares the server's Redis
    assert token.returncode == 0 and token.stdout.startswith("vcs_"), token.stderr
    async with httpx.AsyncClient(base_url=first.url) as client:
        assert (await client.get("/api/v1/provinces", headers={"Authorization": f"Bearer {token.stdout.strip()}"})).status_code == 200
    assert alive(valkey), "the command left the server's Redis running"
    assert first.stop() < STOP_WITHIN and first.process.returncode == 0
    assert not alive(valkey), "the server stopped its Redis"


async def test_the_server_starts_its_redis_again_when_it_dies(serves, tmp_path):
    serve = serves(tmp_path / "var")
    await serve.ready()
    first = redis_pid(serve.data_dir)
    os.kill(first, signal.SIGKILL)

    async def restarted() -> bool:
        pid = redis_pid(serve.data_dir)
        return pid not in (None, first) and alive(pid) and await serve.is_ready()

    await eventually(restarted, 20, what=lambda: f"Redis not started again; log:\n{serve.text()}")
    assert "starting it again" in serve.text()
    assert serve.stop() < STOP_WITHIN and serve.process.returncode == 0
    assert not alive(redis_pid(serve.data_dir) or first)


async def test_a_redis_left_by_a_killed_server_is_stopped_by_the_next_one(serves, tmp_path):
    crashed = serves(tmp_path / "var")
    await crashed.ready()
    orphan = redis_pid(crashed.data_dir)
    crashed.process.kill()
    crashed.process.wait(10)
    assert alive(orphan), "SIGKILL leaves the embedded Redis running"
    serve = serves(tmp_path / "var")
    await serve.ready()
    assert not alive(orphan) and redis_pid(serve.data_dir) != orphan
    assert "left running by an earlier owner" in serve.text()
    own = redis_pid(serve.data_dir)
    assert serve.stop() < STOP_WITHIN
    assert not alive(own)


async def test_serve_refuses_while_a_standalone_scheduler_runs_the_redis(serves, tmp_path):
    data_dir = tmp_path / "var"
    scheduler = subprocess.Popen([sys.executable, "-m", "app.cli", "scheduler"], env=vcs_env(data_dir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await eventually(lambda: redis_pid(data_dir) is not None and alive(redis_pid(data_dir)), 30)
        serve = serves(data_dir)
        assert serve.process.wait(60) == 3
        assert f"in use by `vcs scheduler` (pid {scheduler.pid})" in serve.text()
    finally:
        scheduler.send_signal(signal.SIGTERM)
        assert scheduler.wait(15) == 0
    assert not alive(redis_pid(data_dir) or 0)
