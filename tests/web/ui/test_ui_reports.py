"""After a meeting, on its page: the attendance report (printable, CSV) and the recording, or why it stopped."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime, timedelta

import httpx

from scheduler.meeting import Meeting, ParticipantSelector, format_utc
from scheduler.store import MeetingStore
from vcs.recordings import RecordingLog, recording_path
from web.services import Services

COMMUNES = ("00070", "00073")


async def held_meeting(redis, settings, communes: tuple[str, ...] = COMMUNES) -> tuple[Meeting, str]:
    """A meeting that took place an hour ago, with the first commune present for a while."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    meeting = Meeting(id="mheld1", title="Hội nghị triển khai", organizer="admin", host_endpoint_id="central", start=start,
                      duration=timedelta(minutes=30), selector=ParticipantSelector("communes", commune_ids=communes), record=True)  # fmt: skip
    await MeetingStore(redis).create(meeting)
    svc = Services.build(settings, redis)
    occ = format_utc(start)
    at = start.timestamp() + 60
    await svc.live.report(meeting.id, occ, "00070", "joined", {"tier": "360p", "loss_pct": 2.5, "rtt_ms": 80}, at)
    for step in range(4):
        await svc.reports.sample(meeting, start, at + 60 * step)
    await svc.reports.finalize(meeting, start, datetime.now(UTC))
    return meeting, occ


async def test_the_report_page_prints_and_exports(signed_in, redis, settings):
    meeting, occ = await held_meeting(redis, settings)
    viewer = await signed_in("viewer")
    page = await viewer.get(f"/meetings/{meeting.id}/occurrences/{occ}/report")
    assert page.status_code == 200
    html = page.text
    assert "Báo cáo tham dự và chất lượng" in html and "Số liệu tạm thời" not in html  # the kept, final report
    row = html.split('id="room-00070"')[1].split("</tr>")[0]
    # three minutes between the samples, and the last one at the end counts at most a minute (scheduler.reports.MAX_GAP_S)
    assert '<td class="minutes">4.0</td>' in row and "360p: 4.0" in row and "2.5 %" in row and "80 ms" in row
    assert "vắng mặt" in html.split('id="room-00073"')[1].split("</tr>")[0]
    css = (await viewer.get("/static/app.css")).text
    assert "@media print" in css and "size: A4" in css
    exported = await viewer.get(f"/meetings/{meeting.id}/occurrences/{occ}/report.csv")
    rows = {r["endpoint_id"]: r for r in csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff")))}
    assert rows["00070"]["minutes_present"] == "4.0" and rows["00073"]["attended"] == "False"


async def test_the_meeting_page_shows_a_stopped_recording_and_serves_a_kept_one(signed_in, redis, settings):
    meeting, occ = await held_meeting(redis, settings)
    await RecordingLog(redis).write(meeting.id, occ, {"state": "failed", "reason": "disk full", "bytes": 5}, keep_s=3600)
    path = settings.recording_dir / recording_path(meeting.id, occ)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x1a\x45\xdf\xa3" + b"\0" * 100)
    organizer = await signed_in("organizer")
    html = (await organizer.get(f"/meetings/{meeting.id}")).text
    past = html.split('id="past-occurrences"')[1].split("</section>")[0]
    assert "Ghi hình đã dừng: disk full" in past and 'role="alert"' in past
    assert f"/meetings/{meeting.id}/occurrences/{occ}/report" in past and "Tải bản ghi hình" in past
    served = await organizer.get(f"/meetings/{meeting.id}/occurrences/{occ}/recording?download=1")
    assert served.status_code == 200 and served.headers["content-type"] == "video/webm" and served.content == path.read_bytes()
    assert "attachment" in served.headers["content-disposition"]
    ranged = await organizer.get(f"/meetings/{meeting.id}/occurrences/{occ}/recording", headers={"Range": "bytes=0-3"})
    assert ranged.status_code == 206 and ranged.content == b"\x1a\x45\xdf\xa3"  # a player seeks in it
    viewer = await signed_in("viewer", username="v2")
    assert (await viewer.get(f"/meetings/{meeting.id}/occurrences/{occ}/recording")).status_code == 403
    elsewhere = await signed_in("organizer", username="hcm", province="79")
    assert (await elsewhere.get(f"/meetings/{meeting.id}/occurrences/{occ}/report")).status_code == 403
    assert time.time() > meeting.start.timestamp()


async def test_a_province_organizer_reads_only_its_province_of_a_report(signed_in, redis, settings, mint_token, live_server):
    hcm_commune = "25747"  # province 79; the meeting calls two communes of Hà Nội (01) and one of it
    meeting, occ = await held_meeting(redis, settings, (*COMMUNES, hcm_commune))
    path = f"/meetings/{meeting.id}/occurrences/{occ}/report"
    hcm = await signed_in("organizer", username="hcm", province="79")
    html = (await hcm.get(path)).text
    assert 'id="room-25747"' in html and 'id="room-00070"' not in html and 'id="room-central"' not in html
    assert 'id="report-country"' not in html and 'id="report-scope"' in html
    provinces = html.split('id="report-provinces"')[1].split("</table>")[0]
    assert "Hồ Chí Minh" in provinces and "Hà Nội" not in provinces
    exported = (await hcm.get(f"{path}.csv")).text
    assert [r["endpoint_id"] for r in csv.DictReader(io.StringIO(exported.lstrip("\ufeff")))] == [hcm_commune]
    national = await signed_in("organizer", username="national")
    html = (await national.get(path)).text
    assert all(f'id="room-{e}"' in html for e in (*COMMUNES, hcm_commune, "central")) and 'id="report-country"' in html
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as api:
        scoped = await api.get(f"/api/v1{path}", headers=await mint_token("organizer", "79"))
        assert scoped.status_code == 200, scoped.text
        body = scoped.json()
        assert [r["endpoint_id"] for r in body["rooms"]] == [hcm_commune] and body["country"] is None and body["scope"] == "79"
        assert [p["code"] for p in body["provinces"]] == ["79"] and body["provinces"][0]["expected"] == 1
        full = (await api.get(f"/api/v1{path}", headers=await mint_token("organizer"))).json()
        assert full["country"]["expected"] == 3 and full["scope"] is None
        for other in (f"/api/v1{path}", f"/api/v1{path}.csv"):
            refused = await api.get(other, headers=await mint_token("organizer", "48"))  # Đà Nẵng: nothing of it in the meeting
            assert refused.status_code == 403, refused.text
    danang = await signed_in("organizer", username="dn", province="48")
    assert (await danang.get(path)).status_code == 403 and (await danang.get(f"{path}.csv")).status_code == 403
