"""One ladder for the deployment: the booking preview, an agent's schedule and the SFU start a link on the same tier."""

from datetime import UTC, datetime, timedelta

import pytest

from app.serve import sfu_config_for
from sfu.allocator import LinkInfo, TierAllocation
from vcs.config import Settings
from vcs.link_profiles import AccessType, LinkProfile
from vcs.roles import Principal, Role
from web.services import Services

ADMIN = Principal("admin", Role.ADMIN)
COMMUNE = "00070"
LINK_KBPS = 500  # 250 for VCS at the default share: the 180p tier (250 video + 64 audio) does not fit, audio does


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "audio"),
        ({"VCS_SFU_SHARE": "0.8"}, "180p"),  # 400 kbps for VCS
        ({"VCS_SFU_TIERS": "720p:1280x720@2500,360p:640x360@800,180p:320x180@150,audio"}, "180p"),  # a cheaper 180p
        ({"VCS_SFU_AUDIO_KBPS": "0"}, "180p"),
    ],
)
async def test_a_changed_ladder_or_share_changes_the_plan_the_schedule_and_the_sfu_alike(redis, settings, env, expected):
    settings = settings.with_overrides(ladder=Settings.from_environ(env).ladder)
    services = Services.build(settings, redis)
    await services.registry.seed()
    await services.registry.set_links([(COMMUNE, LinkProfile(AccessType.SATELLITE, LINK_KBPS, LINK_KBPS, 600, 2.0))])
    now = datetime.now(UTC).replace(microsecond=0)
    start = now + timedelta(hours=2)
    body = {"title": "Giao ban", "start": start.isoformat(), "duration_minutes": 60, "selector": {"kind": "communes", "commune_ids": [COMMUNE]}}

    preview = await services.booking.create(ADMIN, body, now)
    [planned] = [c.tier for c in preview.plan.communes if c.endpoint_id == COMMUNE]
    [entry] = await services.schedules.schedule(await services.registry.get(COMMUNE), now)
    sfu = sfu_config_for("127.0.0.1", "http://127.0.0.1:8000", env, settings.ladder)  # as `vcs serve` builds it
    sfu_start = TierAllocation(sfu, LinkInfo(downlink_kbps=LINK_KBPS, uplink_kbps=LINK_KBPS), now=0).tier.name

    assert (planned, entry["publish_tier"], sfu_start) == (expected, expected, expected)
