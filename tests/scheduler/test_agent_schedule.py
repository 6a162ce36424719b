"""What an endpoint's agent is told to publish with: only the meeting's host gets a token that names it host."""

from datetime import UTC, datetime, timedelta

from tests.conftest import TEST_SECRET
from vcs.media_tokens import verify_media_token
from vcs.roles import Principal, Role
from web.services import Services

ADMIN = Principal("admin", Role.ADMIN)


async def test_only_the_hosts_publish_token_names_it_host(redis, settings):
    services = Services.build(settings, redis)
    await services.registry.seed()
    now = datetime.now(UTC).replace(microsecond=0)
    body = {
        "title": "Giao ban",
        "start": (now + timedelta(minutes=5)).isoformat(),  # its tokens are valid from now on
        "duration_minutes": 60,
        "selector": {"kind": "communes", "commune_ids": ["00070"]},
    }
    await services.booking.create(ADMIN, body, now)

    def publish_claims(entry: dict):
        return verify_media_token(TEST_SECRET, entry["publish_token"], room=entry["room"], role="publish")

    [commune] = await services.schedules.schedule(await services.registry.get("00070"), now)
    [host] = await services.schedules.schedule(await services.registry.get("central"), now)
    assert publish_claims(host).host and publish_claims(host).identity == "central"
    assert not publish_claims(commune).host
