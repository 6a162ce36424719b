"""Users sign in to the API with their password and get a token that dies with the account."""

from vcs.users import Users


async def test_sign_in_use_and_sign_out(http, redis):
    await Users(redis).add("hanoi-org", "mat-khau-dai-du", "organizer", "01")
    response = await http.post("/api/v1/auth/token", json={"username": "hanoi-org", "password": "mat-khau-dai-du"})
    assert response.status_code == 200 and response.json()["role"] == "organizer" and response.json()["province"] == "01"
    headers = {"Authorization": f"Bearer {response.json()['token']}"}
    listing = (await http.get("/api/v1/endpoints?kind=commune&per_page=1", headers=headers)).json()
    assert listing["items"][0]["province_code"] == "01"
    assert (await http.delete("/api/v1/auth/token", headers=headers)).status_code == 204
    assert (await http.get("/api/v1/endpoints", headers=headers)).status_code == 401


async def test_disabling_the_account_kills_its_tokens(http, redis):
    users = Users(redis)
    user = await users.add("viewer1", "mat-khau-dai-du", "viewer")
    token = (await http.post("/api/v1/auth/token", json={"username": "viewer1", "password": "mat-khau-dai-du"})).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert (await http.get("/api/v1/provinces", headers=headers)).status_code == 200
    from dataclasses import replace

    await users.save(replace(user, disabled=True))
    assert (await http.get("/api/v1/provinces", headers=headers)).status_code == 401


async def test_wrong_passwords_are_refused_then_throttled(http, redis):
    await Users(redis).add("ops1", "mat-khau-dai-du", "ops")
    for _ in range(5):
        response = await http.post("/api/v1/auth/token", json={"username": "ops1", "password": "sai"})
        assert response.status_code == 401
    response = await http.post("/api/v1/auth/token", json={"username": "ops1", "password": "mat-khau-dai-du"})
    assert response.status_code == 429 and int(response.headers["retry-after"]) > 0
    assert (await http.post("/api/v1/auth/token", json={"username": "ops1"})).status_code == 422
