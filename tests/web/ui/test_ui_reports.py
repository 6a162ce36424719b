"""After a meeting, on its page: the attendance report (printable, CSV) and the recording, or why it stopped."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime, timedelta

from scheduler.meeting import Meeting, ParticipantSelector, format_utc
from scheduler.store import MeetingStore
from vcs.recordings import RecordingLog, recording_path
from web.services import Services

COMMUNES = ("00070", "00073")


async def held_meeting(redis, settings) -> tuple[Meeting, str]:
    """A meeting that took place an hour ago, with one commune present for a while."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    meeting = Meeting(id="mheld1", title="Hội nghị triển khai", organizer="admin", host_endpoint_id="central", start=start,
                      duration=timedelta(minutes=30), selector=ParticipantSelector("communes", commune_ids=COMMUNES), record=True)  # fmt: skip
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
