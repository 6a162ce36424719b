"""Readiness on loopback: a drill over real agents, real media tests against the node's test pattern, the board."""

import csv
import io
import json

import httpx
import pytest

from agent.fleet import Fleet, FleetConfig, FleetMember
from rtc.ice import restrict_host_addresses
from tests.conftest import loopback_sfu_config
from tests.waiting import eventually, scaled
from vcs.credentials import EndpointCredentials
from vcs.endpoints import national_endpoints
from vcs.link_profiles import AccessType, LinkProfile
from vcs.tiers import Ladder

restrict_host_addresses(["127.0.0.1"])

HANOI, HAI_PHONG = "01", "31"
PACE = 8  # rooms testing at once on the node
FIBER = LinkProfile(AccessType.GOV_FIBER, 200_000, 200_000, 10, 0.0)


@pytest.fixture
def settings(settings):
    """The deployment's ladder is the test node's (360p, 180p, audio); tests measure 3 s, not 10, at most 8 rooms at once."""
    ladder = Ladder(tiers=loopback_sfu_config("http://127.0.0.1:1").tiers)
    return settings.with_overrides(ladder=ladder, readiness_test_seconds=3, readiness_concurrency=PACE)


def communes_of(province: str, n: int) -> list[str]:
    return [e.id for e in national_endpoints() if e.kind.value == "commune" and e.province_code == province][:n]


def max_overlap(spans: list[tuple[float, float]]) -> int:
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans], key=lambda e: (e[0], e[1]))
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


async def board_of(client: httpx.AsyncClient, drill_id: str, headers: dict, **params) -> dict:
    response = await client.get(f"/api/v1/drills/{drill_id}/readiness", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_drill_of_20_rooms_lists_exactly_the_three_at_risk(start_server, redis, mint_token):
    server = start_server(sfu=True)
    hanoi, elsewhere = communes_of(HANOI, 20), communes_of(HAI_PHONG, 1)
    capped, black = hanoi[3:5], hanoi[7]
    from vcs.registry import Registry

    await Registry(redis).set_links([(e, FIBER) for e in hanoi + elsewhere])  # every room is planned at the top tier, 360p
    secrets = await EndpointCredentials(redis).rotate(hanoi + elsewhere)
    members = [
        FleetMember(e, secrets[e], "180p", link_cap_kbps=300 if e in capped else None, black_camera=e == black)  # 300 kbps cannot carry 360p
        for e in hanoi + elsewhere
    ]
    fleet = Fleet(FleetConfig(server.url, len(members), start_spread=1.0), members)
    await fleet.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            await eventually(lambda: fleet.counts()["connected"] == 21, timeout=30, what="every agent connected")
            ops = await mint_token("ops")
            response = await client.post("/api/v1/drills", json={"province": HANOI}, headers=ops)
            assert response.status_code == 201, response.text
            drill = response.json()
            assert drill["province"] == HANOI and drill["started_by"] == "test-ops"

            async def all_tested() -> dict | None:
                board = await board_of(client, drill["id"], ops)
                tested = [r for r in board["rooms"] if r["tested_at"]]
                return board if len(tested) == 20 else None

            board = await eventually(all_tested, timeout=scaled(60), what="the 20 rooms of Hanoi tested")
            rows = {r["endpoint_id"]: r for r in board["rooms"]}
            at_risk = {e: r["reasons"] for e, r in rows.items() if r["status"] == "at_risk"}
            assert set(at_risk) == {*capped, black}, board["counts"]
            assert at_risk[black] == ["camera"]
            assert all({"tier_below_plan", "loss"} & set(at_risk[e]) and "camera" not in at_risk[e] for e in capped), at_risk
            ready = [e for e, r in rows.items() if r["status"] == "ready"]
            assert sorted(ready) == sorted(set(hanoi) - {*capped, black})
            assert all(rows[e]["tier"] == "360p" and rows[e]["bitrate_kbps"] > 0 and rows[e]["camera_ok"] and rows[e]["mic_ok"] for e in ready)
            # worst first: the three at risk, then the rooms never tested (offline), then the ready ones
            assert [r["status"] for r in board["rooms"][:3]] == ["at_risk"] * 3 and board["rooms"][-1]["status"] == "ready"
            assert board["expected"] == len(communes_of(HANOI, 10_000)) and board["online"] == 20
            assert board["provinces"][HANOI]["at_risk"] == 3 and set(board["provinces"]) == {HANOI}
            # a drill for one province tests only its rooms
            assert elsewhere[0] not in rows
            outsider = next(a for a in fleet.agents if a.config.endpoint_id == elsewhere[0])
            assert outsider.tests_run == 0
            # paced: never more than PACE rooms testing at once, and the 20 took more than one turn
            spans = [span for agent in fleet.agents for span in agent.test_spans]
            assert len(spans) == 20 and max_overlap(spans) == PACE, spans

            exported = await client.get(f"/api/v1/drills/{drill['id']}/readiness.csv", headers=ops)
            lines = list(csv.DictReader(io.StringIO(exported.text)))
            assert exported.status_code == 200 and len(lines) == board["expected"]
            assert {line["endpoint_id"] for line in lines if line["status"] == "at_risk"} == {*capped, black}

            listed = await client.get("/api/v1/drills", headers=ops)
            assert [d["id"] for d in listed.json()["drills"]] == [drill["id"]]

            metrics = (await client.get("/metrics")).text
            assert 'vcs_last_drill_rooms{status="at_risk"} 3.0' in metrics and 'vcs_last_drill_rooms{status="ready"} 17.0' in metrics
            assert 'vcs_media_test_results_total{kind="drill",status="ready"} 17.0' in metrics
    finally:
        await fleet.stop()


async def test_drill_scope_and_roles(live_server, mint_token):
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as client:
        hanoi_organizer = await mint_token("organizer", HANOI)
        refused = await client.post("/api/v1/drills", json={"province": HAI_PHONG}, headers=hanoi_organizer)
        assert refused.status_code == 403
        national = await client.post("/api/v1/drills", json={"province": None}, headers=hanoi_organizer)
        assert national.status_code == 403  # the whole country is outside a province's scope
        viewer = await client.post("/api/v1/drills", json={"province": HANOI}, headers=await mint_token("viewer"))
        assert viewer.status_code == 403
        own = await client.post("/api/v1/drills", json={"province": HANOI}, headers=hanoi_organizer)
        assert own.status_code == 201
        other = await client.post("/api/v1/drills", json={"province": HAI_PHONG}, headers=await mint_token("admin"))
        assert other.status_code == 201
        # a Hanoi organizer sees its own drill's board, not Hai Phong's, and lists only its own
        assert (await client.get(f"/api/v1/drills/{own.json()['id']}/readiness", headers=hanoi_organizer)).status_code == 200
        assert (await client.get(f"/api/v1/drills/{other.json()['id']}/readiness", headers=hanoi_organizer)).status_code == 403
        listed = (await client.get("/api/v1/drills", headers=hanoi_organizer)).json()["drills"]
        assert [d["id"] for d in listed] == [own.json()["id"]]
        unknown = await client.post("/api/v1/drills", json={"province": "99"}, headers=await mint_token("admin"))
        assert unknown.status_code == 404
        bad = await client.post("/api/v1/drills", json={"province": 1}, headers=await mint_token("admin"))
        assert bad.status_code == 422


async def test_an_occurrence_board_reruns_one_room_and_refuses_foreign_results(start_server, redis, mint_token):
    from datetime import UTC, datetime, timedelta

    from websockets.asyncio.client import connect

    server = start_server(sfu=True)
    rooms = communes_of(HANOI, 2)
    outsider = communes_of(HAI_PHONG, 1)[0]
    from vcs.registry import Registry

    await Registry(redis).set_links([(e, FIBER) for e in rooms])
    await Registry(redis).set_contacts([(rooms[0], "Nguyễn Văn An", "0912345678")])
    secrets = await EndpointCredentials(redis).rotate([*rooms, outsider])
    fleet = Fleet(FleetConfig(server.url, 2, start_spread=0.2), [FleetMember(e, secrets[e], "180p") for e in rooms])
    await fleet.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            organizer = await mint_token("organizer")
            start = (datetime.now(UTC) + timedelta(minutes=20)).replace(microsecond=0)
            body = {"title": "Kiểm tra", "start": start.isoformat(), "duration_minutes": 30, "selector": {"kind": "communes", "commune_ids": rooms},
                    "media": {"max_tier": "360p"}}
            booked = await client.post("/api/v1/meetings", json=body, headers=organizer)
            assert booked.status_code == 201, booked.text
            meeting_id, occurrence = booked.json()["meeting"]["id"], start.strftime("%Y-%m-%dT%H:%M:%SZ")
            path = f"/api/v1/meetings/{meeting_id}/occurrences/{occurrence}/readiness"
            await eventually(lambda: fleet.counts()["connected"] == 2, timeout=30, what="both agents connected")
            before = (await client.get(path, headers=organizer)).json()
            assert [r["status"] for r in before["rooms"]] == ["not_tested"] * 2
            assert {r["endpoint_id"]: r["contact_phone"] for r in before["rooms"]}[rooms[0]] == "0912345678"

            run = await client.post(path + "/run", json={"endpoint_id": rooms[1]}, headers=organizer)
            assert run.status_code == 202 and run.json()["asked"] == 1

            async def tested() -> dict | None:
                board = (await client.get(path, headers=organizer)).json()
                return board if board["rooms"][-1]["tested_at"] else None

            board = await eventually(tested, timeout=scaled(40), what="the one room re-run")
            by_id = {r["endpoint_id"]: r for r in board["rooms"]}
            assert by_id[rooms[1]]["status"] == "ready" and by_id[rooms[0]]["status"] == "not_tested"
            viewer = await client.post(path + "/run", json={}, headers=await mint_token("viewer"))
            assert viewer.status_code == 403

            # an endpoint that is not in the meeting cannot put a result on its board
            login = await client.post("/api/v1/agent/login", json={"endpoint_id": outsider, "secret": secrets[outsider]})
            ws_url = server.url.replace("http", "ws") + "/api/v1/agent/ws"
            async with connect(ws_url, additional_headers={"Authorization": f"Bearer {login.json()['token']}"}) as ws:
                await ws.recv()  # its state
                result = {"type": "test_result", "meeting_id": meeting_id, "occurrence": occurrence, "result": {"tier": "360p"}}
                await ws.send(json.dumps(result))
                answer = json.loads(await ws.recv())
            assert answer == {"type": "error", "reason": "not a participant of that meeting"}
            assert outsider not in {r["endpoint_id"] for r in (await client.get(path, headers=organizer)).json()["rooms"]}
    finally:
        await fleet.stop()
