"""Recording as a booking option: on by default for national meetings, refused where nothing can be recorded; kept for the retention."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx

from tests.conftest import TEST_SECRET
from vcs import keys
from vcs.config import Settings
from vcs.recordings import RecordingLog, purge_recordings, recording_path


def booking(selector: dict, days: int = 1, **extra) -> dict:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)
    return {"title": "Hội nghị", "start": start.isoformat(), "duration_minutes": 60, "selector": selector, **extra}


async def test_a_national_meeting_is_recorded_unless_asked_not_to(live_server, mint_token):
    headers = await mint_token("admin")
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30, headers=headers) as api:
        national = await api.post("/api/v1/meetings", json=booking({"kind": "all"}))
        assert national.status_code == 201, national.text
        assert national.json()["meeting"]["record"] is True
        quiet = await api.post("/api/v1/meetings/preview", json=booking({"kind": "all"}, record=False))
        assert quiet.status_code == 200, quiet.text
        some = await api.post("/api/v1/meetings", json=booking({"kind": "communes", "commune_ids": ["00070"]}, days=2))
        assert some.json()["meeting"]["record"] is False
        asked = await api.patch(f"/api/v1/meetings/{some.json()['meeting']['id']}", json={"record": True})
        assert asked.status_code == 200 and asked.json()["meeting"]["record"] is True
        wrong = await api.post("/api/v1/meetings", json=booking({"kind": "all"}, days=3, record="yes"))
        assert wrong.status_code == 422 and wrong.json()["fields"][0]["field"] == "record"


async def test_recording_where_it_is_off_or_unwritable_is_refused_at_booking(start_server, redis, settings, mint_token, tmp_path):
    headers = await mint_token("admin")
    read_only = tmp_path / "ro"
    read_only.mkdir()
    read_only.chmod(0o500)
    for recording, reason in (("off", "off on this deployment"), (str(read_only / "sub"), "cannot be created")):
        server = start_server(settings_changes={"recording": recording})
        async with httpx.AsyncClient(base_url=server.url, timeout=30, headers=headers) as api:
            refused = await api.post("/api/v1/meetings", json=booking({"kind": "all"}))
            if recording != "off" and refused.status_code == 201:
                continue  # root writes anywhere: only "off" can be checked here
            assert refused.status_code == 422, refused.text
            field = refused.json()["fields"][0]
            assert field["field"] == "record" and reason in field["reason"], field
            plain = await api.post("/api/v1/meetings/preview", json=booking({"kind": "all"}, record=False))
            assert plain.status_code == 200, plain.text


async def test_the_retention_job_deletes_old_recordings(redis, tmp_path):
    directory = tmp_path / "rec"
    log = RecordingLog(redis)
    now = time.time()
    for meeting_id, occurrence, age_days in (("m1", "2024-12-01T01:00:00Z", 400), ("m2", "2025-12-01T01:00:00Z", 10)):
        path = directory / recording_path(meeting_id, occurrence)
        path.parent.mkdir(parents=True)
        path.write_bytes(b"webm")
        path.with_suffix(".webm.json").write_text("{}")
        await log.write(meeting_id, occurrence, {"state": "done", "file": recording_path(meeting_id, occurrence)}, keep_s=3600)
        await redis.zadd(keys.RECORDINGS, {f"{meeting_id}/{occurrence}": now - age_days * 86400})
    assert await purge_recordings(redis, directory, now - 365 * 86400) == 1
    assert not (directory / "m1").exists() and (directory / recording_path("m2", "2025-12-01T01:00:00Z")).exists()
    assert await log.get("m1", "2024-12-01T01:00:00Z") == {} and (await log.get("m2", "2025-12-01T01:00:00Z"))["state"] == "done"


def test_the_recording_directory_defaults_under_the_data_dir(tmp_path):
    assert Settings.from_environ({"VCS_DATA_DIR": str(tmp_path)}).recording_dir == tmp_path / "recordings"
    assert Settings.from_environ({"VCS_RECORDING_DIR": "off"}).recording_dir is None
    assert Settings.from_environ({"VCS_RECORDING_DIR": "/srv/rec"}).recording_dir.as_posix() == "/srv/rec"
    assert Settings(secret_key=TEST_SECRET).retention_days == 365
