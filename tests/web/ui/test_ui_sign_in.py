"""Sign-in, the session cookie, throttling and sign-out, over real HTTP."""

import hashlib

import httpx

from vcs import audit, keys
from vcs.login_throttle import SIGN_IN

PASSWORD = "correct horse battery staple"  # as in conftest.add_user


def _cookie(response: httpx.Response, name: str) -> str:
    return next(c for c in response.headers.get_list("set-cookie") if c.startswith(f"{name}="))


async def test_sign_in_sets_an_opaque_httponly_samesite_cookie(new_client, add_user, sign_in, redis):
    await add_user("an", "admin", full_name="Nguyễn Văn An")
    client = new_client()
    form = await client.get("/login")
    assert form.status_code == 200
    assert "<html lang=\"vi\">" in form.text and "Đăng nhập" in form.text and "Mật khẩu" in form.text

    response = await sign_in(client, "an", next_path="/endpoints?q=hoan")
    assert response.status_code == 303
    assert response.headers["location"] == "/endpoints?q=hoan"
    cookie = _cookie(response, "vcs_session").lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    assert "secure" not in cookie  # plain HTTP on loopback; Secure comes with HTTPS

    token = client.cookies["vcs_session"]
    assert await redis.exists(keys.ui_session(hashlib.sha256(token.encode()).hexdigest()))
    assert not await redis.exists(keys.ui_session(token))  # the store holds only a hash of the cookie

    home = await client.get("/")
    assert home.status_code == 200
    assert "Nguyễn Văn An" in home.text and "Đăng xuất" in home.text
    [entry] = await audit.recent(redis, action="auth.login")
    assert entry.actor == "an" and entry.details["client"] == "127.0.0.1"


async def test_wrong_password_or_unknown_user_is_a_form_error_with_the_name_kept(new_client, add_user, sign_in, redis):
    await add_user("an", "admin")
    client = new_client()
    for username, password in (("an", "not the password"), ("nobody", PASSWORD)):
        response = await sign_in(client, username, password)
        assert response.status_code == 200
        assert "Tên đăng nhập hoặc mật khẩu không đúng." in response.text
        assert f'value="{username}"' in response.text
        assert "vcs_session" not in client.cookies
    empty = await sign_in(client, "an", "")
    assert empty.status_code == 422 and "Hãy nhập tên đăng nhập và mật khẩu." in empty.text
    failed = await audit.recent(redis, action="auth.login_failed")
    assert [e.actor for e in failed] == ["nobody", "an"]


async def test_repeated_failures_lock_the_username_from_that_address_and_tell_how_long(new_client, add_user, sign_in):
    await add_user("an", "admin")
    await add_user("binh", "viewer")
    client = new_client()
    for _ in range(SIGN_IN.per_pair):
        assert (await sign_in(client, "AN", "guess guess guess")).status_code == 200
    locked = await sign_in(client, "an")  # even the right password waits
    assert locked.status_code == 429
    assert 0 < int(locked.headers["retry-after"]) <= SIGN_IN.window
    assert "Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau 15 phút." in locked.text
    assert "vcs_session" not in client.cookies
    # another account from the same address is not locked out by it
    assert (await sign_in(new_client(), "binh")).status_code == 303


async def test_failures_from_one_address_lock_every_name_tried_from_it(new_client, add_user, sign_in, redis):
    await add_user("an", "admin")
    client = new_client()
    for name in ("x1", "x2", "x3"):
        await sign_in(client, name, "guess guess guess")
    counter = keys.login_failures("user", "client", "127.0.0.1")
    assert await redis.get(counter) == "3"
    await redis.set(counter, 1000, ex=SIGN_IN.window)  # as if the whole budget had been spent
    locked = await sign_in(client, "an")
    assert locked.status_code == 429 and "Retry-After" in locked.headers


async def test_success_clears_the_username_counter(new_client, add_user, sign_in, redis):
    await add_user("an", "admin")
    client = new_client()
    await sign_in(client, "an", "guess guess guess")
    assert await redis.exists(keys.login_failures("user", "account", "an"))
    assert (await sign_in(client, "an")).status_code == 303
    assert not await redis.exists(keys.login_failures("user", "account", "an"))


async def test_sign_out_revokes_the_session_at_once(signed_in, post_form, live_server, redis):
    client = await signed_in("admin", "an")
    old_cookie = client.cookies["vcs_session"]
    response = await post_form(client, "/", "/logout")
    assert response.status_code == 303 and response.headers["location"] == "/login"
    cleared = _cookie(response, "vcs_session").lower()
    assert "max-age=0" in cleared or "expires=thu, 01 jan 1970" in cleared
    async with httpx.AsyncClient(base_url=live_server.url, cookies={"vcs_session": old_cookie}) as replay:
        refused = await replay.get("/endpoints")
        assert refused.status_code == 303 and refused.headers["location"].startswith("/login")
    assert [e.actor for e in await audit.recent(redis, action="auth.logout")] == ["an"]


async def test_pages_send_visitors_to_sign_in_and_back(new_client, add_user, sign_in):
    await add_user("an", "admin")
    client = new_client()
    away = await client.get("/endpoints?province=01&q=ha")
    assert away.status_code == 303
    assert away.headers["location"] == "/login?next=%2Fendpoints%3Fprovince%3D01%26q%3Dha"
    form = await client.get(away.headers["location"])
    assert 'name="next" value="/endpoints?province=01&amp;q=ha"' in form.text
    back = await sign_in(client, "an", next_path="/endpoints?province=01&q=ha")
    assert back.headers["location"] == "/endpoints?province=01&q=ha"


async def test_sign_in_never_redirects_off_site(new_client, add_user, sign_in):
    await add_user("an", "admin")
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"):
        response = await sign_in(new_client(), "an", next_path=target)
        assert response.headers["location"] == "/", target


async def test_a_cookie_that_was_never_issued_is_refused(live_server):
    async with httpx.AsyncClient(base_url=live_server.url, cookies={"vcs_session": "made-up"}) as client:
        assert (await client.get("/")).status_code == 303


async def test_cookies_are_secure_behind_a_trusted_https_proxy(new_client, add_user, csrf_of):
    # uvicorn trusts X-Forwarded-Proto only from --forwarded-allow-ips (loopback by default)
    await add_user("an", "admin")
    client = new_client()
    proxied = {"X-Forwarded-Proto": "https"}
    form = await client.get("/login", headers=proxied)
    csrf_cookie = _cookie(form, "vcs_csrf")
    assert "secure" in csrf_cookie.lower()
    client.cookies.set("vcs_csrf", csrf_cookie.split(";")[0].split("=", 1)[1])  # a browser on https would send it back
    data = {"username": "an", "password": PASSWORD, "csrf": csrf_of(form.text)}
    response = await client.post("/login", data=data, headers=proxied)
    assert response.status_code == 303
    assert "secure" in _cookie(response, "vcs_session").lower()
