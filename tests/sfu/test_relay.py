"""The cascade's relay node: two real nodes in this process (an origin and a relay), real aiortc peers over loopback."""

from __future__ import annotations

import json
import time

import pytest
import redis.asyncio as aioredis
from aiortc.rtp import RtpPacket

from rtc.synthetic_media import SyntheticAudioTrack
from rtc.whip_client import MediaError, publish, subscribe
from sfu.downtrack import udp_gso_supported
from sfu.packet_stream import PacketStream
from sfu.upstream import HopTimes, Upstream
from tests.waiting import eventually
from vcs import keys
from vcs.routing import NodeRouter
from vcs.tiers import parse_tiers

from .conftest import free_port, ghost_whep, publish_scene, recv_frames, small_config, track_of
from .test_floor import FlatVideoTrack
from .test_packet_stream import Receiver, wired_downtrack

ORIGIN_ID = "origin-1"
RELAY_ID = "relay-1"


@pytest.fixture
async def cascade(node_factory):
    """An origin and a relay node (no Redis); the host publishes room r1 on the origin."""

    async def start(origin_changes: dict | None = None, relay_changes: dict | None = None, redis=None, relay_redis=None):
        origin = await node_factory(small_config(node_id=ORIGIN_ID, **(origin_changes or {})), redis=redis)
        relay = await node_factory(small_config(node_id=RELAY_ID, role="relay", **(relay_changes or {})), redis=relay_redis or redis)
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


def counts_traffic(node) -> bool:
    """After a byte-counter sample (as each heartbeat takes one): the node's record shows media in and out."""
    node.traffic.sample(node.byte_counts(), time.monotonic())
    info = node.node_info()
    return info.bitrate_in_kbps > 0 and info.bitrate_out_kbps > 0


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
        # the registry record's figures: media in from the origin, out to the communes (and the origin's out to the relay)
        for node in (relay.node, origin.node):
            what = f"{node.config.node_id} counts its bitrate in and out"
            await eventually(lambda node=node: counts_traffic(node), interval=0.5, what=what)
        assert relay.node.node_info().upstream_streams == 3
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


async def test_an_upstream_tier_is_dropped_once_its_last_subscriber_has_switched_away(cascade, monkeypatch):
    # no node tick during the test: the switch itself must drop the tier, not the next periodic sweep
    monkeypatch.setattr("sfu.node.TICK_S", 3600.0)
    origin, relay = await cascade()
    pub = await publish_scene(origin)
    await open_relay_room(relay, origin)
    session = await subscribe(relay.http, f"{relay.base}/whep/r1", relay.token("r1", "c1", "subscribe"))
    try:
        room = relay.node.room("r1")
        await eventually(lambda: session.counters["video"].frames > 3, what="360p video through the relay")
        sub = next(iter(room.subscribers.values()))
        sub.pinned = True  # its receiver's reports must not move it while the test does
        high = room.encoders["360p"]
        room.set_tier(sub, next(t for t in relay.node.config.tiers if t.name == "180p"))

        # switching: the 180p keyframe has not come yet, so 360p is still received and still pulled
        low = room.encoders["180p"]
        assert sub.video.pending is low.stream and sub.video.stream is high.stream
        assert sub.stats()["switching"] and sub.stats()["tier"] == "180p"
        assert "360p" in room.encoders

        # on the keyframe the subscriber moves, and the 360p subscription goes with it
        await eventually(lambda: sub.video.stream is low.stream, what="the switch made on a 180p keyframe")
        assert not sub.stats()["switching"]
        assert sorted(room.encoders) == ["180p"] and relay.node.upstream_streams == 2
        await eventually(lambda: high.closed and relay_upstreams(origin) == ["180p", "audio"],
                         what=lambda: f"the 360p upstream closed: {relay_upstreams(origin)}")  # fmt: skip
        frames = session.counters["video"].frames
        await eventually(lambda: session.counters["video"].frames > frames + 3, what="180p video after the switch")
    finally:
        await session.close()
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


async def test_a_relay_waits_for_a_room_its_origin_does_not_have_yet_and_follows_it_within_seconds(cascade):
    """An origin restarted has no room until its host publishes again: the relay keeps asking, every few seconds."""
    origin, relay = await cascade()
    await open_relay_room(relay, origin)
    sub = await subscribe(relay.http, f"{relay.base}/whep/r1", relay.token("r1", "c1", "subscribe"))
    pub = None
    try:
        await eventually(lambda: (upstream_of(relay, "audio") or {}).get("failures", 0) >= 3, timeout=20, what="the relay refused a few times")
        audio = upstream_of(relay, "audio")
        assert "404" in audio["error"] and audio["state"] in ("retrying", "connecting") and "r1" in relay.node.rooms
        assert audio["retry_in_s"] is None or audio["retry_in_s"] <= 2
        pub = await publish_scene(origin)
        await eventually(lambda: sub.counters["video"].frames > 3, timeout=10, what="video through the relay once the room is there")
    finally:
        await sub.close()
        if pub is not None:
            await pub.close()


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
        # the origin tells a relay the room ended (410), where an unknown room is a 404 it waits out
        with pytest.raises(MediaError) as refused:
            await subscribe(origin.http, f"{origin.base}/whep/r1", origin.token("r1", RELAY_ID, "relay", node=ORIGIN_ID), kinds=("video",))
        assert refused.value.status == 410
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


async def test_a_relay_subscribes_again_when_its_origin_registers_anew(cascade, redis):
    """A restarted origin has lost the relay's subscriptions: the relay takes them again from its record, not ICE consent."""
    origin, relay = await cascade(redis=redis)
    pub = await publish_scene(origin)
    sub = await subscribe(relay.http, f"{relay.base}/whep/r1", relay.token("r1", "c1", "subscribe"))
    try:
        await open_relay_room(relay, origin)
        await eventually(lambda: sub.counters["video"].frames > 3, what="video through the relay")

        def upstream_ids() -> set[str]:
            return {r.id for r in origin.node.resources.values() if r.identity == RELAY_ID}

        before = await eventually(lambda: len(upstream_ids()) == 2 and upstream_ids(), what="the relay's two upstreams on the origin")
        await eventually(lambda: ORIGIN_ID in relay.node._origins_started, what="the relay has read its origin's record")
        origin.node.started_at += 10  # as a restarted origin registers itself
        await eventually(lambda: len(upstream_ids()) == 2 and not upstream_ids() & before, timeout=10, what="the relay's upstreams made anew")
        frames = sub.counters["video"].frames
        await eventually(lambda: sub.counters["video"].frames > frames + 3, what="video through the relay again")
    finally:
        await sub.close()
        await pub.close()


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

            # but it reports the media it sees, beside the origin's record: the live view sees c1 on the relay
            async def relay_hears_c1() -> bool:
                await relay.node._register()
                return "c1" in (await NodeRouter(redis).room_media("r1") or {})

            await eventually(relay_hears_c1, what="the relay reports its subscriber's media")

            # the origin writes its own record on its heartbeat (transport-cc feedback may let the relay hear c1 sooner)
            async def both_records() -> bool:
                return await redis.exists(keys.sfu_room_media("r1", ORIGIN_ID), keys.sfu_room_media("r1", RELAY_ID)) == 2

            await eventually(both_records, what="the origin's and the relay's media records side by side")
        finally:
            await sub.close()
        response = await ghost_whep(relay, "r-unknown", "c1")
        assert response.status_code == 404 and "no origin" in response.text
    finally:
        await pub.close()



async def test_a_relay_without_redis_keeps_forwarding(cascade):
    unreachable = aioredis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.2)
    origin, relay = await cascade(relay_redis=unreachable)
    pub = await publish_scene(origin)
    try:
        await open_relay_room(relay, origin)
        sub = await subscribe(relay.http, f"{relay.base}/whep/r1", relay.token("r1", "c1", "subscribe"))
        try:
            await eventually(lambda: sub.counters["video"].frames > 3, what="video through the relay")
            await relay.node._register()  # the heartbeat fails, and is only logged
            frames = sub.counters["video"].frames
            await eventually(lambda: sub.counters["video"].frames > frames + 3, what="video still flowing")
        finally:
            await sub.close()
        # a room it does not have cannot be looked up: 503 with the reason
        response = await ghost_whep(relay, "r2", "c1")
        assert response.status_code == 503 and "origin" in response.text
    finally:
        await pub.close()
        await unreachable.aclose()


async def test_a_relay_room_is_re_pointed_at_another_origin(cascade, node_factory):
    origin, relay = await cascade()
    other = await node_factory(small_config(node_id="origin-2"))
    pubs = [await publish_scene(origin), await publish_scene(other)]
    await open_relay_room(relay, origin)
    again = await open_relay_room(relay, origin)  # the same origin again: nothing changes
    assert again["origin"] == origin_url(origin)
    sub = await subscribe(relay.http, f"{relay.base}/whep/r1", relay.token("r1", "c1", "subscribe"))
    try:
        await eventually(lambda: sub.counters["video"].frames > 3, what="video through the relay")
        response = await relay.http.put(f"{relay.base}/rooms/r1", json={"origin": origin_url(other), "origin_node": "origin-2"},
                                         headers=relay.auth("r1", "o", "control"))  # fmt: skip
        assert response.status_code == 200 and response.json()["origin"] == origin_url(other)
        await eventually(lambda: relay_upstreams(other) == ["360p", "audio"], what="the relay subscribes to the new origin")
        await eventually(lambda: relay_upstreams(origin) == [], what="and leaves the old one")
        frames = sub.counters["video"].frames
        await eventually(lambda: sub.counters["video"].frames > frames + 5, what="the subscriber still receives video")
        assert not sub.dropped.is_set()
    finally:
        await sub.close()
        for pub in pubs:
            await pub.close()


async def test_a_commune_holding_the_floor_from_a_relay_does_not_hear_itself(cascade):
    origin, relay = await cascade()
    host = await publish_scene(origin)
    await open_relay_room(relay, origin)
    commune = await publish(relay.http, f"{relay.base}/whip/r1", relay.token("r1", "c1", "publish"), [SyntheticAudioTrack(600), FlatVideoTrack()])
    c1_watching = await subscribe(relay.http, f"{relay.base}/whep/r1", relay.token("r1", "c1", "subscribe"))
    c2_watching = await subscribe(relay.http, f"{relay.base}/whep/r1", relay.token("r1", "c2", "subscribe"))
    floor = f"{relay.base}/rooms/r1/floor"
    try:
        room = relay.node.room("r1")
        await eventually(lambda: len(room.subscribers) == 2 and all(s.ready for s in room.subscribers.values()), what="both subscribers up")
        c1 = next(s for s in room.subscribers.values() if s.identity == "c1")
        c2 = next(s for s in room.subscribers.values() if s.identity == "c2")
        assert c1.audio.stream is room.audio and c2.audio.stream is room.audio

        response = await relay.http.post(floor, json={"identity": "c1"}, headers=relay.auth("r1", "orchestrator", "control"))
        assert response.status_code == 200 and response.json()["floor"] == "c1"
        # the program audio (from the origin) goes on to c2, never back to c1
        assert c1.audio.stream is None and c2.audio.stream is room.audio
        heard_by_c1, heard_by_c2 = c1.audio.packets_sent, c2.audio.packets_sent
        await eventually(lambda: c2.audio.packets_sent > heard_by_c2 + 25, what="the program audio reaches c2")
        assert c1.audio.packets_sent == heard_by_c1
        # a relay decodes nothing and adds no sound of its own: the origin makes the program
        await eventually(lambda: room.publishers["c1"].video_packets > 30 and room.publishers["c1"].audio_packets > 30)
        assert not room.publishers["c1"].decoding and room.publishers["c1"].frames == 0
        assert room._audio_source is None
        frames = c1_watching.counters["video"].frames
        await eventually(lambda: c1_watching.counters["video"].frames > frames + 3, what="c1 still sees the program")

        # the floor goes to a commune on another relay: nobody here is the speaker, c1 hears the program again
        response = await relay.http.post(floor, json={"identity": "c7"}, headers=relay.auth("r1", "orchestrator", "control"))
        assert response.status_code == 200 and response.json()["floor"] == "c7"
        assert c1.audio.stream is room.audio
        heard_by_c1 = c1.audio.packets_sent
        await eventually(lambda: c1.audio.packets_sent > heard_by_c1, what="c1 hears the program again")

        await relay.http.post(floor, json={"identity": "c1"}, headers=relay.auth("r1", "orchestrator", "control"))
        response = await relay.http.delete(floor, headers=relay.auth("r1", "orchestrator", "control"))
        assert response.status_code == 200 and response.json()["floor"] is None
        assert c1.audio.stream is room.audio and not room.publishers["c1"].decoding
        # only the orchestrator gives the floor, on a relay as on an origin
        response = await relay.http.post(floor, json={"identity": "c1"}, headers=relay.auth("r1", "c1", "publish"))
        assert response.status_code == 403
    finally:
        for session in (c1_watching, c2_watching, commune, host):
            await session.close()


async def test_relayed_video_goes_out_a_frame_at_a_time(node_factory):
    """An upstream's packets, as aiortc hands them over, to a subscriber's socket (real SRTP and UDP)."""
    stream = PacketStream("video", "r1/360p", clock_rate=90000)
    upstream = Upstream(parse_tiers("360p:320x180@600")[0], stream, None, keyframe_min_interval_s=1, connect_timeout_s=1,  # type: ignore[arg-type]
                        retry_max_s=1, give_up_s=1, hops=HopTimes(), on_gone=lambda u: None, owns_stream=True, room="r1")  # fmt: skip
    upstream._pt, upstream._rtx_pt = 96, 97
    receiver = Receiver()
    try:
        stream.attach(wired_downtrack(receiver, gso=udp_gso_supported()), at_keyframe=False)

        def arrive(seq: int, ts: int, marker: bool = False) -> None:
            upstream._on_rtp(RtpPacket(payload_type=96, marker=int(marker), sequence_number=seq, timestamp=ts, ssrc=5, payload=bytes(1200)))

        def received(count: int) -> list[tuple[int, int, bool]]:
            """(upstream sequence number, timestamp, marker) of what the subscriber got (its numbering is its own)."""
            return [((seq - offset) & 0xFFFF, (ts - ts_offset) & 0xFFFFFFFF, marker) for seq, ts, marker in receiver.take(count)]

        for seq in range(100, 104):
            arrive(seq, 3000)
        assert receiver.nothing_more()  # held until the frame's last packet
        arrive(104, 3000, marker=True)
        got = receiver.take(5)
        offset, ts_offset = (got[0][0] - 100) & 0xFFFF, (got[0][1] - 3000) & 0xFFFFFFFF
        assert [((seq - offset) & 0xFFFF, marker) for seq, _, marker in got] == [(seq, seq == 104) for seq in range(100, 105)]

        # a packet lost on the way: the frame's packets go on as they come, then the retransmission
        arrive(105, 6000)
        arrive(106, 6000)
        arrive(108, 6000, marker=True)
        assert received(3) == [(105, 6000, False), (106, 6000, False), (108, 6000, True)]
        upstream._on_rtp(RtpPacket(payload_type=97, sequence_number=900, timestamp=6000, ssrc=6, payload=(107).to_bytes(2, "big") + bytes(1200)))
        assert received(1) == [(107, 6000, False)]
        # a retransmission of a packet that came after all, and a packet twice: neither is sent again (a replay)
        upstream._on_rtp(RtpPacket(payload_type=97, sequence_number=901, timestamp=6000, ssrc=6, payload=(106).to_bytes(2, "big") + bytes(1200)))
        arrive(108, 6000, marker=True)
        assert receiver.nothing_more() and upstream.duplicates == 2
        # the next frame goes out whole again
        for seq in range(109, 112):
            arrive(seq, 9000, marker=seq == 111)
        assert received(3) == [(109, 9000, False), (110, 9000, False), (111, 9000, True)]
        assert stream.send_errors == 0 and upstream.frames == 3
    finally:
        receiver.close()
