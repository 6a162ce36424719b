"""A commune's camera through the cascade: published on its relay, forwarded to the origin on demand."""

from __future__ import annotations

import pytest

from rtc.synthetic_media import SyntheticAudioTrack
from rtc.whip_client import MediaError, publish, subscribe
from tests.waiting import eventually
from vcs.media_tokens import mint_media_token

from .conftest import SECRET, publish_scene, recv_frames, small_config, track_of
from .test_floor import FlatVideoTrack, control, luma_becomes, mean_luma

ORIGIN = "origin-1"
RELAY = "relay-1"
IDLE_S = 2.0


def base_url(node) -> str:
    """The node's base URL as the orchestrator gives it (the SFU is mounted at /sfu)."""
    return node.base.removesuffix("/sfu")


@pytest.fixture
async def cascade(node_factory):
    """An origin with the host publishing in r1, and a relay whose r1 pulls from it."""
    origin = await node_factory(small_config(node_id=ORIGIN, uplink_idle_s=IDLE_S))
    relay = await node_factory(small_config(node_id=RELAY, role="relay"))
    assert (await origin.http.put(f"{origin.base}/rooms/r1", json={"host": "studio"}, headers=control(origin))).status_code == 200
    body = {"origin": base_url(origin), "origin_node": ORIGIN}
    assert (await relay.http.put(f"{relay.base}/rooms/r1", json=body, headers=control(relay))).status_code == 200
    host = await publish_scene(origin)
    yield origin, relay
    await host.close()


async def publish_commune(relay, identity: str = "c1"):
    token = relay.token("r1", identity, "publish", node=RELAY)
    session = await publish(relay.http, f"{relay.base}/whip/r1", token, [SyntheticAudioTrack(600), FlatVideoTrack()])
    room = relay.node.room("r1")
    publishing = lambda: identity in room.publishers and room.publishers[identity].video_packets > 10  # noqa: E731
    await eventually(publishing, what=f"{identity} publishes on the relay")
    return session


def relay_credential(room: str = "r1", node: str = ORIGIN) -> str:
    return mint_media_token(SECRET, room=room, identity=RELAY, role="relay", node=node, ttl=120)


async def test_floor_to_a_commune_on_a_relay_reaches_the_origin(cascade):
    origin, relay = cascade
    commune = await publish_commune(relay)
    watcher = await subscribe(origin.http, f"{origin.base}/whep/r1", origin.token("r1", "c2", "subscribe"), decode=True)
    try:
        video = track_of(watcher, "video")
        await luma_becomes(video, lambda y: y < 180)  # the host's scene

        response = await relay.http.post(f"{relay.base}/rooms/r1/uplinks", json={"identity": "c1"}, headers=control(relay))
        assert response.status_code == 200, response.text
        again = await relay.http.post(f"{relay.base}/rooms/r1/uplinks", json={"identity": "c1"}, headers=control(relay))
        assert again.status_code == 200  # idempotent: the same uplink
        assert len(relay.node.room("r1").uplinks) == 1
        room = origin.node.room("r1")
        await eventually(lambda: "c1" in room.publishers, what="the origin has publisher c1")
        assert room.publishers["c1"].relay == RELAY
        assert room.host == "studio"  # an uplink never becomes the host

        response = await origin.http.post(f"{origin.base}/rooms/r1/floor", json={"identity": "c1"}, headers=control(origin))
        assert response.status_code == 200
        # the origin decodes the forwarded camera into the ladder: the watcher sees the commune
        await luma_becomes(video, lambda y: y > 200, timeout=20)
        assert room.publishers["c1"].frames > 0
        # and hears it: the program audio comes from c1's forwarded packets
        await eventually(lambda: room._audio_source is not None and room._audio_source.identity == "c1", what="c1's audio is the program")
        c2 = next(s for s in room.subscribers.values() if s.identity == "c2")
        packets = c2.audio.packets_sent
        await eventually(lambda: c2.audio.packets_sent > packets, what="c1's audio reaches c2 on the origin")
        # the relay forwarded packets, and the origin's keyframe requests reached the commune's publisher
        uplink = relay.node.room("r1").uplinks["c1"]
        assert uplink.stats()["packets"] > 0
        stats = (await relay.http.get(f"{relay.base}/rooms/r1", headers=control(relay))).json()
        assert stats["uplinks"][0]["identity"] == "c1" and stats["uplinks"][0]["state"] == "connected"
    finally:
        await watcher.close()
        await commune.close()


async def test_the_host_watches_a_commune_until_it_stops(cascade):
    origin, relay = cascade
    commune = await publish_commune(relay)
    try:
        response = await relay.http.post(f"{relay.base}/rooms/r1/uplinks", json={"identity": "c1"}, headers=control(relay))
        assert response.status_code == 200
        room = origin.node.room("r1")
        await eventually(lambda: "c1" in room.publishers, what="the origin has publisher c1")
        view = await subscribe(origin.http, f"{origin.base}/whep/r1", origin.token("r1", "studio", "subscribe"), source="c1", decode=True)
        try:
            frames = await recv_frames(track_of(view, "video"), 10)
            # the commune's own camera, as it sent it: its size, its picture
            assert (frames[-1].width, frames[-1].height) == (160, 90)
            assert mean_luma(frames[-1]) > 200
            assert room.watched("c1")
            # the origin's keyframe requests (a new viewer's) travel back through the relay
            uplink = relay.node.room("r1").uplinks["c1"]
            asked = uplink.stats()["keyframe_requests"]
            room.publishers["c1"].request_keyframe()
            await eventually(lambda: uplink.stats()["keyframe_requests"] > asked, what="the origin's PLI reaches the relay")
        finally:
            await view.close()
        # nobody watches c1 at the origin any more: the origin closes it, and the relay forgets the uplink
        await eventually(lambda: "c1" not in room.publishers, timeout=IDLE_S + 10, what="the origin closes the unwatched uplink")
        await eventually(lambda: not relay.node.room("r1").uplinks, what="the relay drops the closed uplink")
        assert "c1" in relay.node.room("r1").publishers  # the commune still publishes to its relay
    finally:
        await commune.close()


async def test_stopping_or_leaving_ends_the_uplink(cascade):
    origin, relay = cascade
    commune = await publish_commune(relay)
    url = f"{relay.base}/rooms/r1/uplinks"
    room = origin.node.room("r1")
    assert (await relay.http.post(url, json={"identity": "c1"}, headers=control(relay))).status_code == 200
    await eventually(lambda: "c1" in room.publishers, what="the origin has publisher c1")
    # both nodes count it, in /node and in /metrics (labels: the node and a fixed outcome, never a commune)
    relay_info = (await relay.http.get(f"{relay.base}/node", headers=control(relay, "*"))).json()
    assert relay_info["uplinks"] == 1 and relay_info["uplink_outcomes"]["started"] == 1
    assert (await origin.http.get(f"{origin.base}/node", headers=control(origin, "*"))).json()["relayed_publishers"] == 1
    relay_metrics = (await relay.http.get(f"{relay.base}/metrics")).text
    assert f'vcs_sfu_uplinks{{node="{RELAY}"}} 1' in relay_metrics and 'vcs_sfu_uplinks_total{outcome="started"} 1' in relay_metrics
    assert "c1" not in relay_metrics  # without a control token, no room or commune is named
    assert f'vcs_sfu_relayed_publishers{{node="{ORIGIN}"}} 1' in (await origin.http.get(f"{origin.base}/metrics")).text
    assert 'vcs_sfu_room_uplinks{room="r1"} 1' in (await relay.http.get(f"{relay.base}/metrics", headers=control(relay, "*"))).text
    assert (await relay.http.delete(f"{url}/c1", headers=control(relay))).status_code == 204
    assert (await relay.http.delete(f"{url}/c1", headers=control(relay))).status_code == 204  # idempotent
    await eventually(lambda: "c1" not in room.publishers, what="the origin's c1 resource is deleted")
    assert relay.node.uplinks == 0 and origin.node.relayed_publishers == 0

    assert (await relay.http.post(url, json={"identity": "c1"}, headers=control(relay))).status_code == 200
    await eventually(lambda: "c1" in room.publishers, what="c1 is forwarded again")
    await commune.close()  # the commune leaves its relay
    await eventually(lambda: not relay.node.room("r1").uplinks, what="the relay stops forwarding c1")
    await eventually(lambda: "c1" not in room.publishers, what="the origin no longer has c1")


async def test_uplink_bad_input(cascade):
    origin, relay = cascade
    url = f"{relay.base}/rooms/r1/uplinks"
    assert (await relay.http.post(url, json={"identity": "nobody"}, headers=control(relay))).status_code == 404
    assert (await relay.http.post(url, json={"identity": "c1"})).status_code == 401
    assert (await relay.http.post(url, json={"identity": "c1"}, headers=relay.auth("r1", "c1", "publish"))).status_code == 403
    assert (await relay.http.post(url, json={"identity": "c1"}, headers=control(relay, "r2"))).status_code == 403
    assert (await relay.http.post(url, json={}, headers=control(relay))).status_code == 400
    assert (await relay.http.post(url, json={"identity": "a b"}, headers=control(relay))).status_code == 400
    elsewhere = await relay.http.post(f"{relay.base}/rooms/r9/uplinks", json={"identity": "c1"}, headers=control(relay, "r9"))
    assert elsewhere.status_code == 404
    # a room that pulls from no origin has nowhere to forward to
    nowhere = await origin.http.post(f"{origin.base}/rooms/r1/uplinks", json={"identity": "studio"}, headers=control(origin))
    assert nowhere.status_code == 409
    bad = {"origin": "ftp://x", "origin_node": ORIGIN}
    assert (await relay.http.put(f"{relay.base}/rooms/r1", json=bad, headers=control(relay))).status_code == 400

    whip = f"{origin.base}/whip/r1"
    tracks = lambda: [FlatVideoTrack()]  # noqa: E731
    refusals = [
        (relay_credential(), None, 403),  # a relay credential only publishes a commune (?identity=)
        (relay_credential(node="another-origin"), "c1", 403),  # a credential for another node
        (origin.token("r1", "c1", "publish"), "c1", 403),  # a commune cannot pose as a relay
        (relay_credential(room="r2"), "c1", 403),  # another room
        ("not-a-token", "c1", 401),
    ]
    for token, identity, status in refusals:
        with pytest.raises(MediaError) as caught:
            session = await publish(origin.http, whip + (f"?identity={identity}" if identity else ""), token, tracks())
            await session.close()
        assert caught.value.status == status, (identity, caught.value)
    assert "c1" not in origin.node.room("r1").publishers
