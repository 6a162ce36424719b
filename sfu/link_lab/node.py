"""The lab's node process: a real SFU node on the host side of the lab.

Run by `sfu.link_lab.run` as ``python -m sfu.link_lab.node --host IP --port P
--profile-kbps K``: the node's configuration comes from the ``VCS_SFU_*``
variables as for ``vcs sfu`` (the lab sets ``VCS_SFU_ICE_HOSTS`` and
``VCS_SFU_ICE_ALLOW`` to its own addresses), every subscriber's link profile
is ``K`` kbps (what the registry would say), and ``/lab/whep`` serves the
plain WHEP page the Chromium receiver opens, on the node's own origin.
"""

from __future__ import annotations

import argparse
import contextlib
import os

__all__ = ["WHEP_PAGE", "main"]

SECRET_ENV = "VCS_BENCH_SECRET"

WHEP_PAGE = """<!doctype html>
<meta charset="utf-8">
<title>WHEP receiver</title>
<video id="picture" autoplay muted playsinline></video>
<script>
async function receive(url, token) {
  const pc = new RTCPeerConnection({iceServers: []});
  pc.addTransceiver("audio", {direction: "recvonly"});
  pc.addTransceiver("video", {direction: "recvonly"});
  const stream = new MediaStream();
  pc.ontrack = (event) => {
    stream.addTrack(event.track);
    document.getElementById("picture").srcObject = stream;
  };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
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
  await pc.setRemoteDescription({type: "answer", sdp: await response.text()});
  window.pc = pc;
}

async function sample() {
  const out = {state: window.pc ? window.pc.connectionState : "new", video: {}, audio: {}};
  if (!window.pc) return out;
  (await window.pc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp") out[s.kind] = {
      packetsReceived: s.packetsReceived || 0, packetsLost: s.packetsLost || 0,
      framesDecoded: s.framesDecoded || 0, frameHeight: s.frameHeight || 0,
      freezeCount: s.freezeCount || 0, totalFreezesDuration: s.totalFreezesDuration || 0,
      bytesReceived: s.bytesReceived || 0, nackCount: s.nackCount || 0,
      totalSamplesReceived: s.totalSamplesReceived, concealedSamples: s.concealedSamples,
      silentConcealedSamples: s.silentConcealedSamples, fecPacketsReceived: s.fecPacketsReceived,
    };
  });
  return out;
}
</script>
"""


def main(argv: list[str] | None = None) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Mount, Route

    from sfu.allocator import LinkInfo
    from sfu.app import create_sfu_app
    from sfu.config import SfuConfig
    from sfu.node import SfuNode

    parser = argparse.ArgumentParser(prog="python -m sfu.link_lab.node")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--profile-kbps", type=int, required=True)
    args = parser.parse_args(argv)

    config = SfuConfig.from_environ(os.environ, public_url=f"http://{args.host}:{args.port}")
    profile = LinkInfo(downlink_kbps=args.profile_kbps, uplink_kbps=args.profile_kbps)

    async def link_lookup(identity: str) -> LinkInfo:
        return profile

    node = SfuNode(config, secret=os.environ[SECRET_ENV], link_lookup=link_lookup)

    @contextlib.asynccontextmanager
    async def lifespan(app):  # type: ignore[no-untyped-def]
        async with node:
            yield

    app = Starlette(
        routes=[Mount("/sfu", app=create_sfu_app(node)), Route("/lab/whep", lambda request: HTMLResponse(WHEP_PAGE))],
        lifespan=lifespan,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
