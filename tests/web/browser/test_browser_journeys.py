"""A person with a browser: sign in, find a commune without typing diacritics, edit its link, sign out; the English switch."""

from __future__ import annotations

from vcs.registry import Registry


async def test_sign_in_search_edit_and_sign_out(page, add_user, sign_in, redis):
    await add_user("vanhanh", "ops", full_name="Lê Minh Cường")
    await sign_in(page, "vanhanh")
    assert await page.text_content("h1") == "Hôm nay"
    assert "Lê Minh Cường" in await page.text_content(".who")

    await page.click("nav.mainnav >> text=Điểm cầu")
    await page.fill("#f-q", "hoan kiem")
    await page.click("form.filters button[type=submit]")
    await page.wait_for_url("**/endpoints?q=hoan+kiem*")
    rows = page.locator("#endpoints tbody tr")
    assert await rows.count() == 1
    await rows.first.locator("a").click()
    await page.wait_for_url("**/endpoints/00070")
    assert await page.text_content("h1") == "Phường Hoàn Kiếm"

    await page.fill("#f-down_kbps", "nhiều")
    await page.click("#link-form button[type=submit]")
    error = page.locator("#err-down_kbps")
    assert await error.text_content() == "phải là số nguyên"
    # the message sits with its field, and the field keeps what was typed
    assert await page.locator("#f-down_kbps").get_attribute("aria-describedby") == "err-down_kbps"
    assert await page.input_value("#f-down_kbps") == "nhiều"
    field_box, error_box = await page.locator("#f-down_kbps").bounding_box(), await error.bounding_box()
    assert 0 <= error_box["y"] - (field_box["y"] + field_box["height"]) < 30 and abs(error_box["x"] - field_box["x"]) < 5

    await page.fill("#f-down_kbps", "50.000")
    await page.click("#link-form button[type=submit]")
    assert "Đã lưu thông số đường truyền của Phường Hoàn Kiếm." in await page.text_content(".flash")
    assert (await Registry(redis).get("00070")).link.down_kbps == 50_000

    cookies = [c for c in await page.context.cookies() if c["name"] == "vcs_session"]
    assert cookies and cookies[0]["httpOnly"] and cookies[0]["sameSite"] == "Lax"
    await page.click("button.btn-signout")
    await page.wait_for_url("**/login")
    assert not [c for c in await page.context.cookies() if c["name"] == "vcs_session"]
    await page.context.add_cookies(cookies)  # the old cookie, put back
    await page.goto("/endpoints")
    assert page.url.endswith("/login?next=%2Fendpoints")
    assert await page.text_content("h1") == "Đăng nhập"


async def test_the_english_switch_stays_on_the_page(page, add_user, sign_in):
    await add_user("theodoi", "viewer")
    await sign_in(page, "theodoi")
    await page.goto("/endpoints?province=01&status=offline")
    assert await page.text_content("h1") == "Điểm cầu"
    await page.click("form.lang-switch button[value=en]")
    await page.wait_for_url("**/endpoints?province=01&status=offline")
    assert await page.text_content("h1") == "Endpoints"
    assert await page.get_attribute("html", "lang") == "en"
    assert await page.text_content("button.btn-signout") == "Sign out"
    assert await page.input_value("#f-province") == "01"
    await page.click("form.lang-switch button[value=vi]")
    await page.wait_for_url("**/endpoints?province=01&status=offline")
    assert await page.text_content("button.btn-signout") == "Đăng xuất"
