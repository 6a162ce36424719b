"""The drills page and the boards in the UI: who may start and re-run what, scope, CSV, no agents needed."""

from vcs import audit
from vcs.registry import Registry

HANOI, HAI_PHONG = "01", "31"


async def test_a_province_organizer_starts_only_its_own_drills_and_sees_only_them(signed_in, post_form, redis):
    hanoi = await signed_in("organizer", "tochuc-hn", HANOI)
    drills = (await hanoi.get("/drills")).text
    assert 'value="all"' not in drills and f'value="{HAI_PHONG}"' not in drills and f'value="{HANOI}"' in drills
    refused = await post_form(hanoi, "/drills", "/drills", {"province": HAI_PHONG})
    assert refused.status_code == 403
    national = await post_form(hanoi, "/drills", "/drills", {"province": "all"})
    assert national.status_code == 403
    started = await post_form(hanoi, "/drills", "/drills", {"province": HANOI})
    assert started.status_code == 303 and started.headers["location"].startswith("/drills/")
    own = started.headers["location"]
    board = (await hanoi.get(own)).text
    assert "Đã bắt đầu diễn tập" in board and 'id="rerun-all"' in board
    assert board.count('data-status="not_tested"') == len([e for e in (await Registry(redis).all()).values()
                                                          if e.kind.value == "commune" and e.province_code == HANOI])  # fmt: skip
    [entry] = await audit.recent(redis, action="drill.start")
    assert entry.actor == "tochuc-hn" and entry.details["province"] == HANOI and entry.details["via"] == "ui"

    admin = await signed_in("admin", "quantri")
    other = (await post_form(admin, "/drills", "/drills", {"province": HAI_PHONG})).headers["location"]
    assert (await hanoi.get(other)).status_code == 403
    listed = (await hanoi.get("/drills")).text
    assert own.removeprefix("/drills/") in listed and other.removeprefix("/drills/") not in listed

    exported = await hanoi.get(own + ".csv")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert exported.text.splitlines()[0].startswith("endpoint_id,name,province_code")


async def test_a_viewer_reads_boards_but_starts_and_reruns_nothing(signed_in, post_form, redis):
    admin = await signed_in("admin", "quantri")
    drill = (await post_form(admin, "/drills", "/drills", {"province": HANOI})).headers["location"]
    viewer = await signed_in("viewer", "xem")
    page = (await viewer.get(drill)).text
    assert 'id="rerun-all"' not in page and "drill-start-button" not in (await viewer.get("/drills")).text
    assert (await post_form(viewer, drill, drill + "/run", {"scope": "all"})).status_code == 403
    assert (await post_form(viewer, "/drills", "/drills", {"province": HANOI})).status_code == 403


async def test_a_rerun_of_a_room_not_on_the_board_is_refused_with_a_message(signed_in, post_form, redis):
    admin = await signed_in("admin", "quantri")
    drill = (await post_form(admin, "/drills", "/drills", {"province": HANOI})).headers["location"]
    outside = next(e.id for e in (await Registry(redis).all()).values() if e.province_code == HAI_PHONG)
    answer = await post_form(admin, drill, drill + "/run", {"scope": "room", "endpoint_id": outside})
    assert answer.status_code == 303
    assert "Hãy chọn một điểm cầu trong bảng này." in (await admin.get(drill)).text
    assert await audit.recent(redis, action="readiness.run") == []
    everyone = await post_form(admin, drill, drill + "/run", {"scope": "all"})
    assert everyone.status_code == 303
    assert "0 điểm cầu được yêu cầu kiểm tra lại" in (await admin.get(drill)).text  # no agent online: nobody asked
    [entry] = await audit.recent(redis, action="readiness.run")
    assert entry.actor == "quantri" and entry.details["scope"] == "all"


async def test_an_occurrences_board_is_linked_from_the_meeting_and_lists_its_rooms(signed_in, book, redis):
    from scheduler.meeting import format_utc
    from tests.web.ui.slots import local_slot

    start = local_slot(days=2)
    meeting = await book(title="Giao ban sẵn sàng", start=start, selector={"kind": "communes", "commune_ids": ["00004", "00008"]})
    await Registry(redis).set_contacts([("00004", "Phạm Thị Dung", "0241234567")])
    organizer = await signed_in("organizer", "tochuc")
    detail = (await organizer.get(f"/meetings/{meeting.id}")).text
    key = format_utc(start)
    assert f'href="/meetings/{meeting.id}/readiness?occurrence={key}"' in detail
    board = (await organizer.get(f"/meetings/{meeting.id}/readiness", params={"occurrence": key})).text
    assert board.count('data-status="not_tested"') == 2 and "Giao ban sẵn sàng" in board
    assert 'href="tel:0241234567"' in board and "Phạm Thị Dung" in board
    assert (await organizer.get(f"/meetings/{meeting.id}/readiness", params={"occurrence": "2001-01-01T00:00:00Z"})).status_code == 404
