"""The home page, the language switch and the display formats (the catalogue: test_catalogue.py)."""

import re
import time

from vcs.divisions import communes
from vcs.presence import Presence
from web.ui import formats


async def test_today_counts_communes_online_per_province(signed_in, redis):
    presence = Presence(redis, 30)
    hanoi = [c.code for c in communes() if c.province_code == "01"]
    now = time.time()
    for code in hanoi[:3]:
        await presence.heartbeat(code, now)
    await presence.heartbeat("hall-01", now)
    await presence.heartbeat(hanoi[3], now - 3600)  # stale: offline
    page = (await (await signed_in("viewer")).get("/")).text
    body = page.split('<table id="provinces">')[1].split("<tbody>")[1].split("</tbody>")[0]
    assert body.count("<tr>") == 34
    hanoi_row = body.split("</tr>")[0]
    assert "Thành phố Hà Nội" in hanoi_row
    assert re.findall(r'<td class="num">([^<]+)</td>', hanoi_row) == [str(len(hanoi)), "3", f"{3 / len(hanoi) * 100:.1f} %".replace(".", ",")]
    assert "Trực tuyến" in hanoi_row
    assert "3 / 3.321" in page and "Chưa có cuộc họp nào được lên lịch." in page
    assert "Cập nhật lúc" in page


async def test_the_english_switch_keeps_the_page(signed_in, post_form):
    client = await signed_in("admin", "an")
    back_to = "/endpoints?q=hoan+kiem&province=01"
    response = await post_form(client, back_to, "/lang", {"lang": "en", "next": back_to})
    assert response.status_code == 303 and response.headers["location"] == back_to
    cookie = response.headers["set-cookie"].lower()
    assert cookie.startswith("vcs_lang=en") and "httponly" in cookie and "samesite=lax" in cookie and "max-age=" in cookie
    page = (await client.get(back_to)).text
    assert '<html lang="en">' in page
    for text in ("Endpoints", "Sign out", "Today", "Meetings", "Audit log", "1 endpoints match", "Phường Hoàn Kiếm", "Government network (TSLCD)"):
        assert text in page, text
    assert "Đăng xuất" not in page
    assert "3,321" in (await client.get("/")).text
    await post_form(client, "/", "/lang", {"lang": "vi", "next": "/"})
    assert "Đăng xuất" in (await client.get("/")).text


async def test_visitors_can_switch_language_on_the_sign_in_page(new_client, csrf_of):
    client = new_client()
    token = csrf_of((await client.get("/login")).text)
    response = await client.post("/lang", data={"lang": "en", "next": "/login", "csrf": token})
    assert response.headers["location"] == "/login"
    page = (await client.get("/login")).text
    assert "Sign in" in page and "Username" in page and "Đăng nhập" not in page
    odd = await client.post("/lang", data={"lang": "fr", "next": "https://evil.example/", "csrf": token})
    assert odd.headers["location"] == "/" and "vcs_lang=vi" in odd.headers["set-cookie"]


def test_formats_are_vietnamese_dates_and_numbers():
    assert formats.format_datetime(1_751_328_000) == "01/07/2025 07:00"  # 1 July 2025, 00:00 UTC; Vietnam is UTC+7
    assert formats.format_datetime(1_767_225_599) == "01/01/2026 06:59"
    assert formats.format_datetime(None) == ""
    assert formats.format_datetime(1_751_328_000 + 59, seconds=True) == "01/07/2025 07:00:59"
    assert formats.format_int(3321, "vi") == "3.321" and formats.format_int(3321, "en") == "3,321"
    assert formats.format_decimal(1.5, "vi") == "1,5" and formats.format_decimal(0.0, "vi") == "0"
    assert formats.format_percent(0.9234, "vi") == "92,3 %" and formats.format_percent(0.9234, "en") == "92.3 %"
