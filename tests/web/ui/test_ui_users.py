"""The users page: adding with errors shown by their fields, escaping, disabling that revokes sessions."""

from vcs import audit
from vcs.users import Users

PASSWORD = "correct horse battery staple"
XSS = '<script>alert("x")</script>'


async def test_bad_input_is_shown_next_to_each_field_and_kept(signed_in, post_form, redis):
    admin = await signed_in("admin", "an")
    response = await post_form(
        admin, "/users", "/users",
        {"username": "Bad Name", "full_name": "Trần Thị Bình", "role": "viewer", "province": "01", "password": "short"},
    )
    assert response.status_code == 422
    page = response.text
    assert 'id="err-username"' in page and "2–64 ký tự: chữ thường không dấu" in page
    assert 'id="err-password"' in page and "ít nhất 10 ký tự" in page
    assert 'id="err-province"' in page and "chỉ người tổ chức họp mới gắn với một tỉnh, thành phố" in page
    assert 'value="Bad Name"' in page and 'value="Trần Thị Bình"' in page
    assert '<option value="01" selected>' in page and '<option value="viewer" selected>' in page
    assert "short" not in page  # a password is never sent back
    assert [u.username for u in await Users(redis).all()] == ["an"]


async def test_adding_a_province_organizer(signed_in, post_form, redis):
    admin = await signed_in("admin", "an")
    data = {"username": "binh", "full_name": "Trần Thị Bình", "role": "organizer", "province": "01", "password": PASSWORD}
    response = await post_form(admin, "/users", "/users", data)
    assert response.status_code == 303 and response.headers["location"] == "/users"
    page = (await admin.get("/users")).text
    assert "Đã thêm người dùng binh." in page and "Người tổ chức họp" in page and "Thành phố Hà Nội" in page
    user = await Users(redis).get("binh")
    assert user.province_code == "01" and user.full_name == "Trần Thị Bình"
    [entry] = await audit.recent(redis, action="user.add")
    assert (entry.actor, entry.target, entry.details) == ("an", "binh", {"role": "organizer", "province": "01"})
    taken = await post_form(admin, "/users", "/users", data)
    assert taken.status_code == 422 and "tên này đã được sử dụng" in taken.text


async def test_what_users_type_is_escaped(signed_in, post_form, sign_in, new_client):
    admin = await signed_in("admin", "an")
    data = {"username": "mallory", "full_name": XSS, "role": "viewer", "province": "", "password": PASSWORD}
    assert (await post_form(admin, "/users", "/users", data)).status_code == 303
    for client, path in ((admin, "/users"), (admin, "/endpoints?q=" + XSS)):
        page = (await client.get(path)).text
        assert XSS not in page and "<script" not in page
        assert "&lt;script&gt;alert(" in page
    mallory = new_client()
    await sign_in(mallory, "mallory")
    home = (await mallory.get("/")).text
    assert "<script" not in home and "&lt;script&gt;" in home
    # a sign-in name is echoed back into the form escaped too
    failed = await sign_in(new_client(), '"><script>alert(1)</script>', "whatever whatever")
    assert "<script>alert(1)" not in failed.text


async def test_disabling_a_user_ends_all_its_sessions_at_once(signed_in, post_form, sign_in, new_client, add_user, redis):
    admin = await signed_in("admin", "an")
    await add_user("binh", "viewer")
    laptop, phone = new_client(), new_client()
    for client in (laptop, phone):
        assert (await sign_in(client, "binh")).status_code == 303
        assert (await client.get("/")).status_code == 200
    assert "<td class=\"num\">2</td>" in (await admin.get("/users")).text

    response = await post_form(admin, "/users", "/users/binh/disable")
    assert response.status_code == 303
    assert "Đã vô hiệu hóa người dùng binh; 2 phiên đăng nhập đã kết thúc." in (await admin.get("/users")).text
    for client in (laptop, phone):
        refused = await client.get("/endpoints")
        assert refused.status_code == 303 and refused.headers["location"].startswith("/login")
    again = await sign_in(new_client(), "binh")
    assert again.status_code == 200 and "Tên đăng nhập hoặc mật khẩu không đúng." in again.text
    [entry] = await audit.recent(redis, action="user.disable")
    assert (entry.actor, entry.target, entry.details) == ("an", "binh", {"sessions": 2})

    assert (await post_form(admin, "/users", "/users/binh/enable")).status_code == 303
    assert (await sign_in(new_client(), "binh")).status_code == 303


async def test_an_admin_cannot_disable_itself(signed_in, post_form, redis):
    admin = await signed_in("admin", "an")
    response = await post_form(admin, "/users", "/users/an/disable")
    assert response.status_code == 303
    assert "Bạn không thể tự vô hiệu hóa tài khoản của mình." in (await admin.get("/users")).text
    assert not (await Users(redis).get("an")).disabled
    assert (await post_form(admin, "/users", "/users/nobody/disable")).status_code == 404
