"""The lab's peer processes: the synthetic host and the aiortc receiver.

``python -m sfu.link_lab.peers publish --base URL --bind IP`` publishes the
synthetic scene at 720p (`rtc.synthetic_media`, encoded once before it
starts, which takes tens of seconds on a busy machine, then replayed) and its
Opus tone to the room, as the central studio would; it prints ``READY`` and
runs until stdin closes. ``--size 640x360 --loop-seconds 1`` starts in a few
seconds (the node then scales the picture up for 720p).

``python -m sfu.link_lab.peers receive --base URL`` (started inside the
subscriber namespace) subscribes over WHEP with `rtc.whip_client`, decodes
video and audio, and prints once a second a JSON line of its counters:
decoded frames, frozen seconds (`FreezeMeter`), the last frame's height and
the audio packets expected and lost (after aiortc's repair). It ends when
stdin closes.

Both check ICE consent as the project's agents do (`rtc.consent.tolerate_load`):
aioice alone waits 0.5 s for each check's answer, so on a 600 ms round trip
every check fails and the peer is cut off after 30 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

import httpx

from rtc.consent import tolerate_load
from rtc.ice import restrict_host_addresses
from rtc.synthetic_media import AudioPattern, VideoLoop
from rtc.whip_client import publish, subscribe
from vcs.media_tokens import mint_media_token

from .figures import FreezeMeter
from .node import SECRET_ENV

__all__ = ["main"]

PUBLISH_SIZE = (1280, 720)
PUBLISH_KBPS = 2500
LOOP_SECONDS = 4.0


async def _stdin_closed() -> None:
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while (await reader.readline()).strip() not in (b"EXIT", b""):
        pass


async def run_publisher(base: str, room: str, size: tuple[int, int], loop_seconds: float) -> None:
    token = mint_media_token(os.environ[SECRET_ENV], room=room, identity="lab-studio", role="publish", ttl=3600, host=True)
    kbps = PUBLISH_KBPS * size[0] * size[1] // (PUBLISH_SIZE[0] * PUBLISH_SIZE[1])
    video = VideoLoop(*size, bitrate_kbps=kbps, fps=30, seconds=loop_seconds)
    audio = AudioPattern()
    await video.start()
    await audio.start()
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            session = await publish(http, f"{base}/whip/{room}", token, [audio.track(muted=False), video.track()])
            print("READY", flush=True)
            await _stdin_closed()
            await session.close()
    finally:
        await video.stop()
        await audio.stop()


async def _drain(track, on_frame=None) -> None:  # type: ignore[no-untyped-def]
    while True:
        frame = await track.recv()
        if on_frame is not None:
            on_frame(frame)


async def run_receiver(base: str, room: str, identity: str) -> None:
    token = mint_media_token(os.environ[SECRET_ENV], room=room, identity=identity, role="subscribe", ttl=3600)
    meter = FreezeMeter()
    state = {"frames": 0, "height": 0}

    def on_frame(frame) -> None:  # type: ignore[no-untyped-def]
        meter.frame(time.monotonic())
        state["frames"] += 1
        state["height"] = frame.height

    async with httpx.AsyncClient(timeout=30) as http:
        session = await subscribe(http, f"{base}/whep/{room}", token, decode=True)
        drains = [asyncio.create_task(_drain(t, on_frame if t.kind == "video" else None)) for t in session.tracks]
        stop = asyncio.create_task(_stdin_closed())
        try:
            while not stop.done():
                await asyncio.wait([stop], timeout=1.0)
                now = time.monotonic()
                audio = session.counters["audio"]
                sample = {
                    "at": now,
                    "state": session.pc.connectionState,
                    "frames": state["frames"],
                    "frozen_s": round(meter.frozen_until(now), 3),
                    "height": state["height"],
                    "audio_expected": audio.expected,
                    "audio_lost": audio.lost,
                }
                print(json.dumps(sample), flush=True)
        finally:
            for task in drains:
                task.cancel()
            await asyncio.gather(*drains, return_exceptions=True)
            await session.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sfu.link_lab.peers")
    parser.add_argument("mode", choices=["publish", "receive"])
    parser.add_argument("--base", required=True, help="the node's /sfu URL")
    parser.add_argument("--room", default="links")
    parser.add_argument("--identity", default="lab-commune")
    parser.add_argument("--bind", help="the only local address ICE may use")
    parser.add_argument("--size", default="1280x720", help="the published picture (default 1280x720)")
    parser.add_argument("--loop-seconds", type=float, default=LOOP_SECONDS, help="length of the encoded loop")
    args = parser.parse_args(argv)
    if args.bind:
        restrict_host_addresses([args.bind])
    # as the agents do: consent checks that wait for a late answer (a 600 ms round trip) and prompt STUN answers
    tolerate_load()
    try:
        if args.mode == "publish":
            width, height = (int(x) for x in args.size.split("x"))
            asyncio.run(run_publisher(args.base, args.room, (width, height), args.loop_seconds))
        else:
            asyncio.run(run_receiver(args.base, args.room, args.identity))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
