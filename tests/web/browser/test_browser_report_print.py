"""The attendance report printed on A4 by Chromium: every column on the paper, the table's header on every page."""

from __future__ import annotations

import base64
import io
import unicodedata
from collections import Counter

import pypdf

from tests.web.ui.test_ui_reports import held_meeting
from vcs.divisions import communes

HANOI = tuple(c.code for c in communes() if c.province_code == "01")  # 126 rooms: the table runs over several pages
A4_MM = (210, 297)
MARGIN_MM = 12  # web/static/app.css: @page
LAST_HEADER = "Phát biểu (phút)"  # the rooms table's last column
PRINT_PT = 8  # the tables' print font size (app.css)


def _mm_to_pt(mm: float) -> float:
    return mm * 72 / 25.4


def _squashed(text: str) -> str:
    """The text without its spaces: the PDF's text runs break Vietnamese words around their accented letters."""
    return unicodedata.normalize("NFC", "".join(text.split()))


async def test_the_report_prints_on_a4_without_cutting_the_table(page, add_user, sign_in, redis, settings):
    meeting, occ = await held_meeting(redis, settings, HANOI)
    await add_user("tochuc", "organizer")
    await sign_in(page, "tochuc")
    await page.goto(f"/meetings/{meeting.id}/occurrences/{occ}/report")
    await page.wait_for_selector("#report-rooms")

    cdp = await page.context.new_cdp_session(page)
    printed = await cdp.send("Page.printToPDF", {"paperWidth": A4_MM[0] / 25.4, "paperHeight": A4_MM[1] / 25.4, "preferCSSPageSize": True})
    pdf = pypdf.PdfReader(io.BytesIO(base64.b64decode(printed["data"])))
    assert len(pdf.pages) >= 3, len(pdf.pages)
    right_edge = _mm_to_pt(A4_MM[0] - MARGIN_MM) + 1  # a point of rounding
    for number, sheet in enumerate(pdf.pages, 1):
        assert round(float(sheet.mediabox.width)) == round(_mm_to_pt(A4_MM[0])), sheet.mediabox
        runs: list[tuple[float, float, str]] = []  # (x, font size on the paper, text)

        def seen(text, cm, tm, font, size, runs=runs):
            if text.strip():
                runs.append((cm[4] + tm[4] * cm[0], size * tm[0] * cm[0], text))

        text = _squashed(sheet.extract_text(visitor_text=seen))
        # the rooms table's header is repeated on each page, its last column included, and nothing lies past the margin
        assert _squashed(LAST_HEADER) in text, (number, text[:300])
        beyond = [(x, t) for x, _, t in runs if x > right_edge]
        assert not beyond, (number, beyond[:5])
        # at the size the style sheet asks (8 pt), not shrunk by the browser to fit a table too wide for the paper
        commonest = Counter(round(size, 1) for _, size, _ in runs).most_common(1)[0][0]
        assert abs(commonest - PRINT_PT) < 0.5, (number, commonest)
    assert _squashed("Phường Hoàn Kiếm") in _squashed(pdf.pages[0].extract_text())

    # the same at A4's printable width in print media: the table's right edge within the page
    width = round((A4_MM[0] - 2 * MARGIN_MM) * 96 / 25.4)
    await page.emulate_media(media="print")
    await page.set_viewport_size({"width": width, "height": 1000})
    overflow = await page.evaluate(
        """() => ({
            page: document.documentElement.scrollWidth - document.documentElement.clientWidth,
            table: document.querySelector('#report-rooms').getBoundingClientRect().right - document.documentElement.clientWidth,
        })"""
    )
    assert overflow["page"] <= 0 and overflow["table"] <= 0, overflow
