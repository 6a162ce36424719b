"""The fleet: identities from the registry, secrets provisioned once, one shared encoder, a clean stop."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from agent.fleet import Fleet, FleetConfig, choose_members, link_tier, provision_secrets, read_secrets, write_secrets
from tests.agent.fake_orchestrator import FakeOrchestrator
from tests.agent.fake_orchestrator import schedule_entry as entry
from tests.waiting import eventually
from vcs.credentials import EndpointCredentials
from vcs.endpoints import national_endpoints
from vcs.link_profiles import AccessType, LinkProfile

HANOI = "01"


def hanoi_communes(n: int) -> list[str]:
    return [e.id for e in national_endpoints() if e.kind.value == "commune" and e.province_code == HANOI][:n]


def test_link_tier_follows_the_vcs_share_of_the_downlink():
    assert link_tier(LinkProfile(AccessType.GOV_FIBER, 200_000, 200_000, 10, 0.0)) == "720p"
    assert link_tier(LinkProfile(AccessType.LTE, 2_000, 1_000, 60, 1.0)) == "360p"
    assert link_tier(LinkProfile(AccessType.SATELLITE, 700, 400, 600, 2.0)) == "180p"
    assert link_tier(LinkProfile(AccessType.SATELLITE, 300, 100, 600, 2.0)) == "audio"


def test_choose_members_first_n_of_a_province_with_a_full_tier_share():
    ids = hanoi_communes(30)
    secrets = {i: f"s-{i}" for i in ids} | {"central": "s-central", "31001": "s-other"}
    config = FleetConfig("http://127.0.0.1:1", count=20, province=HANOI, full_tier_share=0.25, with_host=True)
    members = choose_members(national_endpoints(), secrets, config)
    assert members[0].endpoint_id == "central" and members[0].host
    assert [m.endpoint_id for m in members[1:]] == ids[:20]
    full = [m for m in members[1:] if m.full_tier]
    assert len(full) == 5  # a quarter receive what their link carries, the rest the lowest tier
    links = {e.id: e.link for e in national_endpoints()}
    assert all(m.receive_tier == link_tier(links[m.endpoint_id]) for m in full)
    assert all(m.receive_tier == "180p" for m in members[1:] if not m.full_tier)
    assert members == choose_members(national_endpoints(), secrets, config)  # the same pick every run
    assert "s-central" not in repr(members)
    without_secret = choose_members(national_endpoints(), {i: "s" for i in ids[5:]}, FleetConfig("u", count=3, province=HANOI))
    assert [m.endpoint_id for m in without_secret] == ids[5:8]
    with pytest.raises(ValueError):
        choose_members(national_endpoints(), {i: "s" for i in ids}, FleetConfig("u", count=3, with_host=True))


def test_secrets_file_round_trip_mode_600(tmp_path):
    path = tmp_path / "dir" / "secrets.csv"
    write_secrets(path, {"00070": "abc", "central": "xyz"})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert read_secrets(path) == {"00070": "abc", "central": "xyz"}
    path.write_text("00070,abc\n\n00073 , def \n")  # as `vcs endpoint rotate-secret` prints it, no header
    assert read_secrets(path) == {"00070": "abc", "00073": "def"}


async def test_provision_secrets_rotates_only_what_is_missing_or_stale(redis, tmp_path):
    path = tmp_path / "fleet-secrets.csv"
    credentials = EndpointCredentials(redis)
    first = await provision_secrets(redis, ["00070", "00073"], path)
    assert set(first) == {"00070", "00073"} and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert all([await credentials.verify(e, s) for e, s in first.items()])
    again = await provision_secrets(redis, ["00070", "00073", "00076"], path)
    assert again["00070"] == first["00070"] and again["00073"] == first["00073"]  # reused, not rotated
    assert await credentials.verify("00076", again["00076"])
    await credentials.rotate(["00073"])  # someone rotated it since: the file's copy is stale
    healed = await provision_secrets(redis, ["00073"], path)
    assert healed["00073"] != first["00073"] and await credentials.verify("00073", healed["00073"])
    assert set(read_secrets(path)) == {"00070", "00073", "00076"}


@pytest.fixture
async def orchestrator_for(sfu) -> AsyncIterator[tuple[FakeOrchestrator, list[str]]]:
    _, sfu_url = sfu
    ids = hanoi_communes(6)
    fake = FakeOrchestrator({i: f"secret-{i}" for i in ids} | {"central": "secret-central"})
    for endpoint in ids:
        fake.schedules[endpoint] = [entry(sfu_url, warmup_in=0.0, endpoint=endpoint)]
    fake.schedules["central"] = [entry(sfu_url, warmup_in=0.0, endpoint="central", role="host")]
    await fake.start()
    yield fake, ids
    await fake.stop()


async def test_fleet_joins_shares_one_encoder_and_stops_cleanly(orchestrator_for, sfu, tmp_path):
    fake_sfu, _ = sfu
    orchestrator, ids = orchestrator_for
    config = FleetConfig(orchestrator.url, count=6, province=HANOI, with_host=True, full_tier_share=0.5,
                         host_tier="360p", state_root=tmp_path / "state", start_spread=0.5, status_interval=0.2)  # fmt: skip
    members = choose_members(national_endpoints(), dict(orchestrator.secrets), config)
    fleet = Fleet(config, members)
    await fleet.start()
    try:
        await eventually(lambda: fleet.counts()["joined"] == 7, timeout=30)
        assert fleet.status_line() == "fleet: 7 agents, 7 connected, 7 joined, 0 failed"
        whep = fake_sfu.of("whep")
        assert len(whep) == 6 and len(fake_sfu.of("whip")) == 7
        full = {m.endpoint_id: m.receive_tier for m in members if m.full_tier}
        assert len(full) == 3  # half receive the lowest tier, half what their link carries
        assert {r.identity: r.params.get("max_tier") for r in whep} == {m.endpoint_id: m.receive_tier for m in members if not m.host}
        # one encoder per tier in use for the whole fleet: 180p for the communes, 360p for the host
        assert sorted(fleet.media._video) == ["180p", "360p"]
        assert fleet.media._video["180p"].broadcast.readers == 6
        assert all((tmp_path / "state" / i / "schedule.json").exists() for i in ids)
    finally:
        await fleet.stop()
        await fleet.stop()  # safe twice
    assert all(r.deleted for r in fake_sfu.resources.values())  # every peer connection left and closed
    assert fleet.counts()["agents"] == 0


def test_fleet_command_prints_status_and_exits_cleanly_on_sigterm(tmp_path):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("VCS_")}, "VCS_DATA_DIR": str(tmp_path / "var"), "VCS_LOG_LEVEL": "WARNING"}
    secrets = tmp_path / "secrets.csv"
    write_secrets(secrets, {i: "nope" for i in hanoi_communes(3)})
    runner = (
        "import argparse, sys; from agent.cli import add_fleet_command; from vcs.config import Settings;"
        "p = argparse.ArgumentParser(); c = p.add_subparsers(); add_fleet_command(c); a = p.parse_args(sys.argv[1:]);"
        "sys.exit(a.func(a, Settings.load()))"
    )
    args = ["fleet", "--server", "http://127.0.0.1:9", "--count", "3", "--province", "1", "--secrets-file", str(secrets)]
    process = subprocess.Popen([sys.executable, "-c", runner, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        lines = []
        while len(lines) < 2 and time.monotonic() < deadline:
            lines.append(process.stdout.readline().strip())
        assert lines[0].startswith("fleet: starting 3 agents")
        assert lines[1] == "fleet: 3 agents, 0 connected, 0 joined, 0 failed"  # nothing listens at :9
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "stopped" in err and "Traceback" not in err


async def test_wrong_secrets_count_as_failed_and_a_given_http_client_stays_open():
    orchestrator = FakeOrchestrator({})
    await orchestrator.start()
    try:
        config = FleetConfig(orchestrator.url, count=2, start_spread=0.1)
        members = choose_members(national_endpoints(), {i: "wrong" for i in hanoi_communes(2)}, config)
        async with httpx.AsyncClient() as client:
            fleet = Fleet(config, members, http=client)
            await fleet.start()
            try:
                await eventually(lambda: fleet.counts()["failed"] == 2)
            finally:
                await fleet.stop()
            assert not client.is_closed
    finally:
        await orchestrator.stop()


FLEET_COMMAND = (
    "import argparse, sys; from agent.cli import add_fleet_command; from vcs.config import Settings;"
    "p = argparse.ArgumentParser(); c = p.add_subparsers(); add_fleet_command(c); a = p.parse_args(sys.argv[1:]);"
    "sys.exit(a.func(a, Settings.load()))"
)


async def test_fleet_command_provisions_its_secrets_from_redis_once(redis, redis_url, tmp_path):
    import asyncio

    env = {**{k: v for k, v in os.environ.items() if not k.startswith("VCS_")}, "VCS_DATA_DIR": str(tmp_path / "var"),
           "VCS_REDIS_URL": redis_url, "VCS_LOG_LEVEL": "WARNING"}  # fmt: skip
    args = ["fleet", "--server", "http://127.0.0.1:9", "--count", "2", "--province", "01", "--with-host"]
    path = tmp_path / "var" / "fleet-secrets.csv"
    seen = []
    for _ in range(2):
        process = await asyncio.create_subprocess_exec(sys.executable, "-c", FLEET_COMMAND, *args, env=env,
                                                       stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)  # fmt: skip
        first_line = await asyncio.wait_for(process.stdout.readline(), 60)
        assert first_line.decode().startswith("fleet: starting 3 agents"), (await process.stderr.read()).decode()
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0
        seen.append(read_secrets(path))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert seen[0] == seen[1] and set(seen[0]) == {"central", *hanoi_communes(2)}  # the second run reused them
    credentials = EndpointCredentials(redis)
    assert all([await credentials.verify(e, s) for e, s in seen[0].items()])
