"""Endpoint pages: filters and diacritics-free search, editing a profile, secrets, CSV import and export."""

import time
import unicodedata

from vcs import audit
from vcs.credentials import EndpointCredentials
from vcs.divisions import communes
from vcs.link_profiles import seed_profile
from vcs.presence import Presence
from vcs.registry import Registry

HOAN_KIEM = "00070"
VALID = {"access": "4g", "down_kbps": "9.000", "up_kbps": "2 500", "rtt_ms": "70", "loss_pct": "1,5"}


async def test_search_ignores_diacritics_and_filters_combine(signed_in, redis):
    viewer = await signed_in("viewer")
    page = (await viewer.get("/endpoints", params={"q": "hoan kiem"})).text
    assert "Phường Hoàn Kiếm" in page and "1 điểm cầu phù hợp" in page
    assert 'value="hoan kiem"' in page

    await Presence(redis, 30).heartbeat(HOAN_KIEM, time.time())
    online = (await viewer.get("/endpoints", params={"status": "online"})).text
    assert "1 điểm cầu phù hợp" in online and "Phường Hoàn Kiếm" in online
    assert '<option value="online" selected>' in online

    remote = next(c for c in communes() if seed_profile(c.code).access.value == "satellite")
    satellite = (await viewer.get("/endpoints", params={"access": "satellite", "province": remote.province_code})).text
    table = satellite.split('<table id="endpoints">')[1]
    assert remote.name in table and "Vệ tinh" in table and "Mạng TSLCD" not in table
    # values no form sends are ignored, not fatal
    assert (await viewer.get("/endpoints", params={"access": "pigeon", "status": "maybe", "page": "x"})).status_code == 200


async def test_pagination_walks_the_registry_in_order(signed_in):
    viewer = await signed_in("viewer")
    page = (await viewer.get("/endpoints", params={"kind": "commune", "page": "2"})).text
    assert "Trang 2/67" in page  # 3,321 communes, 50 a page
    assert "51–100 trên tổng số 3.321" in page
    first_row = page.split('<table id="endpoints">')[1].split("<tbody>")[1].split("</td>")[0]
    assert communes()[50].code in first_row
    assert 'href="/endpoints?kind=commune&amp;page=3"' in page and 'href="/endpoints?kind=commune&amp;page=1"' in page
    last = (await viewer.get("/endpoints", params={"kind": "commune", "page": "999"})).text
    assert "Trang 67/67" in last and 'rel="next"' not in last


async def test_an_invalid_profile_shows_errors_by_the_fields_and_keeps_the_input(signed_in, post_form, redis):
    ops = await signed_in("ops")
    page = f"/endpoints/{HOAN_KIEM}"
    before = (await Registry(redis).get(HOAN_KIEM)).link
    response = await post_form(ops, page, page, {**VALID, "down_kbps": "abc", "loss_pct": "150", "access": "pigeon"})
    assert response.status_code == 422
    html = response.text
    assert '<p class="field-error" id="err-down_kbps">phải là số nguyên</p>' in html
    assert '<p class="field-error" id="err-loss_pct">phải nằm trong khoảng từ 0.0 đến 100.0</p>' in html
    assert 'id="err-access"' in html and "phải là một trong: gov_fiber, internet_fiber, 4g, satellite" in html
    assert 'value="abc"' in html and 'value="150"' in html and 'value="2 500"' in html
    assert 'aria-describedby="err-down_kbps"' in html
    assert (await Registry(redis).get(HOAN_KIEM)).link == before


async def test_saving_a_profile_as_people_type_numbers(signed_in, post_form, redis):
    ops = await signed_in("ops", "vanhanh")
    page = f"/endpoints/{HOAN_KIEM}"
    response = await post_form(ops, page, page, VALID)
    assert response.status_code == 303 and response.headers["location"] == page
    assert "Đã lưu thông số đường truyền của Phường Hoàn Kiếm." in (await ops.get(page)).text
    link = (await Registry(redis).get(HOAN_KIEM)).link
    assert (link.access.value, link.down_kbps, link.up_kbps, link.rtt_ms, link.loss_pct) == ("4g", 9000, 2500, 70, 1.5)
    [entry] = await audit.recent(redis, action="endpoint.link_edit")
    assert entry.actor == "vanhanh" and entry.target == HOAN_KIEM
    assert entry.details["changes"]["down_kbps"] == [200000, 9000] and entry.details["via"] == "ui"
    again = await post_form(ops, page, page, VALID)
    assert again.status_code == 303 and "Không có thay đổi nào." in (await ops.get(page)).text
    assert len(await audit.recent(redis, action="endpoint.link_edit")) == 1


async def test_rotating_a_secret_needs_confirmation_and_shows_it_once(signed_in, post_form, redis):
    admin = await signed_in("admin", "an")
    page, action = f"/endpoints/{HOAN_KIEM}", f"/endpoints/{HOAN_KIEM}/secret"
    unconfirmed = await post_form(admin, page, action, {})
    assert unconfirmed.status_code == 422 and 'id="err-confirm"' in unconfirmed.text and "Hãy đánh dấu ô xác nhận." in unconfirmed.text
    assert not await EndpointCredentials(redis).has_secret(HOAN_KIEM)

    shown = await post_form(admin, page, action, {"confirm": "yes"})
    assert shown.status_code == 200 and shown.headers["cache-control"] == "no-store"
    assert "Mã bí mật này chỉ hiển thị một lần." in shown.text
    secret = shown.text.split('<div class="secret" id="secret">')[1].split("</div>")[0]
    assert await EndpointCredentials(redis).verify(HOAN_KIEM, secret)
    assert secret not in (await admin.get(page)).text and "đã cấp" in (await admin.get(page)).text
    [entry] = await audit.recent(redis, action="endpoint.secret_rotate")
    assert (entry.actor, entry.target) == ("an", HOAN_KIEM)


CSV_HEADER = "id,name,province_code,access,down_kbps,up_kbps,rtt_ms,loss_pct\n"


async def test_csv_import_reports_every_bad_line_and_changes_nothing(signed_in, csrf_of, redis):
    ops = await signed_in("ops")
    token = csrf_of((await ops.get("/endpoints/import")).text)
    bad = CSV_HEADER + (
        f"{HOAN_KIEM},Phường Hoàn Kiếm,01,4g,9000,2500,70,1.0\n"
        "99999,Nowhere,01,4g,9000,2500,70,1.0\n"
        "00004,Phường Ba Đình,01,4g,lots,2500,70,1.0\n"
        f"{HOAN_KIEM},again,01,4g,9000,2500,70,1.0\n"
    )
    before = (await Registry(redis).get(HOAN_KIEM)).link
    before_ba_dinh = (await Registry(redis).get("00004")).link
    response = await ops.post("/endpoints/import", data={"csrf": token}, files={"file": ("links.csv", bad.encode(), "text/csv")})
    assert response.status_code == 422
    html = response.text
    assert "3 lỗi; chưa có dữ liệu nào được nhập." in html
    assert '<td class="num">Dòng 3</td><td>không có điểm cầu mã &#39;99999&#39;</td>' in html
    assert '<td class="num">Dòng 4</td><td>down_kbps: phải là số nguyên</td>' in html
    assert '<td class="num">Dòng 5</td><td>điểm cầu 00070 xuất hiện hai lần</td>' in html
    assert (await Registry(redis).get(HOAN_KIEM)).link == before
    assert await audit.recent(redis, action="endpoint.csv_import") == []

    no_file = await ops.post("/endpoints/import", data={"csrf": token})
    assert no_file.status_code == 422 and 'id="err-file"' in no_file.text and "Hãy chọn một tệp CSV." in no_file.text
    unreadable = (CSV_HEADER + "00004,Ba Đình,01,4g,9000,2500,70,1.0\n").encode("utf-16-le")  # UTF-16 without its mark
    not_utf8 = await ops.post("/endpoints/import", data={"csrf": token}, files={"file": ("links.csv", unreadable, "text/csv")})
    assert not_utf8.status_code == 422 and "Tệp phải là văn bản UTF-8" in not_utf8.text
    assert (await Registry(redis).get("00004")).link == before_ba_dinh
    legacy = (CSV_HEADER + unicodedata.normalize("NFD", "00004,Ba Đình,01,4g,9000,2500,70,1.0\n")).encode("cp1258")  # a Vietnamese Windows export
    imported = await ops.post("/endpoints/import", data={"csrf": token}, files={"file": ("links.csv", legacy, "text/csv")})
    assert imported.status_code == 303, imported.text
    assert (await Registry(redis).get("00004")).link.down_kbps == 9000


async def test_csv_import_and_export_round_trip(signed_in, csrf_of, redis):
    ops = await signed_in("ops", "vanhanh")
    exported = await ops.get("/endpoints/export.csv", params={"province": "01", "kind": "commune"})
    assert exported.headers["content-type"].startswith("text/csv")
    assert exported.headers["content-disposition"] == 'attachment; filename="endpoints.csv"'
    lines = exported.text.strip().splitlines()
    assert len(lines) == 1 + sum(1 for c in communes() if c.province_code == "01")
    rows = [line.split(",") for line in lines[1:3]]
    edited = CSV_HEADER + "".join(f"{r[0]},{r[1]},{r[2]},satellite,2000,500,600,2.0\n" for r in rows)
    token = csrf_of((await ops.get("/endpoints/import")).text)
    response = await ops.post("/endpoints/import", data={"csrf": token}, files={"file": ("edited.csv", ("\ufeff" + edited).encode(), "text/csv")})
    assert response.status_code == 303 and response.headers["location"] == "/endpoints"
    assert "Đã nhập thông số đường truyền của 2 điểm cầu" in (await ops.get("/endpoints")).text
    for row in rows:
        assert (await Registry(redis).get(row[0])).link.access.value == "satellite"
    [entry] = await audit.recent(redis, action="endpoint.csv_import")
    assert entry.actor == "vanhanh" and entry.details == {"via": "ui", "rows": 2, "filename": "edited.csv"}


async def test_unknown_endpoint_is_a_404_page(signed_in):
    viewer = await signed_in("viewer")
    response = await viewer.get("/endpoints/99999")
    assert response.status_code == 404 and "Không tìm thấy" in response.text
    assert response.headers["content-type"].startswith("text/html")


async def test_the_it_contact_is_edited_in_the_same_form_with_the_apis_rules(signed_in, post_form, redis):
    ops = await signed_in("ops", "vanhanh")
    page = f"/endpoints/{HOAN_KIEM}"
    bad = await post_form(ops, page, page, {**VALID, "contact_name": "Lê Văn Cường", "contact_phone": "12345"})
    assert bad.status_code == 422
    assert 'id="err-contact_phone"' in bad.text and 'value="Lê Văn Cường"' in bad.text
    assert (await Registry(redis).get(HOAN_KIEM)).contact_phone == ""
    saved = await post_form(ops, page, page, {**VALID, "contact_name": "Lê Văn Cường", "contact_phone": "+84 912 345 678"})
    assert saved.status_code == 303
    endpoint = await Registry(redis).get(HOAN_KIEM)
    assert (endpoint.contact_name, endpoint.contact_phone) == ("Lê Văn Cường", "0912345678")  # stored from 0, as the API does
    assert 'value="0912345678"' in (await ops.get(page)).text
    [entry] = await audit.recent(redis, action="endpoint.contact_edit")
    assert entry.actor == "vanhanh" and entry.details == {"via": "ui", "name": "Lê Văn Cường", "phone": "0912345678"}
