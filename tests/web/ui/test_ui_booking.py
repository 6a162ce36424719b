"""Booking through the form, without JavaScript: search, preview, save, errors next to their fields, conflicts, scope."""

import re
from datetime import timedelta
from html import unescape

from scheduler.store import MeetingStore
from tests.web.ui.slots import local_slot
from vcs import audit
from vcs.divisions import communes

HANOI, HAIPHONG = "01", "31"
TWO_PROVINCES = sum(1 for c in communes() if c.province_code in (HANOI, HAIPHONG))
HAIPHONG_COMMUNE = next(c for c in communes() if c.province_code == HAIPHONG)


def form(**overrides) -> dict:
    slot = local_slot(days=2, hour=8)
    data = {
        "title": "Hội nghị triển khai nhiệm vụ",
        "date": slot.date().isoformat(),
        "time": "08:00",
        "duration": "90",
        "who": "provinces",
        "province": [HANOI, HAIPHONG],
        "repeat": "none",
        "host": "central",
        "max_tier": "720p",
        "action": "preview",
    }
    return {**data, **overrides}


def field_error(html: str, slot: str) -> str | None:
    found = re.search(rf'<p class="field-error" id="err-{slot}">([^<]*)</p>', html)
    return unescape(found.group(1)) if found else None


async def stored(redis) -> list:
    return list((await MeetingStore(redis).all()).values())


async def test_preview_then_book_for_two_provinces(signed_in, post_form, redis):
    organizer = await signed_in("organizer", "binh")
    page = await organizer.get("/meetings/new")
    assert page.status_code == 200 and 'name="csrf"' in page.text
    assert 'id="who-all"' in page.text and page.text.count('name="province"') == 34

    preview = await post_form(organizer, "/meetings/new", "/meetings/new", form())
    assert preview.status_code == 200, preview.text
    html = preview.text
    assert f'<div class="stat-value" id="preview-participants">{TWO_PROVINCES:,}</div>'.replace(",", ".") in html
    assert 'id="no-conflicts"' in html and "Không trùng với cuộc họp nào." in html
    trunks = html.split('id="trunks"')[1].split("</table>")[0]
    assert "Thành phố Hà Nội" in trunks and "Thành phố Hải Phòng" in trunks and trunks.count("<tr") == 3
    assert "720p (HD)" in html.split('id="tier-distribution"')[1].split("</table>")[0]
    # what was typed is kept, and nothing is saved by a preview
    assert 'value="Hội nghị triển khai nhiệm vụ"' in html and html.count("checked") >= 3
    assert await stored(redis) == []

    saved = await post_form(organizer, "/meetings/new", "/meetings/new", form(action="save"))
    assert saved.status_code == 303, saved.text
    [meeting] = await stored(redis)
    assert saved.headers["location"] == f"/meetings/{meeting.id}"
    assert meeting.selector.kind == "provinces" and meeting.selector.province_codes == (1, 31)
    assert meeting.start == local_slot(days=2, hour=8) and meeting.recurrence is None and meeting.organizer == "binh"
    detail = (await organizer.get(saved.headers["location"])).text
    assert f"Đã đặt lịch cuộc họp Hội nghị triển khai nhiệm vụ cho {TWO_PROVINCES} xã, phường." in detail
    assert local_slot(days=2, hour=8).strftime("%d/%m/%Y 08:00") in detail
    [entry] = await audit.recent(redis, action="meeting.book")
    assert entry.actor == "binh" and entry.target == meeting.id and entry.details["participants"] == TWO_PROVINCES


async def test_errors_sit_next_to_their_fields_with_the_input_kept(signed_in, post_form, redis):
    organizer = await signed_in("organizer", "binh")
    bad = form(title="", date="31/02/2026", duration="nhiều", repeat="weekly", ends="count", count="x", province=[])
    response = await post_form(organizer, "/meetings/new", "/meetings/new", bad)
    assert response.status_code == 422
    html = response.text
    assert field_error(html, "title") == "không được để trống"
    assert field_error(html, "start") == "hãy nhập ngày theo dạng dd/mm/yyyy"
    assert field_error(html, "duration") == "phải là số nguyên"
    assert field_error(html, "count") == "phải là số nguyên"
    assert field_error(html, "participants") == "hãy chọn ít nhất một tỉnh, thành phố"
    assert 'value="31/02/2026"' in html and 'value="nhiều"' in html and 'id="repeat-weekly" checked' in html
    assert 'aria-describedby="err-title"' in html and "Vui lòng sửa các mục được đánh dấu bên dưới." in html

    past = await post_form(organizer, "/meetings/new", "/meetings/new", form(date=local_slot(days=-1).strftime("%d/%m/%Y"), duration="2"))
    assert field_error(past.text, "start") == "phải là thời điểm trong tương lai"
    assert field_error(past.text, "duration") == "phải từ 5 phút đến 12 giờ"
    # a Tuesday start on a Monday-only weekly rule
    tuesday = local_slot(days=8 + (1 - local_slot(days=8).weekday()) % 7)
    rule = form(date=tuesday.date().isoformat(), repeat="weekly", weekday=["MO"], ends="count", count="4")
    assert field_error((await post_form(organizer, "/meetings/new", "/meetings/new", rule)).text, "repeat").startswith("ngày bắt đầu không thuộc lịch lặp")
    assert await stored(redis) == []


async def test_the_recurrence_fields_become_an_rrule(signed_in, post_form, redis):
    organizer = await signed_in("organizer", "binh")
    monday = local_slot(days=7 + (0 - local_slot(days=7).weekday()) % 7, hour=14, minute=30)
    data = form(date=monday.strftime("%d/%m/%Y"), time="14:30", repeat="weekly", weekday=["MO", "WE"], ends="count", count="6", action="save")
    assert (await post_form(organizer, "/meetings/new", "/meetings/new", data)).status_code == 303
    until = monday.date().replace(day=1).replace(year=monday.year + 1)
    monthly = form(date=monday.date().isoformat(), time="07:00", repeat="monthly", interval="2", ends="until", until=until.isoformat(), province=[HANOI], action="save")
    monthly["title"] = "Sơ kết hai tháng"
    assert (await post_form(organizer, "/meetings/new", "/meetings/new", monthly)).status_code == 303
    rules = {m.title: m.recurrence.to_rrule() for m in await stored(redis)}
    assert rules["Hội nghị triển khai nhiệm vụ"] == "FREQ=WEEKLY;COUNT=6;BYDAY=MO,WE"
    assert rules["Sơ kết hai tháng"].startswith("FREQ=MONTHLY;INTERVAL=2;UNTIL=")
    weekly = next(m for m in await stored(redis) if m.title == "Hội nghị triển khai nhiệm vụ")
    assert weekly.start == monday
    # the edit form reads the rule back into the same fields
    edit = (await organizer.get(f"/meetings/{weekly.id}/edit")).text
    assert 'id="repeat-weekly" checked' in edit and 'value="MO" checked' in edit and 'value="WE" checked' in edit and 'value="TU" checked' not in edit
    assert 'id="f-count" name="count" type="number" min="1" max="1000" value="6"' in edit and 'value="14:30"' in edit
    detail = (await organizer.get(f"/meetings/{weekly.id}")).text
    assert "Hằng tuần vào Thứ Hai, Thứ Tư; 6 lần" in detail


async def test_commune_search_keeps_the_form_and_ignores_diacritics(signed_in, post_form, redis):
    organizer = await signed_in("organizer", "binh")
    data = form(who="communes", province=[], q="hoan kiem", action="search", title="Họp các phường trung tâm")
    response = await post_form(organizer, "/meetings/new", "/meetings/new", data)
    assert response.status_code == 200
    results = response.text.split('id="search-results"')[1].split("</div>")[0]
    assert 'value="00070"' in results and "Phường Hoàn Kiếm" in results
    assert 'value="Họp các phường trung tâm"' in response.text and 'value="hoan kiem"' in response.text
    # ticked, then searched again: the first one stays selected
    ticked = form(who="communes", province=[], commune=["00070"], q="ba dinh", action="search")
    again = (await post_form(organizer, "/meetings/new", "/meetings/new", ticked)).text
    assert 'value="00070" checked' in again.split('id="selected-communes"')[1].split("</div>")[0]
    assert "Phường Ba Đình" in again.split('id="search-results"')[1].split("</div>")[0]
    # the same search as a GET query string
    linked = (await organizer.get("/meetings/new", params={"who": "communes", "q": "Hoàn Kiếm"})).text
    assert "Phường Hoàn Kiếm" in linked.split('id="search-results"')[1]
    saved = await post_form(organizer, "/meetings/new", "/meetings/new", {**ticked, "action": "save", "q": ""})
    assert saved.status_code == 303
    [meeting] = await stored(redis)
    assert meeting.selector.kind == "communes" and meeting.selector.commune_ids == ("00070",)


async def test_overlaps_are_shown_and_only_an_admin_books_over_them(signed_in, post_form, book, redis):
    first = await book(title="Giao ban Hà Nội", start=local_slot(days=2, hour=8), selector={"kind": "provinces", "province_codes": [HANOI]})
    organizer = await signed_in("organizer", "binh")
    overlapping = form(time="09:00", who="communes", province=[], commune=["00070", "00004"])
    preview = (await post_form(organizer, "/meetings/new", "/meetings/new", overlapping)).text
    warning = preview.split('id="conflict-warning"')[1].split("</table>")[0]
    assert "Phường Hoàn Kiếm" in warning and "Giao ban Hà Nội" in warning and f'href="/meetings/{first.id}"' in warning
    assert 'id="f-override"' not in preview and "nhờ quản trị viên" in preview

    refused = await post_form(organizer, "/meetings/new", "/meetings/new", {**overlapping, "action": "save", "override": "yes"})
    assert refused.status_code == 409 and 'id="form-notice"' in refused.text and 'id="conflict-warning"' in refused.text
    assert [m.id for m in await stored(redis)] == [first.id]

    admin = await signed_in("admin", "an")
    offered = (await post_form(admin, "/meetings/new", "/meetings/new", overlapping)).text
    assert 'id="f-override"' in offered
    forced = await post_form(admin, "/meetings/new", "/meetings/new", {**overlapping, "action": "save", "override": "yes"})
    assert forced.status_code == 303
    second = next(m for m in await stored(redis) if m.id != first.id)
    assert second.override_conflicts is True
    [entry] = await audit.recent(redis, action="meeting.book")
    assert entry.actor == "an" and entry.details["override_conflicts"]["conflicts"] >= 3  # two communes and the central host


async def test_a_province_organizer_sees_and_books_only_its_province(signed_in, post_form, book, redis):
    hanoi = await signed_in("organizer", "hanoi", province=HANOI)
    page = (await hanoi.get("/meetings/new")).text
    assert page.count('name="province"') == 1 and f'value="{HANOI}"' in page and f'value="{HAIPHONG}"' not in page
    assert 'id="who-all"' not in page and '<option value="hall-01"' in page and '<option value="central"' not in page
    search = (await post_form(hanoi, "/meetings/new", "/meetings/new", form(who="communes", q="xa", action="search"))).text
    results = search.split('id="search-results"')[1].split("</div>")[0]
    assert "Hà Nội" in results and "Hải Phòng" not in results
    # forged: another province, a commune elsewhere, everyone, the central host
    for forged in (
        form(province=[HAIPHONG], host="hall-01"),
        form(who="communes", province=[], commune=[HAIPHONG_COMMUNE.code], host="hall-01"),
        form(who="all", host="hall-01"),
        form(province=[HANOI], host="central"),
    ):
        assert (await post_form(hanoi, "/meetings/new", "/meetings/new", forged)).status_code == 403
    own = await post_form(hanoi, "/meetings/new", "/meetings/new", form(province=[HANOI], host="hall-01", action="save"))
    assert own.status_code == 303

    national = await book(title="Hội nghị toàn quốc", start=local_slot(days=5), selector={"kind": "all"})
    elsewhere = await book(title="Giao ban Hải Phòng", start=local_slot(days=6), selector={"kind": "provinces", "province_codes": [HAIPHONG]})
    detail = await hanoi.get(f"/meetings/{national.id}")
    assert detail.status_code == 200 and 'id="edit-link"' not in detail.text and 'id="cancel-series-link"' not in detail.text
    assert (await hanoi.get(f"/meetings/{national.id}/edit")).status_code == 403
    assert (await post_form(hanoi, "/", f"/meetings/{national.id}/cancel", {"scope": "series"})).status_code == 403
    live = (await hanoi.get(f"/meetings/{national.id}/live")).text
    assert 'id="floor-form"' not in live and "/floor" not in live and "Bàn điều khiển chủ trì" not in live
    assert (await hanoi.get(f"/meetings/{elsewhere.id}")).status_code == 403
    assert (await hanoi.get(f"/meetings/{elsewhere.id}.ics")).status_code == 403
    listed = (await hanoi.get("/meetings?view=list")).text
    assert "Hội nghị toàn quốc" in listed and "Giao ban Hải Phòng" not in listed


async def test_viewers_and_ops_book_nothing(signed_in, post_form, book):
    meeting = await book()
    for role in ("viewer", "ops"):
        client = await signed_in(role)
        assert 'id="book-link"' not in (await client.get("/meetings")).text
        for path in ("/meetings/new", f"/meetings/{meeting.id}/edit", f"/meetings/{meeting.id}/cancel", f"/meetings/{meeting.id}/host"):
            assert (await client.get(path)).status_code == 403, (role, path)
        for action in ("/meetings/new", f"/meetings/{meeting.id}/edit", f"/meetings/{meeting.id}/cancel", f"/meetings/{meeting.id}/floor"):
            response = await post_form(client, "/", action, form(action="save"))
            assert response.status_code == 403 and "Bạn không có quyền truy cập trang này." in response.text, (role, action)
        detail = (await client.get(f"/meetings/{meeting.id}")).text
        assert 'id="edit-link"' not in detail and "Tải tệp lịch (.ics)" in detail


async def test_edit_changes_the_meeting_and_is_audited(signed_in, post_form, book, redis):
    meeting = await book(title="Giao ban tuần", start=local_slot(days=3, hour=8), recurrence="FREQ=WEEKLY;COUNT=4")
    organizer = await signed_in("organizer", "binh")
    page = (await organizer.get(f"/meetings/{meeting.id}/edit")).text
    assert 'value="Giao ban tuần"' in page and f'value="{local_slot(days=3).date().isoformat()}"' in page
    changed = form(title="Giao ban tuần (đổi giờ)", date=local_slot(days=3).date().isoformat(), time="09:30", province=[HANOI], repeat="weekly", ends="count", count="4", action="save")
    response = await post_form(organizer, f"/meetings/{meeting.id}/edit", f"/meetings/{meeting.id}/edit", changed)
    assert response.status_code == 303 and response.headers["location"] == f"/meetings/{meeting.id}"
    [after] = await stored(redis)
    assert after.title == "Giao ban tuần (đổi giờ)" and after.start == local_slot(days=3, hour=9, minute=30)
    assert after.recurrence.to_rrule() == "FREQ=WEEKLY;COUNT=4;BYDAY=" + ("MO", "TU", "WE", "TH", "FR", "SA", "SU")[local_slot(days=3).weekday()]
    [entry] = await audit.recent(redis, action="meeting.change")
    assert entry.actor == "binh" and set(entry.details["changes"]) >= {"title", "start"}
    assert "Đã lưu cuộc họp Giao ban tuần (đổi giờ)." in (await organizer.get(f"/meetings/{meeting.id}")).text


async def test_cancel_one_occurrence_then_the_series(signed_in, post_form, book, redis):
    meeting = await book(title="Giao ban tuần", start=local_slot(days=1, hour=8), recurrence="FREQ=WEEKLY;COUNT=3")
    organizer = await signed_in("organizer", "binh")
    detail = (await organizer.get(f"/meetings/{meeting.id}")).text
    links = re.findall(r'href="(/meetings/[^"]+/cancel\?occurrence=[^"]+)"', detail)
    assert len(links) == 3
    confirm = await organizer.get(unescape(links[1]))
    assert confirm.status_code == 200 and "Hủy một buổi họp" in confirm.text and "Các buổi khác giữ nguyên." in confirm.text
    second = meeting.occurrences()[1]
    done = await post_form(organizer, unescape(links[1]), f"/meetings/{meeting.id}/cancel", {"scope": "occurrence", "occurrence": second.isoformat()})
    assert done.status_code == 303
    [after] = await stored(redis)
    assert after.cancelled == frozenset({second}) and len(after.occurrences()) == 2
    page = (await organizer.get(f"/meetings/{meeting.id}")).text
    assert "Đã hủy buổi họp lúc " in page and page.count('class="badge status-cancelled"') == 1

    series = await organizer.get(f"/meetings/{meeting.id}/cancel")
    assert "Tất cả các buổi còn lại của “Giao ban tuần” sẽ bị hủy (2 buổi)." in unescape(series.text)
    assert (await post_form(organizer, f"/meetings/{meeting.id}/cancel", f"/meetings/{meeting.id}/cancel", {"scope": "series"})).status_code == 303
    [after] = await stored(redis)
    assert after.is_cancelled and after.occurrences() == []
    assert "Đã hủy cuộc họp Giao ban tuần." in (await organizer.get(f"/meetings/{meeting.id}")).text
    scopes = sorted(e.details["scope"] for e in await audit.recent(redis, action="meeting.cancel"))
    assert scopes == ["occurrence", "series"]
    # a start that is not an occurrence of the series
    assert (await organizer.get(f"/meetings/{meeting.id}/cancel?occurrence=2030-01-01T00:00:00Z")).status_code == 404


async def test_the_calendar_file_downloads(signed_in, book):
    meeting = await book(title="Giao ban tuần", start=local_slot(days=1, hour=8), recurrence="FREQ=WEEKLY;COUNT=3")
    viewer = await signed_in("viewer")
    response = await viewer.get(f"/meetings/{meeting.id}.ics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/calendar")
    assert response.headers["content-disposition"] == f'attachment; filename="{meeting.id}.ics"'
    assert "RRULE:FREQ=WEEKLY;COUNT=3" in response.text and "SUMMARY:Giao ban tuần" in response.text
    assert (await viewer.get("/meetings/no-such-meeting.ics")).status_code == 404


async def test_what_people_type_is_never_rendered_as_markup(signed_in, post_form, book):
    title = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    meeting = await book(title=title, start=local_slot(days=1, hour=8))
    viewer = await signed_in("viewer")
    pages = [
        (await viewer.get(f"/meetings/{meeting.id}")).text,
        (await viewer.get("/meetings?view=list")).text,
        (await viewer.get(f"/meetings?view=week&week={local_slot(days=1).date().isoformat()}")).text,
        (await viewer.get("/")).text,
    ]
    organizer = await signed_in("organizer", "binh")
    pages.append((await post_form(organizer, "/meetings/new", "/meetings/new", form(title=title, q='"><svg onload=alert(1)>', action="search"))).text)
    pages.append((await organizer.get("/meetings/new", params={"q": "<b>bold</b>"})).text)
    for html in pages:
        assert "<script>alert" not in html and "<img src=x" not in html and "<svg onload" not in html and "<b>bold" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in pages[0]


async def test_forms_need_the_csrf_token(signed_in, csrf_of, book, redis):
    meeting = await book()
    admin = await signed_in("admin", "an")
    other = csrf_of((await (await signed_in("organizer", "binh")).get("/")).text)
    for path, data in [
        ("/meetings/new", form(action="save")),
        (f"/meetings/{meeting.id}/edit", form(action="save")),
        (f"/meetings/{meeting.id}/cancel", {"scope": "series"}),
        (f"/meetings/{meeting.id}/floor", {"endpoint_id": "00070"}),
        (f"/meetings/{meeting.id}/floor/take", {}),
        (f"/meetings/{meeting.id}/host/session", {}),
    ]:
        for token in (None, "forged", other):
            sent = data if token is None else {**data, "csrf": token}
            response = await admin.post(path, data=sent)
            assert response.status_code == 403 and "Biểu mẫu đã hết hạn" in response.text, (path, token)
    [still] = await stored(redis)
    assert still == meeting


async def test_meeting_pages_carry_no_inline_script_or_style(signed_in, book):
    meeting = await book()
    admin = await signed_in("admin", "an")
    for path in ("/meetings", "/meetings?view=list", "/meetings/new", f"/meetings/{meeting.id}", f"/meetings/{meeting.id}/edit",
                 f"/meetings/{meeting.id}/cancel", f"/meetings/{meeting.id}/live", f"/meetings/{meeting.id}/host"):
        response = await admin.get(path)
        assert response.status_code == 200, path
        scripts = re.findall(r"<script[^>]*>", response.text)
        # only the app's own files run; a JSON data block is inert (the browser never executes it)
        runs = [s for s in scripts if not re.fullmatch(r'<script type="application/json" id="[a-z-]+">', s)]
        assert all(re.fullmatch(r'<script src="/static/[a-z_]+\.js" defer>', s) for s in runs), (path, scripts)
        assert " style=" not in response.text and "<style" not in response.text, path
        assert response.headers["cache-control"] == "no-store" and "script-src 'self'" in response.headers["content-security-policy"]


async def test_the_week_the_list_and_the_home_page(signed_in, book):
    start = local_slot(days=9, hour=9, minute=15)
    meeting = await book(title="Giao ban quý", start=start, minutes=45, recurrence="FREQ=DAILY;COUNT=2")
    viewer = await signed_in("viewer")
    week = (await viewer.get("/meetings", params={"week": start.date().strftime("%d/%m/%Y")})).text
    monday = start.date() - timedelta(days=start.weekday())
    assert f"Tuần từ {monday:%d/%m/%Y} đến {monday + timedelta(days=6):%d/%m/%Y}" in week
    days = week.split('<section class="day')[1:]
    assert len(days) == 7 and "Giao ban quý" in days[start.weekday()] and "09:15–10:00" in days[start.weekday()]
    assert f'href="/meetings?view=week&amp;week={monday - timedelta(days=7)}"' in week
    assert f'href="/meetings?view=week&amp;week={monday + timedelta(days=7)}"' in week
    today = local_slot(days=0).date()
    this_week = (await viewer.get("/meetings", params={"week": "garbage"})).text
    assert f"Tuần từ {today - timedelta(days=today.weekday()):%d/%m/%Y}" in this_week
    listed = (await viewer.get("/meetings", params={"view": "list", "from": start.date().isoformat()})).text
    assert listed.count(f'href="/meetings/{meeting.id}"') == 2
    home = (await viewer.get("/")).text.split('id="meetings"')[1].split("</section>")[0]
    assert "Chưa có cuộc họp nào" in home  # nine days ahead: beyond the home page's week
    soon = await book(title="Họp sáng mai", start=local_slot(days=1, hour=7))
    home = (await viewer.get("/")).text.split('id="meetings"')[1].split("</section>")[0]
    assert f'href="/meetings/{soon.id}">Họp sáng mai</a>' in home and "Sắp diễn ra" in home
