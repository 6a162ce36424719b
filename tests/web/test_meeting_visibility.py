"""Who sees which meeting: one rule (scheduler.visibility) for the API list, detail, calendars and live state."""

from datetime import UTC, datetime, timedelta

import pytest

from vcs.divisions import communes

HANOI, HAIPHONG = "01", "31"
HAIPHONG_COMMUNE = next(c.code for c in communes() if c.province_code == HAIPHONG)


def at(minutes: int) -> str:
    return (datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=minutes)).isoformat()


async def book(http, headers, title: str, minutes: int, commune_ids: list[str], host: str = "central") -> str:
    body = {"title": title, "start": at(minutes), "duration_minutes": 30, "host_endpoint_id": host,
            "selector": {"kind": "communes", "commune_ids": commune_ids}}
    response = await http.post("/api/v1/meetings", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["meeting"]["id"]


async def test_a_province_organizer_sees_only_meetings_touching_its_province(http, mint_token):
    admin = await mint_token("admin")
    hanoi = await mint_token("organizer", HANOI)
    central_haiphong = await book(http, admin, "Trung ương - Hải Phòng", 60, [HAIPHONG_COMMUNE])
    hall_haiphong = await book(http, admin, "Hội trường Hà Nội - Hải Phòng", 120, [HAIPHONG_COMMUNE], host="hall-01")
    central_hanoi = await book(http, admin, "Trung ương - Hà Nội", 180, ["00070"])

    # not another province's list
    refused = await http.get("/api/v1/meetings", params={"province": HAIPHONG}, headers=hanoi)
    assert refused.status_code == 403
    listed = (await http.get("/api/v1/meetings", headers=hanoi)).json()
    assert {i["meeting_id"] for i in listed["items"]} == {hall_haiphong, central_hanoi}
    assert (await http.get("/api/v1/meetings", params={"province": "1"}, headers=hanoi)).json()["items"] == listed["items"]

    # hosted from its own hall: visible in the list, so also in detail, plan, calendar and live state
    for path in ("", "/plan", ".ics", "/live"):
        assert (await http.get(f"/api/v1/meetings/{hall_haiphong}{path}", headers=hanoi)).status_code == 200, path
        assert (await http.get(f"/api/v1/meetings/{central_haiphong}{path}", headers=hanoi)).status_code == 403, path

    # the central studio's feed: only what the organizer may see
    feed = (await http.get("/api/v1/endpoints/central/calendar.ics", headers=hanoi)).text
    assert "Trung ương - Hà Nội" in feed and "Trung ương - Hải Phòng" not in feed
    everything = (await http.get("/api/v1/endpoints/central/calendar.ics", headers=admin)).text
    assert everything.count("BEGIN:VEVENT") == 2
    # an unscoped filter by province counts the host too, as the organizers' rule does
    by_host = (await http.get("/api/v1/meetings", params={"province": HANOI}, headers=admin)).json()
    assert {i["meeting_id"] for i in by_host["items"]} == {hall_haiphong, central_hanoi}


@pytest.mark.parametrize("code", ["%C2%B9", "%D9%A3", "1" * 50, "-1", "0x1"])
async def test_province_codes_are_ascii_digits(http, mint_token, code):
    viewer = await mint_token("viewer")
    assert (await http.get(f"/api/v1/provinces/{code}", headers=viewer)).status_code == 404
    for path in ("/api/v1/endpoints", "/api/v1/endpoints.csv", "/api/v1/meetings"):
        response = await http.get(f"{path}?province={code}", headers=viewer)
        assert response.status_code == 422, (path, response.text)
        assert response.json()["fields"][0]["field"] == "province"
