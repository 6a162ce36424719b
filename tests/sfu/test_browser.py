"""Interop: headless Chromium (fake camera) publishes over WHIP from a page on
another origin; an aiortc subscriber receives and decodes over WHEP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from rtc.aiortc_adapter import nominated_pair
from rtc.whip_client import subscribe
from rtc.transport_cc import TWCC_URI
from tests.waiting import eventually

from .conftest import free_port, publish_scene, recv_frames, serve, small_config, track_of

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--no-sandbox",
    "--disable-gpu",
    "--allow-loopback-in-peer-connection",  # the node is on 127.0.0.1 only
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",  # the subscriber page plays its audio
]

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>WHIP test publisher</title>
<script>
async function publish(url, token) {
  const stream = await navigator.mediaDevices.getUserMedia({audio: true, video: {width: 640, height: 360}});
  const pc = new RTCPeerConnection({iceServers: []});
  for (const track of stream.getTracks()) pc.addTransceiver(track, {direction: "sendonly"});
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise(resolve => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && resolve());
    setTimeout(resolve, 3000);
  });
  const response = await fetch(url, {
    method: "POST",
    headers: {"Content-Type": "application/sdp", "Authorization": "Bearer " + token},
    body: pc.localDescription.sdp,
  });
  if (response.status !== 201) throw new Error(response.status + " " + await response.text());
  window.location_header = response.headers.get("Location");
  await pc.setRemoteDescription({type: "answer", sdp: await response.text()});
  window.pc = pc;
  return window.location_header;
}

async function subscribe(url, token) {
  const pc = new RTCPeerConnection({iceServers: []});
  pc.addTransceiver("audio", {direction: "recvonly"});
  pc.addTransceiver("video", {direction: "recvonly"});
  pc.ontrack = event => {  // play the audio out: the receiver counts samples only then
    if (event.track.kind !== "audio") return;
    const audio = new Audio();
    audio.srcObject = new MediaStream([event.track]);
    audio.play().catch(() => {});
  };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise(resolve => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && resolve());
    setTimeout(resolve, 3000);
  });
  const response = await fetch(url, {
    method: "POST",
    headers: {"Content-Type": "application/sdp", "Authorization": "Bearer " + token},
    body: pc.localDescription.sdp,
  });
  if (response.status !== 201) throw new Error(response.status + " " + await response.text());
  const answer = await response.text();
  await pc.setRemoteDescription({type: "answer", sdp: answer});
  window.sub = pc;
  return answer;
}

async function audioReceived() {
  let got = {samples: 0, concealed: 0, codec: "", packets: 0, lost: 0};
  const stats = await window.sub.getStats();
  stats.forEach(s => {
    if (s.type === "inbound-rtp" && s.kind === "audio") {
      got.samples = s.totalSamplesReceived || 0;
      got.concealed = s.concealedSamples || 0;
      got.packets = s.packetsReceived || 0;
      got.lost = s.packetsLost || 0;
      const codec = s.codecId && stats.get(s.codecId);
      got.codec = codec ? codec.mimeType : "";
    }
  });
  return got;
}

async function framesDecoded() {
  let decoded = 0;
  (await window.sub.getStats()).forEach(s => { if (s.type === "inbound-rtp" && s.kind === "video") decoded = s.framesDecoded || 0; });
  return decoded;
}
</script>
"""


@pytest.fixture
async def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    playwright_api = pytest.importorskip("playwright.async_api")
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


async def test_chromium_publishes_over_whip_and_aiortc_decodes(sfu, browser):
    port = free_port()
    page_server, page_task = await serve(Starlette(routes=[Route("/", lambda r: HTMLResponse(PAGE))]), port)
    try:
        page = await browser.new_page()
        await page.goto(f"http://127.0.0.1:{port}/")  # another origin than the node
        token = sfu.token("r1", "studio", "publish", host=True)
        location = await page.evaluate(f"publish({json.dumps(sfu.base + '/whip/r1')}, {json.dumps(token)})")
        assert location.startswith("/sfu/whip/r1/")
        await eventually(lambda: any(p.frames for p in sfu.node.room("r1").publishers.values()), timeout=20)
        # the peer the node sees is on loopback
        [publisher] = sfu.node.room("r1").publishers.values()
        pair = nominated_pair(publisher.pc.getTransceivers()[0].receiver.transport)
        assert pair.remote_addr[0] == "127.0.0.1"

        sub = await subscribe(sfu.http, f"{sfu.base}/whep/r1", sfu.token("r1", "commune-1", "subscribe"), decode=True)
        try:
            frames = await recv_frames(track_of(sub, "video"), 5, timeout=20)
            # decoded once, re-encoded once per tier: the test ladder's 360p is 320x180
            assert (frames[-1].width, frames[-1].height) == (320, 180)
        finally:
            await sub.close()
        await page.evaluate("window.pc.close()")
    finally:
        page_server.should_exit = True
        await page_task


async def test_chromium_subscribes_and_sends_transport_cc_feedback_the_node_reads(sfu, browser):
    port = free_port()
    page_server, page_task = await serve(Starlette(routes=[Route("/", lambda r: HTMLResponse(PAGE))]), port)
    pub = await publish_scene(sfu)
    try:
        page = await browser.new_page()
        await page.goto(f"http://127.0.0.1:{port}/")
        token = sfu.token("r1", "commune-1", "subscribe")
        answer = await page.evaluate(f"subscribe({json.dumps(sfu.base + '/whep/r1')}, {json.dumps(token)})")
        # the answer advertises only transport-cc, and Chromium offered it for both sections
        extmaps = [line for line in answer.split("\r\n") if line.startswith("a=extmap:")]
        assert len(extmaps) == 2 and all(line.endswith(" " + TWCC_URI) for line in extmaps)
        await eventually(lambda: sfu.node.room("r1") is not None and sfu.node.room("r1").subscribers, timeout=20)
        [state] = sfu.node.room("r1").subscribers.values()
        await eventually(lambda: state.ready and state.cc.enabled, timeout=20, what="the node numbers its packets")
        # Chromium's own feedback, parsed by the node: the wire format checked against the real thing
        await eventually(lambda: state.feedback_packets >= 10, timeout=20, what="Chromium's transport-cc feedback")
        assert state.feedback_errors == 0
        assert state.estimator.acked_bps is not None and state.estimator.acked_bps > 0
        # loopback has room: the estimate keeps the tier, no downgrade on bursts of keyframes
        await eventually(lambda: state.feedback_packets >= 50, timeout=30, what="more feedback")
        assert state.allocation.changes == 0 and state.tier_name == "360p"
        assert state.estimator.estimate_bps / 1000 >= state.allocation.cost_kbps(state.allocation.index)
        # and the packets with the extension decode
        for _ in range(100):
            if await page.evaluate("framesDecoded()") > 5:
                break
            await page.wait_for_timeout(200)
        else:
            raise AssertionError("Chromium decodes no video from the node")
        await page.evaluate("window.sub.close()")
    finally:
        await pub.close()
        page_server.should_exit = True
        await page_task


async def test_chromium_plays_red_audio_on_a_long_link(node_factory, browser):
    sfu = await node_factory(small_config(red_rtt_ms=0.0))  # every RTT counts as long
    port = free_port()
    page_server, page_task = await serve(Starlette(routes=[Route("/", lambda r: HTMLResponse(PAGE))]), port)
    pub = await publish_scene(sfu)
    try:
        page = await browser.new_page()
        await page.goto(f"http://127.0.0.1:{port}/")
        token = sfu.token("r1", "commune-1", "subscribe")
        answer = await page.evaluate(f"subscribe({json.dumps(sfu.base + '/whep/r1')}, {json.dumps(token)})")
        assert "red/48000/2" in answer.split("m=video")[0]
        await eventually(lambda: sfu.node.room("r1").subscribers, timeout=20)
        [state] = sfu.node.room("r1").subscribers.values()
        await eventually(lambda: state.stats()["audio_red"], timeout=20, what="RED audio")
        got = await page.evaluate("audioReceived()")
        start, concealed = got["samples"], got["concealed"]
        for _ in range(100):
            got = await page.evaluate("audioReceived()")
            if got["samples"] > start + 48_000:  # a second of audio played from RED packets
                # played, not concealed: the RED blocks decode
                assert got["lost"] == 0 and got["concealed"] - concealed < 0.1 * (got["samples"] - start)
                break
            await page.wait_for_timeout(200)
        else:
            raise AssertionError(f"Chromium plays no RED audio: {got}")
        await page.evaluate("window.sub.close()")
    finally:
        await pub.close()
        page_server.should_exit = True
        await page_task
