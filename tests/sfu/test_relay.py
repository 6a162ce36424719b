"""The cascade's relay node: two real nodes in this process (an origin and a relay), real aiortc peers over loopback."""

from __future__ import annotations

import json

import pytest

from rtc.whip_client import MediaError, subscribe
from tests.waiting import eventually
from vcs import keys

from .conftest import ghost_whep, publish_scene, recv_frames, small_config, track_of

ORIGIN_ID = "origin-1"
RELAY_ID = "relay-1"


@pytest.fixture
async def cascade(node_factory):
    """An origin and a relay node (no Redis); the host publishes room r1 on the origin."""

    async def start(origin_changes: dict | None = None, relay_changes: dict | None = None, redis=None):
        origin = await node_factory(small_config(node_id=ORIGIN_ID, **(origin_changes or {})), redis=redis)
        relay = await node_factory(small_config(node_id=RELAY_ID, role="relay", **(relay_changes or {})), redis=redis)
        return origin, relay

    return start


def origin_url(origin) -> str:
    return origin.base.removesuffix("/sfu")


async def open_relay_room(relay, origin, room: str = "r1"):
    response = await relay.http.put(
        f"{relay.base}/rooms/{room}",
        json={"origin": origin_url(origin), "origin_node": ORIGIN_ID},
        headers=relay.auth(room, "orchestrator", "control"),
    )
    assert response.status_code == 200, response.text
    return response.json()


def relay_upstreams(origin, room: str = "r1") -> list[str]:
    """The tiers the relay subscribes to on the origin, one entry per subscription."""
    found = origin.node.rooms.get(room)
    if found is None:
        return []
    return sorted(s["tier"] or "?" for s in found.stats()["subscribers"] if s["identity"] == RELAY_ID)


def upstream_of(relay, tier: str, room: str = "r1") -> dict | None:
    return next((u for u in relay.node.room(room).stats()["upstream"] if u["tier"] == tier), None)


async def test_relay_subscribers_at_two_tiers_receive_video_and_audio(cascade):
    origin, relay = await cascade()
    pub = await publish_scene(origin)
    stats = await open_relay_room(relay, origin)
    assert stats["origin"] == origin_url(origin)
    high = await subscribe(relay.http, f"{relay.base}/whep/r1", relay.token("r1", "c1", "subscribe"), decode=True)
    low = await subscribe(relay.http, f"{relay.base}/whep/r1", relay.token("r1", "c2", "subscribe", node=RELAY_ID),
                          max_tier="180p", decode=True)  # fmt: skip
    try:
        frames = await recv_frames(track_of(high, "video"), 10)
        assert (frames[-1].width, frames[-1].height) == (320, 180)
        frames = await recv_frames(track_of(low, "video"), 10)
        assert (frames[-1].width, frames[-1].height) == (160, 90)
        for session in (high, low):
            audio = await recv_frames(track_of(session, "audio"), 10)
            assert audio[0].sample_rate == 48000

        # the relay pulls each tier in use once, and the audio, all pinned; the origin encodes them
        assert relay_upstreams(origin) == ["180p", "360p", "audio"]
        pinned = [s for s in origin.node.room("r1").stats()["subscribers"] if s["identity"] == RELAY_ID]
        assert all(s["pinned"] for s in pinned)
        ups = relay.node.room("r1").stats()["upstream"]
        assert sorted(u["tier"] for u in ups) == ["180p", "360p", "audio"]
        assert all(u["state"] == "connected" and u["packets"] > 0 and u["bytes"] > 0 for u in ups)
        info = (await relay.http.get(f"{relay.base}/node", headers=relay.auth("*", "orchestrator", "control"))).json()
        assert info["role"] == "relay" and info["upstream_streams"] == 3
        assert info["hop_ms_p95"] is not None and info["hop_ms_p95"] >= 0
        metrics = (await relay.http.get(f"{relay.base}/metrics")).text
        assert "vcs_sfu_upstream_streams 3" in metrics
    finally:
        await high.close()
        await low.close()
        await pub.close()


async def test_one_upstream_per_tier_in_use_dropped_with_its_last_subscriber(cascade):
    origin, relay = await cascade()
    pub = await publish_scene(origin)
    await open_relay_room(relay, origin)
    subs = [await subscribe(relay.http, f"{relay.base}/whep/r1", relay.token("r1", f"c{i}", "subscribe")) for i in range(3)]
    try:
        for sub in subs:
            await eventually(lambda sub=sub: sub.counters["video"].frames > 3, what="video through the relay")
        assert relay_upstreams(origin) == ["360p", "audio"]
        assert [t["tier"] for t in relay.node.room("r1").stats()["tiers"]] == ["360p"]
        assert relay.node.room("r1").stats()["tiers"][0]["subscribers"] == 3

        for sub in subs[:2]:
            await sub.close()
        await eventually(lambda: len(relay.node.room("r1").subscribers) == 1, what="two relay subscribers gone")
        assert relay_upstreams(origin) == ["360p", "audio"]
        await subs[2].close()
        await eventually(lambda: relay_upstreams(origin) == ["audio"], what=lambda: f"the 360p upstream dropped: {relay_upstreams(origin)}")
        assert relay.node.upstream_streams == 1
    finally:
        for sub in subs:
            await sub.close()
        await pub.close()


async def test_a_keyframe_reaches_a_new_relay_subscriber_and_requests_are_coalesced(cascade):
    # periodic keyframes only every 60 s: the relay must ask the origin for one
    origin, relay = await cascade(origin_changes={"keyframe_interval_s": 60.0, "keyframe_min_interval_s": 0.5})
    pub = await publish_scene(origin)
    await open_relay_room(relay, origin)
    first = await subscribe(relay.http, f"{relay.base}/whep/r1", relay.token("r1", "c1", "subscribe"), decode=True)
    late = None
    try:
        await recv_frames(track_of(first, "video"), 5)
        upstream = relay.node.room("r1").encoders["360p"]
        asked = upstream.keyframe_requests
        late = await subscribe(relay.http, f"{relay.base}/whep/r1", relay.token("r1", "c2", "subscribe"), decode=True)
        frames = await recv_frames(track_of(late, "video"), 3, timeout=5.0)  # decodable: it started on a keyframe
        assert frames[-1].width == 320
        assert upstream.keyframe_requests > asked  # the join's request went upstream as a PLI

        # a storm of requests costs one or two PLIs upstream, not one each
        await eventually(lambda: upstream._pli_timer is None, what="no PLI pending")
        before = upstream.keyframe_requests
        for _ in range(50):
            upstream.request_keyframe()
        await eventually(lambda: upstream._pli_timer is None, what="the coalesced PLI sent")
        assert 1 <= upstream.keyframe_requests - before <= 2
    finally:
        for sub in (first, late):
            if sub is not None:
                await sub.close()
        await pub.close()


async def test_a_relay_pointed_at_a_room_the_origin_lacks_retries_then_ends_the_room(cascade):
    origin, relay = await cascade(relay_changes={"relay_give_up_s": 2.0})
    await open_relay_room(relay, origin, room="nowhere")

    def retrying() -> dict | None:
        audio = upstream_of(relay, "audio", "nowhere") if "nowhere" in relay.node.rooms else None
        return audio if audio and audio["state"] == "retrying" else None

    audio = await eventually(retrying, what="the upstream retrying")
    assert "404" in audio["error"] and audio["retry_in_s"] >= 1
    response = await relay.http.get(f"{relay.base}/rooms/nowhere", headers=relay.auth("nowhere", "o", "control"))
    assert response.json()["upstream"][0]["state"] in ("retrying", "connecting")
    # the origin keeps refusing: the relay room ends after the retries give up
    await eventually(lambda: "nowhere" not in relay.node.rooms, timeout=20, what="the relay room ended")


async def test_the_origin_room_ending_ends_the_relay_room(cascade):
    origin, relay = await cascade(relay_changes={"relay_give_up_s": 1.0})
    pub = await publish_scene(origin)
    await open_relay_room(relay, origin)
    sub = await subscribe(relay.http, f"{relay.base}/whep/r1", relay.token("r1", "c1", "subscribe"))
    try:
        await eventually(lambda: sub.counters["video"].frames > 3, what="video through the relay")
        response = await origin.http.delete(f"{origin.base}/rooms/r1", headers=origin.auth("r1", "o", "control"))
        assert response.status_code == 204
        await eventually(lambda: "r1" not in relay.node.rooms, timeout=20, what="the relay room ended with its origin's")
        await eventually(lambda: sub.dropped.is_set(), what="the relay's subscriber closed")
    finally:
        await sub.close()
        await pub.close()


async def test_relay_credentials_are_checked(cascade):
    origin, relay = await cascade()
    pub = await publish_scene(origin)
    try:
        whep = f"{origin.base}/whep/r1"
        # only a relay credential may pin a tier
        with pytest.raises(MediaError) as refused:
            await subscribe(origin.http, whep, origin.token("r1", "c1", "subscribe"), tier="360p")
        assert refused.value.status == 403
        # a relay credential for another node, or another room
        for token in (
            origin.token("r1", RELAY_ID, "relay", node="origin-2"),
            origin.token("r2", RELAY_ID, "relay", node=ORIGIN_ID),
        ):
            with pytest.raises(MediaError) as refused:
                await subscribe(origin.http, whep, token, tier="360p", kinds=("video",))
            assert refused.value.status == 403
        # a relay credential for a room the origin does not serve: 404, and no room is made
        with pytest.raises(MediaError) as refused:
            await subscribe(origin.http, f"{origin.base}/whep/r9", origin.token("r9", RELAY_ID, "relay", node=ORIGIN_ID), kinds=("video",))
        assert refused.value.status == 404 and "r9" not in origin.node.rooms
        # an unknown tier
        with pytest.raises(MediaError) as refused:
            await subscribe(origin.http, whep, origin.token("r1", RELAY_ID, "relay", node=ORIGIN_ID), tier="4k", kinds=("video",))
        assert refused.value.status == 400

        # a subscriber's token naming another node is refused by the relay
        response = await ghost_whep(relay, "r1", "c1", headers={
            "Content-Type": "application/sdp", "Authorization": f"Bearer {relay.token('r1', 'c1', 'subscribe', node=ORIGIN_ID)}"})  # fmt: skip
        assert response.status_code == 403 and "another node" in response.text
        # no room on the relay and no registry to find its origin
        response = await ghost_whep(relay, "r1", "c1")
        assert response.status_code == 404 and "PUT" in response.text
    finally:
        await pub.close()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"host": "studio"}, "origin"),
        ({"origin": "ftp://x", "origin_node": ORIGIN_ID}, "http(s)"),
        ({"origin": "http://127.0.0.1:1", "origin_node": ""}, "origin_node"),
        ({"origin": "http://127.0.0.1:1", "origin_node": RELAY_ID}, "itself"),
    ],
)
async def test_opening_a_relay_room_needs_an_origin(cascade, body, reason):
    origin, relay = await cascade()
    response = await relay.http.put(f"{relay.base}/rooms/r1", content=json.dumps(body), headers=relay.auth("r1", "o", "control"))
    assert response.status_code == 400 and reason in response.text
    assert "r1" not in relay.node.rooms
    # an origin takes no origin
    response = await origin.http.put(f"{origin.base}/rooms/r1", json={"origin": "http://x", "origin_node": "y"},
                                     headers=origin.auth("r1", "o", "control"))  # fmt: skip
    assert response.status_code == 400 and "origin" in response.text


async def test_a_subscriber_opens_the_relay_room_from_the_registry(cascade, redis):
    origin, relay = await cascade(redis=redis)
    pub = await publish_scene(origin)
    try:
        await eventually(lambda: redis.get(keys.sfu_room("r1")), what="the origin placed the room")
        sub = await subscribe(relay.http, f"{relay.base}/whep/r1", relay.token("r1", "c1", "subscribe"))
        try:
            await eventually(lambda: sub.counters["video"].frames > 3, what="video through the relay")
            assert relay.node.room("r1").stats()["origin"] == origin_url(origin)
            # the relay never claims the room: it stays the origin's
            await relay.node._register()
            assert await redis.get(keys.sfu_room("r1")) == ORIGIN_ID
        finally:
            await sub.close()
        response = await ghost_whep(relay, "r-unknown", "c1")
        assert response.status_code == 404 and "no origin" in response.text
    finally:
        await pub.close()
