"""One commune identity per endpoint user, never shared between users or Locust processes."""

from __future__ import annotations

from pathlib import Path

from loadtests.identities import IdentityPool, read_secrets
from vcs.divisions import communes


def _secrets(tmp_path: Path) -> Path:
    path = tmp_path / "secrets.csv"
    rows = ["endpoint_id,secret", "central,s-central", "hall-01,s-hall"] + [f"{c.code},s-{c.code}" for c in communes()]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_every_commune_once_in_registry_order(tmp_path):
    secrets = read_secrets(_secrets(tmp_path))
    pool = IdentityPool(secrets)
    assert len(pool) == 3321
    taken = [pool.take() for _ in range(3321)]
    assert pool.take() is None
    assert [i.endpoint_id for i in taken] == [c.code for c in communes()]
    assert taken[0].secret == f"s-{taken[0].endpoint_id}"
    assert pool.named("central").secret == "s-central"
    assert pool.named("nobody") is None


def test_processes_share_the_identities_without_overlap(tmp_path):
    secrets = read_secrets(_secrets(tmp_path))
    pools = [IdentityPool(secrets, index=i, stride=3) for i in range(3)]
    seen = []
    for pool in pools:
        while (identity := pool.take()) is not None:
            seen.append(identity.endpoint_id)
    assert sorted(seen) == sorted(c.code for c in communes())


def test_a_stopped_user_gives_its_identity_back(tmp_path):
    pool = IdentityPool(read_secrets(_secrets(tmp_path)))
    first = pool.take()
    pool.give_back(first)
    assert pool.take() == first


def test_media_users_of_a_meeting_span_the_provinces(tmp_path):
    """The first N identities come from N provinces (34 at most), so the placement spreads them over the relays."""
    secrets = read_secrets(_secrets(tmp_path))
    province_of = {c.code: c.province_code for c in communes()}
    pools = [IdentityPool(secrets, index=i, stride=2, spread=True) for i in range(2)]
    first = [pools[n % 2].take().endpoint_id for n in range(40)]
    assert len({province_of[code] for code in first}) == 34
    assert len({province_of[code] for code in first[:10]}) == 10
    rest = []
    for pool in pools:
        while (identity := pool.take()) is not None:
            rest.append(identity.endpoint_id)
    assert sorted(first + rest) == sorted(c.code for c in communes())
