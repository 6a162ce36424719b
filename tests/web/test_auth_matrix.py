"""Each role against each API endpoint, over real HTTP, including province scope."""

import pytest

from vcs.divisions import communes

HANOI = "01"
OTHER = next(c.province_code for c in communes() if c.province_code != HANOI)
HANOI_COMMUNE = "00070"  # Phường Hoàn Kiếm
OTHER_COMMUNE = next(c.code for c in communes() if c.province_code == OTHER)

ROLES = ["admin", "organizer", "organizer-01", "ops", "viewer", "none", "forged"]
CSV = f"id,access,down_kbps,up_kbps,rtt_ms,loss_pct\n{HANOI_COMMUNE},4g,9000,2500,70,1.0\n"
LINK = {"link": {"down_kbps": 9000}}

# (method, path, body, {role: status}); roles not named get `default`
MATRIX = [
    ("GET", "/api/v1/endpoints", None, {}),
    ("GET", f"/api/v1/endpoints?province={OTHER}", None, {"organizer-01": 403}),
    ("GET", f"/api/v1/endpoints/{HANOI_COMMUNE}", None, {}),
    ("GET", f"/api/v1/endpoints/{OTHER_COMMUNE}", None, {"organizer-01": 403}),
    ("GET", "/api/v1/endpoints/central", None, {}),
    ("PATCH", f"/api/v1/endpoints/{HANOI_COMMUNE}", LINK, {"organizer": 403, "organizer-01": 403, "viewer": 403}),
    ("POST", f"/api/v1/endpoints/{HANOI_COMMUNE}/secret", None, {"organizer": 403, "organizer-01": 403, "viewer": 403}),
    ("GET", "/api/v1/endpoints.csv", None, {}),
    ("POST", "/api/v1/endpoints.csv", CSV, {"organizer": 403, "organizer-01": 403, "viewer": 403}),
    ("GET", "/api/v1/provinces", None, {}),
    ("GET", f"/api/v1/provinces/{HANOI}", None, {}),
    ("GET", f"/api/v1/provinces/{OTHER}", None, {"organizer-01": 403}),
]


@pytest.mark.parametrize("method, path, body, special", MATRIX, ids=[f"{m} {p}" for m, p, _, _ in MATRIX])
async def test_auth_matrix(http, mint_token, method, path, body, special):
    headers = {
        "admin": await mint_token("admin"),
        "organizer": await mint_token("organizer"),
        "organizer-01": await mint_token("organizer", HANOI),
        "ops": await mint_token("ops"),
        "viewer": await mint_token("viewer"),
        "none": {},
        "forged": {"Authorization": "Bearer vcs_not-a-real-token"},
    }
    for role in ROLES:
        expected = 401 if role in ("none", "forged") else special.get(role, 200)
        kwargs = {}
        if isinstance(body, dict):
            kwargs["json"] = body
        elif isinstance(body, str):
            kwargs["content"] = body.encode()
            kwargs["headers"] = {"content-type": "text/csv"}
        response = await http.request(method, path, headers={**headers[role], **kwargs.pop("headers", {})}, **kwargs)
        assert response.status_code == expected, (role, response.text)
        assert response.headers["content-type"].startswith(("application/json", "text/csv"))


async def test_scoped_organizer_lists_only_its_province(http, mint_token):
    response = await http.get("/api/v1/endpoints?kind=commune&per_page=500", headers=await mint_token("organizer", HANOI))
    body = response.json()
    assert body["total"] == sum(1 for c in communes() if c.province_code == HANOI)
    assert {item["province_code"] for item in body["items"]} == {HANOI}
    provinces = (await http.get("/api/v1/provinces", headers=await mint_token("organizer", HANOI))).json()
    assert [p["code"] for p in provinces["items"]] == [HANOI]
