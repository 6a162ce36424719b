"""The project's own receiver sends transport-cc feedback, and the node fits its estimate from it."""

from __future__ import annotations

import asyncio
import re
import threading
import time

import httpx

from rtc.transport_cc import TWCC_URI
from rtc.whip_client import subscribe
from tests.waiting import eventually, scaled

from .conftest import publish_scene


async def room_subscriber(sfu, identity: str) -> dict | None:
    """The node's stats for one subscriber, as its room serves them."""
    response = await sfu.http.get(f"{sfu.base}/rooms/r1", headers=sfu.auth("r1", "ops", "control"))
    assert response.status_code == 200, response.text
    return next((s for s in response.json()["subscribers"] if s["identity"] == identity), None)


async def test_a_subscribe_session_negotiates_transport_cc_and_its_feedback_drives_the_estimate(sfu):
    pub = await publish_scene(sfu)
    sub = await subscribe(sfu.http, f"{sfu.base}/whep/r1", sfu.token("r1", "c1", "subscribe"))
    try:
        offer, answer = sub.pc.localDescription.sdp, sub.pc.remoteDescription.sdp
        for sdp in (offer, answer):
            for media in sdp.split("m=")[1:]:
                assert re.search(rf"a=extmap:\d+ {re.escape(TWCC_URI)}", media), media
        vp8 = re.search(r"a=rtpmap:(\d+) VP8/90000", answer).group(1)
        assert f"a=rtcp-fb:{vp8} transport-cc" in answer

        async def fed() -> bool:
            stats = await room_subscriber(sfu, "c1")
            return bool(stats and stats["feedback_packets"] >= 20)

        await eventually(fed, what="the node counts the receiver's transport-cc feedback")
        stats = await room_subscriber(sfu, "c1")
        assert stats["transport_cc"] and stats["feedback_errors"] == 0
        assert stats["tier"] == "360p" and stats["estimate_kbps"] >= 600  # the link (loopback) carries the top tier
        [state] = sfu.node.room("r1").subscribers.values()
        await eventually(lambda: state.estimator.acked_bps is not None, what="a delivered rate measured from the arrivals")
        assert state.estimator.acked_bps > 0
        # the client reported every packet it counted: its log numbered them all
        assert sub.arrivals is not None and sub.arrivals.count >= 20
    finally:
        await sub.close()
        await pub.close()


async def test_a_receiver_whose_loop_stalls_keeps_its_tier(sfu):
    """A receiver whose loop is blocked 300 ms at a time (a busy machine) reports the arrivals the kernel
    saw, so the node reads no queue into the stalls: the delays it sees stay flat (a loopback link
    has none), and its estimate stays above the top tier."""
    pub = await publish_scene(sfu)
    stalls = 0
    session = {}
    stop = threading.Event()
    started = threading.Event()
    errors: list[BaseException] = []

    async def stalling_receiver() -> None:
        nonlocal stalls
        async with httpx.AsyncClient(timeout=10) as http:
            sub = await subscribe(http, f"{sfu.base}/whep/r1", sfu.token("r1", "busy", "subscribe"))
            session["sub"] = sub
            try:
                await asyncio.wait_for(sub.first_media.wait(), scaled(15))
                started.set()
                while not stop.is_set():
                    await asyncio.sleep(0.2)  # the loop runs a little
                    time.sleep(0.3)  # then decodes, blocking it: packets wait in the socket
                    stalls += 1
            finally:
                await sub.close()

    def run() -> None:
        try:
            asyncio.run(stalling_receiver())
        except BaseException as exc:  # surfaced by the test below
            errors.append(exc)
            started.set()

    thread = threading.Thread(target=run, name="stalling-receiver")
    thread.start()
    try:
        await eventually(started.is_set, what="media reaches the stalling receiver")
        assert not errors, errors
        await eventually(lambda: sfu.node.room("r1").subscribers, what="the subscriber joins")
        [state] = sfu.node.room("r1").subscribers.values()
        changes, lowest = state.allocation.changes, [state.estimator.estimate_bps]
        delays: list[float] = []  # one-way delay (arrival - send, the two clocks' offset included) of each packet reported
        on_packets = state.estimator.on_packets

        def watching(results, now):  # type: ignore[no-untyped-def]
            delays.extend(arrival - sent for sent, _, arrival in results if arrival is not None)
            on_packets(results, now)

        state.estimator.on_packets = watching

        def after_stalls() -> bool:
            lowest[0] = min(lowest[0], state.estimator.estimate_bps)
            return stalls >= 20 and state.feedback_packets >= 100

        await eventually(after_stalls, timeout=60, what="twenty stalls, reported on")
        assert state.feedback_errors == 0
        delays.sort()
        spread = delays[len(delays) * 99 // 100] - delays[len(delays) // 100]
        assert spread < 0.15, f"the node saw the stalls as delay: {spread * 1000:.0f} ms"  # read when stalled: ~300 ms
        assert state.allocation.tier.name == "360p" and state.allocation.changes == changes
        assert lowest[0] / 1000 >= state.allocation.cost_kbps(state.allocation.index)
    finally:
        stop.set()
        await asyncio.to_thread(thread.join, scaled(20))
        await pub.close()
    assert not errors, errors
