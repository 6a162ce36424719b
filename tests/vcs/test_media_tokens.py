import base64
import json

import jwt
import pytest

from vcs.media_tokens import (
    TokenForbidden,
    TokenInvalid,
    mint_media_token,
    verify_media_token,
)

SECRET = "s3cret-for-tests-" + "x" * 48
NOW = 1_760_000_000.0


def _mint(**overrides):
    kwargs = dict(room="r1", identity="commune-00001", role="subscribe", now=NOW)
    kwargs.update(overrides)
    return mint_media_token(SECRET, **kwargs)


def _b64(data: dict) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_round_trip_carries_the_claims():
    token = _mint(ttl=120)
    claims = verify_media_token(SECRET, token, room="r1", role="subscribe", now=NOW + 10)
    assert claims.identity == "commune-00001"
    assert claims.room == "r1"
    assert claims.role == "subscribe"
    assert claims.audience == "vcs-sfu"
    assert claims.expires_at - claims.not_before == 120


@pytest.mark.parametrize(
    ("token_kwargs", "verify_kwargs", "error"),
    [
        ({}, {"room": "other"}, TokenForbidden),
        ({}, {"role": "publish"}, TokenForbidden),
        ({"role": "publish"}, {"role": "subscribe"}, TokenForbidden),
        ({"audience": "someone-else"}, {}, TokenInvalid),
        ({}, {"audience": "vcs-web"}, TokenInvalid),
        ({"ttl": 60}, {"now": NOW + 120}, TokenInvalid),  # expired
        ({"now": NOW + 600}, {}, TokenInvalid),  # not yet valid
    ],
)
def test_token_matrix(token_kwargs, verify_kwargs, error):
    token = _mint(**token_kwargs)
    kwargs = dict(room="r1", role="subscribe", now=NOW + 1)
    kwargs.update(verify_kwargs)
    with pytest.raises(error):
        verify_media_token(SECRET, token, **kwargs)


def test_wrong_secret_is_invalid():
    token = _mint()
    with pytest.raises(TokenInvalid):
        verify_media_token("another-" + "y" * 56, token, room="r1", role="subscribe", now=NOW)


def test_tampered_payload_is_invalid():
    header, payload, signature = _mint().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["room"] = "r2"
    forged = ".".join([header, _b64(claims), signature])
    with pytest.raises(TokenInvalid):
        verify_media_token(SECRET, forged, room="r2", role="subscribe", now=NOW)


def test_alg_none_is_refused():
    claims = jwt.decode(_mint(), options={"verify_signature": False})
    unsigned = _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(claims) + "."
    with pytest.raises(TokenInvalid):
        verify_media_token(SECRET, unsigned, room="r1", role="subscribe", now=NOW)


def test_other_hmac_algorithm_is_refused():
    claims = jwt.decode(_mint(), options={"verify_signature": False})
    token = jwt.encode(claims, SECRET, algorithm="HS512")
    with pytest.raises(TokenInvalid):
        verify_media_token(SECRET, token, room="r1", role="subscribe", now=NOW)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "Bearer x.y.z"])
def test_garbage_is_invalid(garbage):
    with pytest.raises(TokenInvalid):
        verify_media_token(SECRET, garbage, room="r1", role="subscribe", now=NOW)


def test_missing_claims_are_invalid():
    token = jwt.encode({"sub": "x", "aud": "vcs-sfu"}, SECRET, algorithm="HS256")
    with pytest.raises(TokenInvalid):
        verify_media_token(SECRET, token, room="r1", role="subscribe", now=NOW)


def test_control_token_for_every_room():
    token = _mint(room="*", role="control", identity="orchestrator")
    claims = verify_media_token(SECRET, token, room="any-room", role="control", now=NOW)
    assert claims.room == "*"
    with pytest.raises(TokenForbidden):
        verify_media_token(SECRET, token, room="any-room", role="publish", now=NOW)


def test_star_room_only_for_control():
    with pytest.raises(ValueError):
        _mint(room="*", role="publish")


def test_real_clock_default():
    token = mint_media_token(SECRET, room="r1", identity="x", role="publish")
    assert verify_media_token(SECRET, token, room="r1", role="publish").identity == "x"


def test_only_a_publish_token_names_the_host():
    host = verify_media_token(SECRET, mint_media_token(SECRET, room="r1", identity="central", role="publish", host=True), room="r1", role="publish")
    commune = verify_media_token(SECRET, mint_media_token(SECRET, room="r1", identity="00070", role="publish"), room="r1", role="publish")
    assert host.host and not commune.host
    with pytest.raises(ValueError):
        mint_media_token(SECRET, room="r1", identity="central", role="subscribe", host=True)


def test_a_token_naming_a_node_is_refused_by_another_node():
    token = _mint(node="sfu-hanoi-1")
    assert verify_media_token(SECRET, token, room="r1", role="subscribe", now=NOW, node="sfu-hanoi-1").node == "sfu-hanoi-1"
    with pytest.raises(TokenForbidden, match="another node"):
        verify_media_token(SECRET, token, room="r1", role="subscribe", now=NOW, node="sfu-hue-2")


def test_a_token_without_the_node_claim_is_good_on_any_node():
    claims = verify_media_token(SECRET, _mint(), room="r1", role="subscribe", now=NOW, node="sfu-hue-2")
    assert claims.node is None


def test_a_relay_credential_names_its_origin_and_is_its_own_role():
    token = _mint(role="relay", identity="relay-hue", node="origin-1", ttl=120)
    claims = verify_media_token(SECRET, token, room="r1", role=("subscribe", "relay"), now=NOW, node="origin-1")
    assert (claims.role, claims.identity, claims.node) == ("relay", "relay-hue", "origin-1")
    with pytest.raises(TokenForbidden):
        verify_media_token(SECRET, token, room="r1", role="subscribe", now=NOW)
    with pytest.raises(TokenForbidden, match="another room"):
        verify_media_token(SECRET, token, room="r2", role="relay", now=NOW)
    with pytest.raises(ValueError, match="origin node"):
        _mint(role="relay")


def test_a_malformed_node_claim_is_invalid():
    token = jwt.encode(
        {"sub": "x", "room": "r1", "role": "subscribe", "aud": "vcs-sfu", "iat": int(NOW), "nbf": int(NOW), "exp": int(NOW) + 60, "node": 7},
        SECRET,
        algorithm="HS256",
    )
    with pytest.raises(TokenInvalid, match="node"):
        verify_media_token(SECRET, token, room="r1", role="subscribe", now=NOW)
