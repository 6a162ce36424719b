"""`python -m loadtests.scrape_media`: a subscriber's frame rate with and without `/metrics` scraped in a loop.

    python -m loadtests.scrape_media [--requests 10000] [--seconds 10]

A private `vcs serve` (its own data directory, a free loopback port) first
gets `--requests` requests with made-up methods (`XA1B2C3... /healthz`, each
method new, as docs/metrics.md describes). Then the synthetic scene is
published as the room's host over WHIP into its embedded SFU and one
count-only WHEP subscriber receives it. The subscriber's video frames (RTP
packets with the marker bit) are counted over a window of `--seconds` with
nothing else going on, then over a second window while another task scrapes
`/metrics` back to back. One line per window, then the summary line:

    idle_fps=... scraping_fps=... ratio=... scrapes=... scrape_ms_p50=... scrape_ms_max=...

Everything is stopped within a time bound, whatever happens. Timings are
figures, not a verdict: the exit status is 0 when both windows received video.
docs/metrics.md has the figures measured here.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from loadtests.cli import ServedDeployment
from rtc.ice import restrict_host_addresses
from rtc.rtp_stats import RtpCounter
from rtc.synthetic_media import TIERS, AudioPattern, VideoLoop
from rtc.whip_client import MediaError, publish, subscribe
from vcs.config import Settings
from vcs.media_tokens import mint_media_token

ROOM = "scrape-media"
TIER = "720p"  # what the meeting host publishes (agent.fleet)
FPS = 15  # as agents publish
CONCURRENCY = 8  # clients sending the made-up methods
FIRST_VIDEO_S = 60.0  # for the subscriber's first video frames, on a busy machine
POLL_S = 0.01  # how often a window reads the frame counter, for the longest gap


@dataclass(frozen=True)
class Window:
    seconds: float
    frames: int
    packets: int
    bytes: int
    longest_gap_ms: float

    @property
    def fps(self) -> float:
        return self.frames / self.seconds

    def line(self, name: str) -> str:
        return (f"{name}: {self.seconds:.1f} s, {self.frames} frames ({self.fps:.1f} fps), "
                f"{self.packets / self.seconds:.0f} packets/s, {self.bytes * 8 / self.seconds / 1000:.0f} kbps, "
                f"longest gap between frames {self.longest_gap_ms:.0f} ms")  # fmt: skip


async def send_made_up_methods(url: str, count: int) -> None:
    """`count` requests, each with a method never seen before; the answers (405 or 400) do not matter."""
    left = iter(range(count))
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:

        async def client() -> None:
            for _ in left:
                await http.request(f"X{secrets.token_hex(6).upper()}", "/healthz")

        await asyncio.gather(*(client() for _ in range(CONCURRENCY)))


async def measure(video: RtpCounter, seconds: float) -> Window:
    """What `video` received over the next `seconds`, with the longest time between two frames."""
    frames, packets, octets = video.frames, video.media_packets, video.bytes
    started = last_frame = time.monotonic()
    seen, gap = frames, 0.0
    while (now := time.monotonic()) < started + seconds:
        await asyncio.sleep(POLL_S)
        if video.frames != seen:
            seen, gap, last_frame = video.frames, max(gap, now - last_frame), now
    gap = max(gap, now - last_frame)
    return Window(now - started, video.frames - frames, video.media_packets - packets, video.bytes - octets, gap * 1000)


async def scrape(http: httpx.AsyncClient, stop: asyncio.Event, took_ms: list[float]) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        (await http.get("/metrics")).raise_for_status()
        took_ms.append((time.perf_counter() - started) * 1000)


async def run(served: ServedDeployment, requests: int, seconds: float) -> tuple[Window, Window, list[float]]:
    await send_made_up_methods(served.url, requests)
    print(f"scrape_media: {requests} requests with made-up methods sent", file=sys.stderr, flush=True)
    key = Settings.load(served.env).secret_key
    spec = TIERS[TIER]
    video = VideoLoop(spec.width, spec.height, bitrate_kbps=spec.video_kbps, fps=FPS, seconds=4)
    audio = AudioPattern()
    sessions = []
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
        try:
            await video.start()
            await audio.start()
            token = mint_media_token(key, room=ROOM, identity="central", role="publish", host=True)
            sessions.append(await publish(http, f"{served.url}/sfu/whip/{ROOM}", token, [audio.track(muted=False), video.track()]))
            token = mint_media_token(key, room=ROOM, identity="scrape-viewer", role="subscribe")
            sessions.append(viewer := await subscribe(http, f"{served.url}/sfu/whep/{ROOM}", token))
            received = viewer.counters["video"]
            deadline = time.monotonic() + FIRST_VIDEO_S
            while received.frames < FPS:  # a second of video: the keyframe is in and the tier settled
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the subscriber received {received.frames} video frames in {FIRST_VIDEO_S:.0f} s")
                await asyncio.sleep(0.1)
            idle = await measure(received, seconds)
            print(idle.line("idle"), flush=True)
            stop, took_ms = asyncio.Event(), []
            scraper = asyncio.create_task(scrape(http, stop, took_ms))
            try:
                scraping = await measure(received, seconds)
            finally:
                stop.set()
                await scraper
            print(scraping.line("scraping") + f", {len(took_ms)} scrapes", flush=True)
            return idle, scraping, took_ms
        finally:
            for session in sessions:
                await session.close()
            await video.stop()
            await audio.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.scrape_media", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000, help="requests with made-up methods first (default 10000)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each window (default 10)")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="vcs-scrape-"))
    env = {**os.environ, "VCS_SECRET_KEY": secrets.token_urlsafe(40)}
    env.pop("VCS_REDIS_URL", None)  # the private server starts its own
    served = ServedDeployment(workdir / "var", env, workdir / "serve.log")
    bound = 120 + args.requests / 50 + FIRST_VIDEO_S + 2 * args.seconds  # seconds, on a busy machine
    restrict_host_addresses(["127.0.0.1"])
    try:
        served.start()
        idle, scraping, took_ms = asyncio.run(asyncio.wait_for(run(served, args.requests, args.seconds), bound))
    except (TimeoutError, MediaError, httpx.HTTPError, OSError) as exc:
        print(f"scrape_media: {type(exc).__name__}: {exc} (server log: {workdir / 'serve.log'})", file=sys.stderr)
        return 2
    finally:
        served.stop()
    ratio = scraping.fps / idle.fps if idle.fps else 0.0
    print(f"idle_fps={idle.fps:.1f} scraping_fps={scraping.fps:.1f} ratio={ratio:.2f} scrapes={len(took_ms)} "
          f"scrape_ms_p50={statistics.median(took_ms) if took_ms else 0:.1f} scrape_ms_max={max(took_ms, default=0):.1f}")  # fmt: skip
    return 0 if idle.frames and scraping.frames else 1


if __name__ == "__main__":
    sys.exit(main())
