"""The registry API as its clients use it: listing, filters, edits, CSV, presence."""

import time

from vcs.credentials import EndpointCredentials
from vcs.divisions import communes


async def test_lists_the_whole_national_registry(http, mint_token):
    headers = await mint_token("viewer")
    body = (await http.get("/api/v1/endpoints?per_page=500", headers=headers)).json()
    assert body["total"] == 3321 + 34 + 1
    communes_only = (await http.get("/api/v1/endpoints?kind=commune&per_page=1", headers=headers)).json()
    assert communes_only["total"] == 3321
    page2 = (await http.get("/api/v1/endpoints?kind=commune&per_page=2&page=2", headers=headers)).json()
    assert [i["id"] for i in page2["items"]] == [c.code for c in communes()[2:4]]


async def test_filters_and_search(http, mint_token):
    headers = await mint_token("viewer")
    sat = (await http.get("/api/v1/endpoints?access=satellite&per_page=500", headers=headers)).json()
    assert sat["total"] > 0 and {i["link"]["access"] for i in sat["items"]} == {"satellite"}
    found = (await http.get("/api/v1/endpoints", params={"q": "hoan kiem"}, headers=headers)).json()
    assert [i["name"] for i in found["items"]] == ["Phường Hoàn Kiếm"]


async def test_invalid_filters_and_fields_get_422_with_reasons(http, mint_token):
    headers = await mint_token("admin")
    response = await http.get("/api/v1/endpoints?per_page=0&status=maybe", headers=headers)
    assert response.status_code == 422
    response = await http.get("/api/v1/endpoints?status=maybe&access=dialup", headers=headers)
    assert {f["field"] for f in response.json()["fields"]} == {"status", "access"}
    response = await http.patch("/api/v1/endpoints/00070", json={"link": {"down_kbps": -5, "access": "pigeon"}}, headers=headers)
    assert response.status_code == 422
    assert {f["field"] for f in response.json()["fields"]} == {"link.down_kbps", "link.access"}
    response = await http.patch("/api/v1/endpoints/00070", content=b"{not json", headers={**headers, "content-type": "application/json"})
    assert response.status_code == 400
    assert (await http.get("/api/v1/endpoints/99999", headers=headers)).status_code == 404


async def test_edit_one_profile(http, mint_token):
    headers = await mint_token("ops")
    response = await http.patch("/api/v1/endpoints/00070", json={"link": {"access": "4g", "down_kbps": 1000}}, headers=headers)
    assert response.status_code == 200
    link = (await http.get("/api/v1/endpoints/00070", headers=headers)).json()["link"]
    assert link["access"] == "4g" and link["down_kbps"] == 1000


async def test_csv_import_is_all_or_nothing(http, mint_token):
    headers = {**await mint_token("ops"), "content-type": "text/csv"}
    before = (await http.get("/api/v1/endpoints.csv", headers=headers)).text
    bad = (
        "id,name,province_code,access,down_kbps,up_kbps,rtt_ms,loss_pct\n"
        "00070,,,4g,9000,2500,70,1.0\n"
        "00004,,,satellite,abc,500,600,2\n"
        "99999,,,4g,9000,2500,70,1.0\n"
        f"{communes()[2].code},,,4g,9000,2500,70,250\n"
    )
    response = await http.post("/api/v1/endpoints.csv", content=bad.encode(), headers=headers)
    assert response.status_code == 422
    reasons = {(f["field"], f["reason"]) for f in response.json()["fields"]}
    assert ("line 3", "down_kbps must be a whole number") in reasons
    assert ("line 4", "unknown endpoint id '99999'") in reasons
    assert ("line 5", "loss_pct must be between 0.0 and 100.0") in reasons
    assert (await http.get("/api/v1/endpoints.csv", headers=headers)).text == before

    good = "id,access,down_kbps,up_kbps,rtt_ms,loss_pct\n00070,4g,9000,2500,70,1.0\n00004,satellite,2000,500,600,2\n"
    response = await http.post("/api/v1/endpoints.csv", content=good.encode(), headers=headers)
    assert response.json() == {"updated": 2}
    exported = (await http.get("/api/v1/endpoints.csv?province=01", headers=headers)).text
    assert "00004,Phường Ba Đình,01,satellite,2000,500,600,2.0" in exported


async def test_csv_in_office_encodings(http, mint_token):
    headers = {**await mint_token("ops"), "content-type": "text/csv"}
    exported = await http.get("/api/v1/endpoints.csv?province=01", headers=headers)
    assert exported.content.startswith(b"\xef\xbb\xbf")  # a BOM: Excel reads the names as UTF-8
    unicode_text = "id\tname\taccess\tdown_kbps\tup_kbps\trtt_ms\tloss_pct\n00004\tPhường Ba Đình\t4g\t7000\t2500\t70\t1\n"
    response = await http.post("/api/v1/endpoints.csv", content=unicode_text.encode("utf-16"), headers=headers)
    assert response.status_code == 200 and response.json() == {"updated": 1}
    response = await http.post("/api/v1/endpoints.csv", content=unicode_text.encode("utf-16-le"), headers=headers)
    assert response.status_code == 422
    assert "UTF-8" in response.json()["fields"][0]["reason"]


async def test_heartbeat_makes_an_endpoint_online(http, mint_token, redis):
    [secret] = (await EndpointCredentials(redis).rotate(["00070"])).values()
    login = await http.post("/api/v1/agent/login", json={"endpoint_id": "00070", "secret": secret})
    assert login.status_code == 200
    agent = {"Authorization": f"Bearer {login.json()['token']}"}
    beat = await http.post("/api/v1/agent/heartbeat", headers=agent)
    assert beat.status_code == 200 and abs(beat.json()["server_time"] - time.time()) < 5
    viewer = await mint_token("viewer")
    one = (await http.get("/api/v1/endpoints/00070", headers=viewer)).json()
    assert one["status"] == "online" and one["last_seen"]
    online = (await http.get("/api/v1/endpoints?status=online", headers=viewer)).json()
    assert [i["id"] for i in online["items"]] == ["00070"]
    offline = (await http.get("/api/v1/endpoints?status=offline&per_page=500", headers=viewer)).json()
    assert offline["total"] == 3356 - 1 and "00070" not in {i["id"] for i in offline["items"]}
    page = (await http.get("/api/v1/endpoints?province=01&kind=commune&per_page=500", headers=viewer)).json()
    shown = {i["id"]: (i["status"], i["last_seen"] is not None) for i in page["items"]}  # unfiltered: each item's own presence
    assert shown["00070"] == ("online", True) and shown["00004"] == ("offline", False)
    province = (await http.get("/api/v1/provinces/01", headers=viewer)).json()
    assert province["online"] == 1
    assert (await http.post("/api/v1/agent/heartbeat", headers={"Authorization": "Bearer nope"})).status_code == 401


async def test_wrong_secret_is_refused_then_slowed_down(http, redis):
    [secret] = (await EndpointCredentials(redis).rotate(["00004"])).values()
    for _ in range(5):
        response = await http.post("/api/v1/agent/login", json={"endpoint_id": "00004", "secret": "guess"})
        assert response.status_code == 401
    response = await http.post("/api/v1/agent/login", json={"endpoint_id": "00004", "secret": secret})
    assert response.status_code == 429 and int(response.headers["retry-after"]) > 0


async def test_rotated_secret_is_returned_once_and_replaces_the_old(http, mint_token, redis):
    headers = await mint_token("admin")
    first = (await http.post("/api/v1/endpoints/00070/secret", headers=headers)).json()["secret"]
    second = (await http.post("/api/v1/endpoints/00070/secret", headers=headers)).json()["secret"]
    assert first != second
    assert (await http.post("/api/v1/agent/login", json={"endpoint_id": "00070", "secret": first})).status_code == 401
    assert (await http.post("/api/v1/agent/login", json={"endpoint_id": "00070", "secret": second})).status_code == 200
    assert second not in str(await redis.hgetall("vcs:endpoint-secrets"))


async def test_health_readiness_metrics_openapi(http):
    assert (await http.get("/healthz")).json() == {"status": "alive"}
    assert (await http.get("/readyz")).status_code == 200
    metrics = (await http.get("/metrics")).text
    assert "vcs_endpoints 3356.0" in metrics and "vcs_http_requests_total" in metrics
    spec = (await http.get("/api/v1/openapi.json")).json()
    assert spec["openapi"].startswith("3.") and "/api/v1/endpoints" in spec["paths"]


async def test_it_contacts_one_by_one_and_by_csv_with_errors_per_line(http, mint_token):
    ops = await mint_token("ops")
    edited = await http.patch("/api/v1/endpoints/00070", json={"contact": {"name": "Nguyễn Văn An", "phone": "+84 912 345 678"}}, headers=ops)
    assert edited.status_code == 200, edited.text
    assert (edited.json()["contact_name"], edited.json()["contact_phone"]) == ("Nguyễn Văn An", "0912345678")
    bad_phone = await http.patch("/api/v1/endpoints/00070", json={"contact": {"phone": "12345"}}, headers=ops)
    assert bad_phone.status_code == 422 and bad_phone.json()["fields"][0]["field"] == "contact.phone"
    viewer = await http.patch("/api/v1/endpoints/00070", json={"contact": {"name": "X", "phone": ""}}, headers=await mint_token("viewer"))
    assert viewer.status_code == 403

    csv_headers = {**ops, "Content-Type": "text/csv"}
    bad = "id,contact_name,contact_phone\n00073,Trần Bình,0987654321\n00091,Lê Cường,09-87\n99999,Ai đó,0987654321\n00004,Phạm Dũng,abc\n"
    refused = await http.post("/api/v1/endpoints/contacts.csv", content=bad.encode(), headers=csv_headers)
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["fields"]] == ["line 3", "line 4", "line 5"]  # each bad line named
    unchanged = (await http.get("/api/v1/endpoints/00073", headers=ops)).json()
    assert unchanged.get("contact_phone", "") == ""  # nothing applied, not even the good line
    good = "id;contact_name;contact_phone\n00073;Trần Bình;0987 654 321\n00091;Lê Cường;0241.3825.123\n"
    imported = await http.post("/api/v1/endpoints/contacts.csv", content=good.encode(), headers=csv_headers)
    assert imported.status_code == 200 and imported.json() == {"updated": 2}, imported.text
    assert (await http.get("/api/v1/endpoints/00091", headers=ops)).json()["contact_phone"] == "02413825123"
