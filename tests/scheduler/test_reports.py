"""Attendance and quality reports: collected while the meeting runs, kept after it ends, through restarts."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from agent.control import Agent, AgentConfig
from agent.media import PatternMedia
from scheduler.meeting import parse_utc
from scheduler.reports import Reports, tally_sample
from tests.conftest import TEST_SECRET
from tests.waiting import eventually
from vcs import keys
from vcs.config import Settings
from vcs.credentials import EndpointCredentials
from web.services import Services

SAMPLE_S = 0.5


@pytest.fixture
def settings(tmp_path, redis_url) -> Settings:
    return Settings(data_dir=tmp_path / "var", redis_url=redis_url, secret_key=TEST_SECRET, port=0, report_sample_s=SAMPLE_S)


def blank() -> dict:
    return {"first_join": None, "last_seen": None, "present_s": 0.0, "tiers": {}, "drops": 0, "rejoins": 0,
            "joins": 0, "worst_loss_pct": None, "worst_rtt_ms": None, "floor_s": 0.0, "joined": False}  # fmt: skip


def test_a_tally_counts_presence_tiers_drops_rejoins_and_the_floor():
    tally = blank()
    joined = {"state": "joined", "first_joined": 100.0, "tier": "360p", "loss_pct": 1.5, "rtt_ms": 40, "joins": 1}
    tally = tally_sample(tally, joined, 0.0, 100.0, holds_floor=False)
    tally = tally_sample(tally, joined, 5.0, 105.0, holds_floor=True)
    tally = tally_sample(tally, {**joined, "tier": "180p", "loss_pct": 0.5, "rtt_ms": 90}, 5.0, 110.0, holds_floor=False)
    tally = tally_sample(tally, {**joined, "state": "dropped"}, 5.0, 115.0, holds_floor=False)
    tally = tally_sample(tally, joined, 5.0, 120.0, holds_floor=False)
    # a reconnect between two samples: the agent's own count says it joined twice more
    tally = tally_sample(tally, {**joined, "joins": 4}, 5.0, 125.0, holds_floor=False)
    assert tally["first_join"] == 100.0 and tally["last_seen"] == 125.0
    assert tally["present_s"] == 15.0 and tally["tiers"] == {"360p": 10.0, "180p": 5.0}
    assert (tally["drops"], tally["rejoins"]) == (3, 3)
    assert (tally["worst_loss_pct"], tally["worst_rtt_ms"]) == (1.5, 90)
    assert tally["floor_s"] == 5.0


async def test_a_meeting_with_a_drop_and_a_floor_hand_over_is_reported_and_kept(start_server, redis, mint_token, tmp_path, settings):
    server = start_server(run_scheduler=True, sfu=True)
    communes = ["00070", "00073"]
    secrets = await EndpointCredentials(redis).rotate([*communes, "central"])
    http = httpx.AsyncClient(timeout=30)
    media = PatternMedia()

    def agent(endpoint_id: str) -> Agent:
        return Agent(AgentConfig(server.url, endpoint_id, secrets[endpoint_id], state_dir=tmp_path / endpoint_id), http, media)

    agents = {e: agent(e) for e in ("central", *communes)}
    for a in agents.values():
        await a.start()
    headers = await mint_token("organizer")
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    body = {"title": "Giao ban", "start": start.isoformat(), "duration_minutes": 5, "selector": {"kind": "communes", "commune_ids": communes}, "record": True}
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30, headers=headers) as api:
            created = await api.post("/api/v1/meetings", json=body)
            assert created.status_code == 201, created.text
            meeting_id = created.json()["meeting"]["id"]
            occ = start.isoformat().replace("+00:00", "Z")
            report_url = f"/api/v1/meetings/{meeting_id}/occurrences/{occ}/report"

            async def report() -> dict:
                response = await api.get(report_url)
                assert response.status_code == 200, response.text
                return response.json()

            async def rooms() -> dict[str, dict]:
                return {r["endpoint_id"]: r for r in (await report())["rooms"]}

            async def everyone_present() -> bool:
                found = await rooms()
                return all(found[e]["minutes_present"] > 0 for e in ("central", *communes))

            await eventually(everyone_present, timeout=60, interval=0.5, what="the host and both communes are counted present")

            # a commune leaves and comes back: one drop, one rejoin
            dropping = communes[1]
            await agents[dropping].stop()

            async def dropped() -> bool:
                return (await rooms())[dropping]["drops"] == 1

            await eventually(dropped, timeout=30, interval=0.5, what="the commune's drop is counted")
            agents[dropping] = agent(dropping)
            await agents[dropping].start()

            async def rejoined() -> bool:
                return (await rooms())[dropping]["rejoins"] == 1

            await eventually(rejoined, timeout=60, interval=0.5, what="the commune's rejoin is counted")

            # the floor goes to the first commune, then back to the host
            speaker = communes[0]
            given = await api.post(f"/api/v1/meetings/{meeting_id}/floor", json={"endpoint_id": speaker})
            assert given.status_code == 200, given.text

            async def held_floor() -> bool:
                return (await rooms())[speaker]["floor_minutes"] >= 0.02  # a sample or two: over a second

            await eventually(held_floor, timeout=30, interval=0.5, what="the floor time is counted")
            assert (await api.delete(f"/api/v1/meetings/{meeting_id}/floor")).status_code == 200

            # the origin records it: the state it reports reaches /metrics
            async def recording() -> dict | None:
                state = await redis.hgetall(keys.recording(meeting_id, occ))
                return state if state.get("state") == "recording" and int(state.get("bytes", 0)) > 0 else None

            await eventually(recording, timeout=30, interval=0.5, what="the origin records the meeting")
            scraped = (await api.get("/metrics")).text
            assert 'vcs_recordings{state="recording"} 1.0' in scraped and 'vcs_recordings{state="failed"} 0.0' in scraped

            partial = await report()
            assert partial["final"] is False  # the meeting has not ended: figures so far, marked as such
            assert partial["country"]["expected"] == 2 and partial["country"]["attended"] == 2

            # the end step keeps the report (here called at once rather than after five minutes)
            svc = Services.build(settings, redis)  # the server's own runs on its thread's loop
            meeting = await svc.meetings.get(meeting_id)
            await svc.reports.finalize(meeting, parse_utc(occ), datetime.now(UTC))
            final = await report()
            assert final["final"] is True
            by_id = {r["endpoint_id"]: r for r in final["rooms"]}
            assert by_id[dropping]["drops"] == 1 and by_id[dropping]["rejoins"] == 1
            assert by_id[communes[0]]["drops"] == 0 and by_id[communes[0]]["had_floor"] is True
            assert by_id[dropping]["had_floor"] is False
            for endpoint_id in communes:
                row = by_id[endpoint_id]
                assert row["attended"] and row["first_join"] and row["last_leave"] and row["minutes_present"] > 0
                assert sum(row["tier_minutes"].values()) == pytest.approx(row["minutes_present"], abs=0.15)
            assert final["provinces"][0]["code"] == "01" and final["provinces"][0]["drops"] == 1

            exported = await api.get(report_url + ".csv")
            assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
            rows = list(csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff"))))
            assert {r["endpoint_id"]: r["drops"] for r in rows if r["endpoint_id"] in communes} == {communes[0]: "0", dropping: "1"}
    finally:
        for a in agents.values():
            await a.stop()
        await media.stop()
        await http.aclose()

    # a new server on the same Redis (a restart) answers the same report
    again = start_server()
    async with httpx.AsyncClient(base_url=again.url, timeout=30, headers=headers) as api:
        response = await api.get(report_url)
    assert response.status_code == 200 and response.json() == final


async def test_reports_are_refused_outside_the_scope_and_for_unknown_occurrences(live_server, redis, mint_token):
    headers = await mint_token("organizer")
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    body = {"title": "Giao ban", "start": start.isoformat(), "duration_minutes": 30, "selector": {"kind": "communes", "commune_ids": ["00070"]}}
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as api:
        meeting_id = (await api.post("/api/v1/meetings", json=body, headers=headers)).json()["meeting"]["id"]
        occ = start.isoformat().replace("+00:00", "Z")
        url = f"/api/v1/meetings/{meeting_id}/occurrences/{occ}/report"
        assert (await api.get(url)).status_code == 401
        assert (await api.get(url, headers=await mint_token("organizer", "79"))).status_code == 403
        assert (await api.get(f"/api/v1/meetings/{meeting_id}/occurrences/2020-01-01T00:00:00Z/report", headers=headers)).status_code == 404
        assert (await api.get(f"/api/v1/meetings/{meeting_id}/occurrences/tomorrow/report", headers=headers)).status_code == 422
        upcoming = await api.get(url, headers=await mint_token("organizer", "01"))
        assert upcoming.status_code == 200 and upcoming.json()["final"] is False
        assert upcoming.json()["rooms"][1]["attended"] is False


async def test_the_retention_job_deletes_reports_past_retention(redis, settings):
    svc = Services.build(settings, redis)
    reports: Reports = svc.reports
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for member, ended in (("m1/2024-12-01T01:00:00Z", now - timedelta(days=400)), ("m2/2025-12-01T01:00:00Z", now - timedelta(days=31))):
        meeting_id, _, occ = member.partition("/")
        await redis.set(keys.report(meeting_id, occ), json.dumps({"final": True}))
        await redis.zadd(keys.REPORTS, {member: ended.timestamp()})
    assert await reports.purge(now) == 1
    assert await redis.exists(keys.report("m1", "2024-12-01T01:00:00Z")) == 0
    assert await redis.exists(keys.report("m2", "2025-12-01T01:00:00Z")) == 1
    assert await redis.zrange(keys.REPORTS, 0, -1) == ["m2/2025-12-01T01:00:00Z"]
