"""Every page and action checks the role (and an organizer's province), as the API does."""

from vcs.divisions import communes

HANOI_COMMUNE = "00070"
OTHER = next(c for c in communes() if c.province_code != "01")
LINK = {"access": "4g", "down_kbps": "9000", "up_kbps": "2500", "rtt_ms": "70", "loss_pct": "1"}
DENIED = "Bạn không có quyền truy cập trang này."

# path => the roles that may open it (GET)
PAGES = {
    "/": {"admin", "ops", "organizer", "viewer"},
    "/meetings": {"admin", "ops", "organizer", "viewer"},
    "/endpoints": {"admin", "ops", "organizer", "viewer"},
    "/endpoints/export.csv": {"admin", "ops", "organizer", "viewer"},
    f"/endpoints/{HANOI_COMMUNE}": {"admin", "ops", "organizer", "viewer"},
    "/endpoints/import": {"admin", "ops"},
    "/users": {"admin"},
    "/audit": {"admin", "ops"},
}
# (page the form is on, action, data) => the roles that may post it
ACTIONS = [
    (f"/endpoints/{HANOI_COMMUNE}", f"/endpoints/{HANOI_COMMUNE}", LINK, {"admin", "ops"}),
    (f"/endpoints/{HANOI_COMMUNE}", f"/endpoints/{HANOI_COMMUNE}/secret", {"confirm": "no"}, {"admin", "ops"}),
    ("/", "/users", {"username": "x"}, {"admin"}),
    ("/", "/users/someone/disable", {}, {"admin"}),
]


async def test_each_role_opens_only_its_pages(signed_in):
    for role in ("admin", "ops", "organizer", "viewer"):
        client = await signed_in(role)
        for path, allowed in PAGES.items():
            response = await client.get(path)
            if role in allowed:
                assert response.status_code == 200, (role, path)
            else:
                assert response.status_code == 403, (role, path)
                assert DENIED in response.text and "Không có quyền truy cập" in response.text


async def test_each_role_posts_only_its_actions(signed_in, post_form):
    for role in ("ops", "organizer", "viewer"):
        client = await signed_in(role)
        for page, action, data, allowed in ACTIONS:
            response = await post_form(client, page, action, data)
            if role in allowed:
                assert response.status_code != 403, (role, action)
            else:
                assert response.status_code == 403 and DENIED in response.text, (role, action)


async def test_the_menu_shows_only_what_the_role_may_open(signed_in):
    admin = (await (await signed_in("admin")).get("/")).text
    viewer = (await (await signed_in("viewer")).get("/")).text
    for link in ('href="/users"', 'href="/audit"', 'href="/endpoints"', 'href="/meetings"'):
        assert link in admin
    assert 'href="/users"' not in viewer and 'href="/audit"' not in viewer
    assert 'href="/endpoints"' in viewer and 'href="/meetings"' in viewer
    assert "Cuộc họp" in viewer and "Điểm cầu" in viewer and "Hôm nay" in viewer


async def test_viewers_see_the_link_profile_but_no_edit_form(signed_in):
    page = (await (await signed_in("viewer")).get(f"/endpoints/{HANOI_COMMUNE}")).text
    assert 'id="link-form"' not in page and 'id="rotate-form"' not in page and "Nhập CSV" not in page
    assert "Thông số đường truyền" in page


async def test_a_province_organizer_reaches_only_its_province(signed_in):
    client = await signed_in("organizer", "hanoi", province="01")
    assert (await client.get(f"/endpoints/{HANOI_COMMUNE}")).status_code == 200
    assert (await client.get("/endpoints/central")).status_code == 200
    assert (await client.get(f"/endpoints/{OTHER.code}")).status_code == 403
    listed = (await client.get(f"/endpoints?province={OTHER.province_code}&per_page=500")).text
    assert OTHER.name not in listed or OTHER.name in {c.name for c in communes() if c.province_code == "01"}
    hanoi = sum(1 for c in communes() if c.province_code == "01") + 1  # and its hall
    assert f"{hanoi} điểm cầu phù hợp" in listed
    today = (await client.get("/")).text
    assert today.count('href="/endpoints?province=') == 1
    export = (await client.get("/endpoints/export.csv")).text
    assert len(export.strip().splitlines()) == 1 + hanoi
