"""`vcs serve` on every core: the embedded origin plus relay processes, registered, supervised, stopped."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest

from app.relays import default_sfu_processes, relay_specs
from tests.app.test_serve import STOP_WITHIN, alive, serves  # noqa: F401 (the fixture)
from tests.conftest import TEST_SECRET
from tests.waiting import eventually
from vcs import keys
from vcs.media_tokens import mint_media_token
from vcs.routing import NodeRouter


CONTROL = {"Authorization": f"Bearer {mint_media_token(TEST_SECRET, room='*', identity='test', role='control', ttl=3600)}"}


def children(pid: int) -> set[int]:
    """The live child processes of `pid`."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found.update(int(child) for child in (task / "children").read_text().split())
        except OSError:
            continue
    return {child for child in found if alive(child)}


def relay_pids(serve_pid: int) -> set[int]:
    """`vcs serve`'s relay processes (its other child is the embedded Redis, when it runs one)."""
    return {pid for pid in children(serve_pid) if b"--role\x00relay" in Path(f"/proc/{pid}/cmdline").read_bytes()}


async def test_serve_runs_an_origin_and_a_relay_restarts_a_killed_relay_and_stops_both(serves, redis, redis_url, tmp_path):
    serve = serves(tmp_path / "var", redis_url=redis_url, args=("--sfu-processes", "2"))
    await serve.ready()
    router = NodeRouter(redis)

    async def both_registered() -> bool:
        return sorted(node.role for node in await router.nodes()) == ["origin", "relay"]

    await eventually(both_registered, 60, what=lambda: f"origin and relay not both registered; log:\n{serve.text()}")
    nodes = {node.role: node for node in await router.nodes()}
    origin, relay = nodes["origin"], nodes["relay"]
    assert origin.url == serve.url and relay.url != serve.url
    async with httpx.AsyncClient(timeout=5) as http:
        answer = (await http.get(f"{relay.url}/sfu/node", headers=CONTROL)).json()
    assert (answer["id"], answer["role"]) == (relay.id, "relay"), "the relay answers, and knows the deployment's secret"

    (first,) = relay_pids(serve.process.pid)
    assert TEST_SECRET.encode() not in Path(f"/proc/{first}/cmdline").read_bytes(), "the secret travels in the environment"
    os.kill(first, signal.SIGKILL)

    async def restarted() -> bool:
        pids = relay_pids(serve.process.pid)
        if not pids or first in pids:
            return False
        try:
            async with httpx.AsyncClient(timeout=2) as http:
                return (await http.get(f"{relay.url}/sfu/node", headers=CONTROL)).json()["id"] == relay.id  # same port, same node id
        except httpx.HTTPError:
            return False

    await eventually(restarted, 60, what=lambda: f"relay not started again; log:\n{serve.text()}")
    (second,) = relay_pids(serve.process.pid)
    assert "starting it again" in serve.text()
    assert TEST_SECRET not in serve.text()

    assert serve.stop() < STOP_WITHIN and serve.process.returncode == 0, serve.text()
    assert not alive(second), "the relay stopped with the server"
    assert await redis.zcard(keys.SFU_NODES) == 0, "origin and relay both left the registry"


async def test_one_sfu_process_is_the_origin_alone(serves, redis, redis_url, tmp_path):
    serve = serves(tmp_path / "var", redis_url=redis_url, args=("--sfu-processes", "1"))
    await serve.ready()
    await eventually(lambda: _roles(redis), 30)
    assert await _roles(redis) == ["origin"]
    assert not relay_pids(serve.process.pid)
    assert serve.stop() < STOP_WITHIN


async def _roles(redis) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(node.role for node in await NodeRouter(redis).nodes())


async def test_a_bad_process_count_is_refused_with_a_reason(serves, tmp_path):
    serve = serves(tmp_path / "var", args=("--sfu-processes", "-1"))
    assert serve.process.wait(60) == 2
    assert "configuration error: the SFU processes cannot be fewer than 0" in serve.text()


async def test_no_sfu_process_serves_web_and_scheduler_for_nodes_elsewhere(serves, redis, redis_url, tmp_path):
    serve = serves(tmp_path / "var", redis_url=redis_url, args=("--sfu-processes", "0"))
    await serve.ready()
    await eventually(lambda: redis.get(keys.SCHEDULER_LEASE), 30, what="the scheduler lease")
    assert await NodeRouter(redis).nodes() == [] and not relay_pids(serve.process.pid)
    async with httpx.AsyncClient(timeout=5) as http:
        assert (await http.get(f"{serve.url}/sfu/node", headers=CONTROL)).status_code == 404
    assert serve.stop() < STOP_WITHIN


@pytest.mark.parametrize(
    ("option", "environ", "cores", "expected"),
    [
        (None, {}, 8, 8), (None, {}, None, 1), (3, {"VCS_SFU_PROCESSES": "5"}, 8, 3),
        (None, {"VCS_SFU_PROCESSES": "5"}, 8, 5), (1, {}, 8, 1), (0, {}, 8, 0),
    ],  # fmt: skip
)
def test_the_number_of_sfu_processes(option, environ, cores, expected):
    assert default_sfu_processes(option, environ, cores) == expected


@pytest.mark.parametrize(("option", "environ"), [(-1, {}), (None, {"VCS_SFU_PROCESSES": "two"}), (None, {"VCS_SFU_PROCESSES": "-1"})])
def test_a_bad_number_of_sfu_processes(option, environ):
    with pytest.raises(ValueError):
        default_sfu_processes(option, environ, 8)


def test_each_relay_has_its_own_media_port():
    """A fixed UDP port is the origin's; relay i takes the i-th after it. Otherwise each relay binds its own (ephemeral or off)."""
    fixed = relay_specs(2, origin_id="o", host="127.0.0.1", public_url="http://127.0.0.1:8000", udp_port=40000)
    assert [s.udp_port for s in fixed] == [40001, 40002]
    assert fixed[1].argv()[-2:] == ["--udp-port", "40002"]
    for udp_port in (0, None):  # auto, off: the relay reads VCS_SFU_UDP_PORT as the origin did
        specs = relay_specs(2, origin_id="o", host="127.0.0.1", public_url="http://127.0.0.1:8000", udp_port=udp_port)
        assert all(s.udp_port is None and "--udp-port" not in s.argv() for s in specs)


async def test_relays_die_with_a_killed_server(serves, redis, redis_url, tmp_path):
    serve = serves(tmp_path / "var", redis_url=redis_url, args=("--sfu-processes", "2"))
    await serve.ready()
    pids = await eventually(lambda: relay_pids(serve.process.pid), 60, what=lambda: f"no relay started; log:\n{serve.text()}")
    serve.process.kill()
    serve.process.wait(10)
    await eventually(lambda: not any(alive(pid) for pid in pids), 30, what="the relays outlived a killed server")


async def test_a_restarted_serve_comes_back_as_the_same_nodes(serves, redis, redis_url, tmp_path):
    """Placements, media tokens and cached join info name nodes by id and URL: a restart mid-meeting keeps them."""
    router = NodeRouter(redis)

    async def registered() -> dict[str, tuple[str, str]]:
        nodes = {node.role: (node.id, node.url) for node in await router.nodes()}
        return nodes if len(nodes) == 2 else {}

    serve = serves(tmp_path / "var", redis_url=redis_url, args=("--sfu-processes", "2"))
    await serve.ready()
    before = await eventually(registered, 60, what=lambda: f"origin and relay not both registered; log:\n{serve.text()}")
    assert serve.stop() < STOP_WITHIN, serve.text()

    again = serves(tmp_path / "var", redis_url=redis_url, args=("--sfu-processes", "2"))
    await again.ready()
    after = await eventually(registered, 60, what=lambda: f"origin and relay not both registered again; log:\n{again.text()}")
    # the origin is the web app's own port (each start of the fixture picks one); the relay's port is the deployment's
    assert after["origin"][0] == before["origin"][0], "the same origin id"
    assert after["relay"] == before["relay"], "the same relay id and port"
    again.stop()
