"""CSRF tokens on every form, and the security headers on every response."""

from vcs import keys
from vcs.users import Users

PASSWORD = "correct horse battery staple"
LINK = {"access": "4g", "down_kbps": "9000", "up_kbps": "2500", "rtt_ms": "70", "loss_pct": "1"}


async def test_forms_without_or_with_a_forged_token_are_refused(signed_in, csrf_of, redis):
    admin = await signed_in("admin", "an")
    other = await signed_in("ops", "binh")
    someone_elses = csrf_of((await other.get("/")).text)
    before = (await admin.get("/endpoints/00070")).text
    attempts = [
        ("/logout", {}),
        ("/endpoints/00070", LINK),
        ("/endpoints/00070/secret", {"confirm": "yes"}),
        ("/users", {"username": "mallory", "password": PASSWORD, "role": "admin"}),
        ("/users/binh/disable", {}),
        ("/lang", {"lang": "en", "next": "/"}),
    ]
    for path, data in attempts:
        for token in (None, "forged-token", someone_elses):
            form = data if token is None else {**data, "csrf": token}
            response = await admin.post(path, data=form)
            assert response.status_code == 403, (path, token)
            assert "Biểu mẫu đã hết hạn hoặc không xuất phát từ trang này." in response.text
    # nothing happened: still signed in, profile unchanged, no user added, binh still enabled
    assert (await admin.get("/endpoints/00070")).text.count('value="200000"') == before.count('value="200000"')
    assert [u.username for u in await Users(redis).all()] == ["an", "binh"]
    assert not (await Users(redis).get("binh")).disabled
    assert "vcs_lang" not in admin.cookies


async def test_a_csv_upload_needs_the_token_too(signed_in):
    admin = await signed_in("admin", "an")
    files = {"file": ("links.csv", b"id,access,down_kbps,up_kbps,rtt_ms,loss_pct\n00070,4g,9000,2500,70,1\n", "text/csv")}
    assert (await admin.post("/endpoints/import", files=files)).status_code == 403


async def test_the_sign_in_form_needs_the_visitors_own_token(new_client, add_user, csrf_of):
    await add_user("an", "admin")
    client = new_client()
    credentials = {"username": "an", "password": PASSWORD}
    assert (await client.post("/login", data=credentials)).status_code == 403  # no cookie, no field
    token = csrf_of((await client.get("/login")).text)
    assert (await client.post("/login", data={**credentials, "csrf": "forged"})).status_code == 403
    stranger = new_client()
    assert (await stranger.post("/login", data={**credentials, "csrf": token})).status_code == 403  # the field without its cookie
    assert (await client.post("/login", data={**credentials, "csrf": token})).status_code == 303


def _assert_security_headers(response, path):
    headers = response.headers
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp, path
    assert "frame-ancestors 'none'" in csp, path
    assert headers["x-frame-options"] == "DENY", path
    assert headers["x-content-type-options"] == "nosniff", path
    assert headers["referrer-policy"] == "same-origin", path


async def test_every_response_carries_the_security_headers(signed_in, new_client, http):
    admin = await signed_in("admin", "an")
    viewer = await signed_in("viewer", "binh")
    anonymous = new_client()
    checks = [
        (anonymous, "/login"), (anonymous, "/"), (anonymous, "/static/app.css"), (anonymous, "/static/emblem.svg"),
        (anonymous, "/api/v1/endpoints"), (anonymous, "/healthz"), (anonymous, "/no-such-page"),
        (admin, "/"), (admin, "/endpoints"), (admin, "/endpoints/00070"), (admin, "/endpoints/99999"),
        (admin, "/endpoints/export.csv"), (admin, "/users"), (admin, "/audit"), (viewer, "/users"),
    ]
    for client, path in checks:
        _assert_security_headers(await client.get(path), path)


async def test_pages_have_no_inline_script_or_style_and_are_not_cached(signed_in):
    admin = await signed_in("admin", "an")
    for path in ("/", "/endpoints", "/endpoints/00070", "/endpoints/import", "/users", "/audit", "/meetings", "/login?x=1"):
        response = await admin.get(path, follow_redirects=True)
        assert response.status_code == 200, path
        assert "<script" not in response.text and " style=" not in response.text and "<style" not in response.text, path
        assert response.headers["cache-control"] == "no-store", path


async def test_an_unexpected_error_is_a_500_page_with_the_security_headers(signed_in, redis):
    admin = await signed_in("admin", "an")
    # an audit entry no release writes: reading it fails inside the page
    await redis.xadd(keys.AUDIT, {"at": "not-a-time", "actor": "x", "action": "auth.login", "target": "", "details": "{}"})
    response = await admin.get("/audit")
    assert response.status_code == 500 and response.headers["content-type"].startswith("text/html")
    _assert_security_headers(response, "/audit")
    assert "Lỗi hệ thống" in response.text
    for leak in ("Traceback", "ValueError", "not-a-time", "float"):
        assert leak not in response.text, leak


async def test_ui_errors_are_html_pages_in_the_visitors_language(signed_in, new_client, post_form):
    admin = await signed_in("admin", "an")
    missing = await admin.get("/no-such-page")
    assert missing.status_code == 404 and "Không tìm thấy trang hoặc mục được yêu cầu." in missing.text
    too_large = await post_form(admin, "/users", "/users", {"username": "x" * (70 * 1024)})
    assert too_large.status_code == 413 and "Dữ liệu gửi lên lớn hơn 65536 byte." in too_large.text
    anonymous = new_client()
    forged = await anonymous.post("/lang", data={"lang": "en", "csrf": "forged"})
    assert forged.status_code == 403 and "Biểu mẫu đã hết hạn" in forged.text
