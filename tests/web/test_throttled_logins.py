"""The login throttle over real HTTP, each caller from a loopback address of its own.

A guesser is stopped at its own address; the owner of the account, with the
right credential from another address, always gets in (slowed down at worst).
"""

import time

from vcs.credentials import EndpointCredentials
from vcs.login_throttle import AGENT_LOGIN, SIGN_IN
from vcs.users import Users

AGENT = "/api/v1/agent/login"
TOKEN = "/api/v1/auth/token"


async def test_a_guesser_does_not_keep_the_commune_room_out(client_at, redis):
    [secret] = (await EndpointCredentials(redis).rotate(["00004"])).values()
    guesser, room = client_at("127.0.0.2"), client_at("127.0.0.3")
    for _ in range(AGENT_LOGIN.per_pair):
        assert (await guesser.post(AGENT, json={"endpoint_id": "00004", "secret": "guess"})).status_code == 401
    refused = await guesser.post(AGENT, json={"endpoint_id": "00004", "secret": secret})
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    joined = await room.post(AGENT, json={"endpoint_id": "00004", "secret": secret})
    assert joined.status_code == 200 and joined.json()["token"]


async def test_guessing_from_many_addresses_slows_the_endpoint_down_but_never_locks_it(client_at, redis):
    [secret] = (await EndpointCredentials(redis).rotate(["00004"])).values()
    failures = AGENT_LOGIN.account_free + 1
    for i in range(failures):  # one try from each address: no address reaches its own limit
        guess = await client_at(f"127.0.0.{10 + i}").post(AGENT, json={"endpoint_id": "00004", "secret": "guess"})
        assert guess.status_code == 401
    started = time.monotonic()
    joined = await client_at("127.0.0.3").post(AGENT, json={"endpoint_id": "00004", "secret": secret})
    assert joined.status_code == 200
    assert time.monotonic() - started >= AGENT_LOGIN.delay(failures)  # the owner was slowed, not refused
    # the owner's success starts the endpoint afresh: the next login is not slowed
    started = time.monotonic()
    assert (await client_at("127.0.0.4").post(AGENT, json={"endpoint_id": "00004", "secret": secret})).status_code == 200
    assert AGENT_LOGIN.delay(0) == 0


async def test_one_address_spraying_many_endpoints_is_stopped(client_at, redis):
    [secret] = (await EndpointCredentials(redis).rotate(["00070"])).values()
    sprayer = client_at("127.0.0.2")
    for i in range(AGENT_LOGIN.per_client):
        assert (await sprayer.post(AGENT, json={"endpoint_id": f"{i:05d}", "secret": "guess"})).status_code == 401
    refused = await sprayer.post(AGENT, json={"endpoint_id": "00070", "secret": secret})
    assert refused.status_code == 429
    assert (await client_at("127.0.0.3").post(AGENT, json={"endpoint_id": "00070", "secret": secret})).status_code == 200


async def test_wrong_passwords_lock_out_the_guesser_not_the_admin(client_at, redis):
    await Users(redis).add("admin1", "mat-khau-dai-du", "admin")
    guesser, admin = client_at("127.0.0.2"), client_at("127.0.0.3")
    for _ in range(SIGN_IN.per_pair):
        assert (await guesser.post(TOKEN, json={"username": "admin1", "password": "sai"})).status_code == 401
    assert (await guesser.post(TOKEN, json={"username": "admin1", "password": "mat-khau-dai-du"})).status_code == 429
    # the admin, from elsewhere, by the API and by the sign-in page
    assert (await admin.post(TOKEN, json={"username": "admin1", "password": "mat-khau-dai-du"})).status_code == 200
    form = await admin.get("/login")
    csrf = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    page = await admin.post("/login", data={"username": "admin1", "password": "mat-khau-dai-du", "next": "/", "csrf": csrf})
    assert page.status_code == 303 and "vcs_session" in admin.cookies
