"""Booking through the API: rules, conflicts, scope, plan, cancel, calendars."""

from datetime import UTC, datetime, timedelta

import pytest

from vcs.divisions import communes

HANOI, HAIPHONG = "01", "31"


def at(minutes: int) -> str:
    moment = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=minutes)
    return moment.isoformat().replace("+00:00", "Z")


def booking(**overrides) -> dict:
    body = {
        "title": "Hội nghị triển khai nhiệm vụ",
        "start": at(60),
        "duration_minutes": 90,
        "selector": {"kind": "provinces", "province_codes": [HANOI, HAIPHONG]},
        "media": {"max_tier": "720p"},
    }
    return {**body, **overrides}


async def test_book_for_two_provinces_shows_the_plan(http, mint_token):
    headers = await mint_token("organizer")
    response = await http.post("/api/v1/meetings", json=booking(), headers=headers)
    assert response.status_code == 201, response.text
    body = response.json()
    expected = sum(1 for c in communes() if c.province_code in (HANOI, HAIPHONG))
    assert body["participants"] == expected
    tiers = {c["tier"] for c in body["plan"]["communes"]}
    assert "720p" in tiers and tiers <= {"720p", "360p", "180p", "audio", "none"}
    assert {t["province_code"] for t in body["plan"]["trunks"]} == {HANOI, HAIPHONG}
    meeting = body["meeting"]
    assert response.headers["location"] == f"/api/v1/meetings/{meeting['id']}"
    assert meeting["start_local"].endswith("+07:00")
    fetched = (await http.get(f"/api/v1/meetings/{meeting['id']}", headers=headers)).json()
    assert fetched["title"] == "Hội nghị triển khai nhiệm vụ" and fetched["next_occurrences"][0]["status"] == "scheduled"


@pytest.mark.parametrize(
    "overrides, field, reason",
    [
        ({"start": at(-30)}, "start", "must be in the future"),
        ({"duration_minutes": 2}, "duration_minutes", "must be between 5 minutes and 12 hours"),
        ({"recurrence": "FREQ=HOURLY"}, "recurrence", "FREQ"),
        ({"recurrence": "FREQ=DAILY;COUNT=3;UNTIL=20300101"}, "recurrence", "COUNT"),
        ({"title": ""}, "title", "must not be empty"),
        ({"selector": {"kind": "provinces", "province_codes": [99]}}, "selector.province_codes", "unknown province"),
        ({"start": "tomorrow"}, "start", ""),
    ],
)
async def test_invalid_bookings_get_422_with_the_reason(http, mint_token, overrides, field, reason):
    response = await http.post("/api/v1/meetings", json=booking(**overrides), headers=await mint_token("organizer"))
    assert response.status_code == 422, response.text
    fields = {f["field"]: f["reason"] for f in response.json()["fields"]}
    assert field in fields and reason in fields[field]


async def test_overlap_is_a_conflict_and_an_admin_may_override(http, mint_token):
    organizer = await mint_token("organizer")
    first = await http.post("/api/v1/meetings", json=booking(), headers=organizer)
    assert first.status_code == 201
    overlapping = booking(start=at(120), selector={"kind": "communes", "commune_ids": ["00070", "00004"]})
    response = await http.post("/api/v1/meetings", json=overlapping, headers=organizer)
    assert response.status_code == 409
    conflicts = response.json()["conflicts"]
    assert {c["endpoint_id"] for c in conflicts} >= {"00070", "00004", "central"}
    assert {c["meeting_id"] for c in conflicts} == {first.json()["meeting"]["id"]}
    forced = await http.post("/api/v1/meetings", json={**overlapping, "override_conflicts": True}, headers=organizer)
    assert forced.status_code == 403
    forced = await http.post("/api/v1/meetings", json={**overlapping, "override_conflicts": True}, headers=await mint_token("admin"))
    assert forced.status_code == 201 and forced.json()["meeting"]["override_conflicts"] is True
    back_to_back = booking(start=at(210), selector={"kind": "communes", "commune_ids": ["00070"]})
    assert (await http.post("/api/v1/meetings", json=back_to_back, headers=organizer)).status_code == 201


async def test_province_organizer_books_only_its_own_communes(http, mint_token):
    hanoi = await mint_token("organizer", HANOI)
    own = booking(selector={"kind": "provinces", "province_codes": [HANOI]}, host_endpoint_id="hall-01")
    assert (await http.post("/api/v1/meetings", json=own, headers=hanoi)).status_code == 201
    other = booking(start=at(300), selector={"kind": "provinces", "province_codes": [HAIPHONG]}, host_endpoint_id="hall-01")
    assert (await http.post("/api/v1/meetings", json=other, headers=hanoi)).status_code == 403
    everyone = booking(start=at(300), selector={"kind": "all"}, host_endpoint_id="hall-01")
    assert (await http.post("/api/v1/meetings", json=everyone, headers=hanoi)).status_code == 403
    foreign_commune = next(c.code for c in communes() if c.province_code == HAIPHONG)
    mixed = booking(start=at(300), selector={"kind": "communes", "commune_ids": ["00070", foreign_commune]}, host_endpoint_id="hall-01")
    assert (await http.post("/api/v1/meetings", json=mixed, headers=hanoi)).status_code == 403
    assert (await http.post("/api/v1/meetings", json=booking(), headers=await mint_token("viewer"))).status_code == 403
    assert (await http.post("/api/v1/meetings", json=booking(), headers=await mint_token("ops"))).status_code == 403


async def test_list_cancel_and_calendars(http, mint_token):
    organizer = await mint_token("organizer")
    weekly = booking(recurrence="FREQ=WEEKLY;COUNT=4", selector={"kind": "communes", "commune_ids": ["00070"]})
    created = (await http.post("/api/v1/meetings", json=weekly, headers=organizer)).json()["meeting"]
    occurrences = [o["start"] for o in created["next_occurrences"]]
    assert len(occurrences) == 4
    listed = (await http.get("/api/v1/meetings", params={"province": HANOI}, headers=organizer)).json()
    assert [i["start"] for i in listed["items"]] == occurrences
    elsewhere = (await http.get("/api/v1/meetings", params={"province": HAIPHONG}, headers=organizer)).json()
    assert elsewhere["items"] == []

    second = occurrences[1]
    response = await http.delete(f"/api/v1/meetings/{created['id']}/occurrences/{second}", headers=organizer)
    assert response.status_code == 200
    statuses = {o["start"]: o["status"] for o in response.json()["next_occurrences"]}
    assert second not in statuses and len(statuses) == 3
    ics = await http.get(f"/api/v1/meetings/{created['id']}.ics", headers=organizer)
    assert ics.headers["content-type"].startswith("text/calendar")
    assert "RRULE:FREQ=WEEKLY;COUNT=4" in ics.text and "EXDATE:" + second.replace("-", "").replace(":", "") in ics.text
    feed = await http.get("/api/v1/endpoints/00070/calendar.ics", headers=organizer)
    assert feed.text.count("BEGIN:VEVENT") == 1
    other_feed = await http.get("/api/v1/endpoints/00004/calendar.ics", headers=organizer)
    assert other_feed.text.count("BEGIN:VEVENT") == 0

    response = await http.delete(f"/api/v1/meetings/{created['id']}", headers=organizer)
    assert response.status_code == 200 and response.json()["next_occurrences"] == []
    listed = (await http.get("/api/v1/meetings", headers=organizer)).json()
    assert listed["items"] == []
    # the endpoint is free again
    again = booking(selector={"kind": "communes", "commune_ids": ["00070"]})
    assert (await http.post("/api/v1/meetings", json=again, headers=organizer)).status_code == 201


async def test_preview_reports_without_saving(http, mint_token):
    organizer = await mint_token("organizer")
    preview = await http.post("/api/v1/meetings/preview", json=booking(), headers=organizer)
    assert preview.status_code == 200 and preview.json()["conflict_count"] == 0
    assert (await http.get("/api/v1/meetings", headers=organizer)).json()["items"] == []


async def test_the_api_records_the_same_audit_actions_as_the_ui(http, mint_token, redis):
    from vcs import audit

    organizer = await mint_token("organizer")
    weekly = booking(recurrence="FREQ=WEEKLY;COUNT=2", selector={"kind": "communes", "commune_ids": ["00070"]})
    created = (await http.post("/api/v1/meetings", json=weekly, headers=organizer)).json()["meeting"]
    assert (await http.patch(f"/api/v1/meetings/{created['id']}", json={"title": "Đổi tên"}, headers=organizer)).status_code == 200
    first = created["next_occurrences"][0]["start"]
    assert (await http.delete(f"/api/v1/meetings/{created['id']}/occurrences/{first}", headers=organizer)).status_code == 200
    entries = await audit.recent(redis)
    assert [e.action for e in entries] == ["meeting.cancel", "meeting.change", "meeting.book"]
    assert all(e.details["via"] == "api" for e in entries)
    assert entries[0].details["scope"] == "occurrence" and entries[0].details["occurrence"] == first
