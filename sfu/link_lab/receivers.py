"""The two kinds of subscriber in the lab, both run inside its subscriber namespace.

`AiortcReceiver`: the project's WHEP client decoding (``sfu.link_lab.peers
receive``), counters read from its stdout. `ChromiumReceiver`: headless
Chromium started through ``ip netns exec`` (Playwright drives it over a pipe,
so nothing listens in the namespace), opening the node's plain WHEP page and
read with ``getStats()`` once a second (its audio loss as heard: the
samples NetEq concealed, of those it played). Both give `ReceiverSample`s with the
run's clock (``time.monotonic``, shared by every process on the machine).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
from pathlib import Path

from .figures import ReceiverSample
from .netns import LabNetwork

__all__ = ["AiortcReceiver", "CHROMIUM", "ChromiumReceiver", "Receiver"]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]


class Receiver:
    """What the runner needs of a receiver."""

    async def start(self) -> None:
        raise NotImplementedError

    async def sample(self) -> dict | None:
        """The latest counters (``frames``, ``frozen_s``, ``height``, ``audio_expected``, ``audio_lost``;
        ``audio_samples`` and ``audio_concealed`` where the receiver counts the sound it plays), or None yet."""
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    @staticmethod
    def to_sample(t: float, counters: dict) -> ReceiverSample:
        return ReceiverSample(
            t=t,
            frames=int(counters["frames"]),
            frozen_s=float(counters["frozen_s"]),
            audio_expected=int(counters["audio_expected"]),
            audio_lost=int(counters["audio_lost"]),
            height=int(counters.get("height") or 0),
            audio_samples=_int_or_none(counters.get("audio_samples")),
            audio_concealed=_int_or_none(counters.get("audio_concealed")),
        )


def _int_or_none(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


class AiortcReceiver(Receiver):
    def __init__(self, lab: LabNetwork, base: str, room: str, identity: str, env: dict[str, str]) -> None:
        self._command = lab.in_subscriber(
            sys.executable, "-m", "sfu.link_lab.peers", "receive", "--base", base, "--room", room,
            "--identity", identity, "--bind", lab.subscriber_ip,
        )  # fmt: skip
        self._env = env
        self._proc: asyncio.subprocess.Process | None = None
        self._latest: dict | None = None
        self._reader: asyncio.Task | None = None

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            *self._command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=self._env
        )
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        while line := await self._proc.stdout.readline():
            try:
                self._latest = json.loads(line)
            except ValueError:
                continue

    async def sample(self) -> dict | None:
        if self._proc is not None and self._proc.returncode is not None:
            raise RuntimeError(f"the aiortc receiver exited ({self._proc.returncode})")
        return self._latest

    async def close(self) -> None:
        proc = self._proc
        if proc is not None and proc.returncode is None:
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)


class ChromiumReceiver(Receiver):
    def __init__(self, lab: LabNetwork, page_url: str, whep_url: str, token: str) -> None:
        self._lab = lab
        self._page_url, self._whep_url, self._token = page_url, whep_url, token
        self._dir: str | None = None
        self._playwright = None
        self._browser = None
        self._page = None

    async def start(self) -> None:
        if not CHROMIUM.exists():
            raise RuntimeError(f"{CHROMIUM} is not installed (apt-get install chromium)")
        from playwright.async_api import async_playwright

        # Playwright starts "the browser" with its own arguments: this one runs Chromium in the namespace
        self._dir = tempfile.mkdtemp(prefix="vcs-links-")
        wrapper = Path(self._dir) / "chromium-in-netns"
        wrapper.write_text(f'#!/bin/sh\nexec {" ".join(self._lab.in_subscriber(str(CHROMIUM)))} "$@"\n')
        wrapper.chmod(0o755)
        self._playwright = await async_playwright().start()
        self._browser = await self._playwright.chromium.launch(executable_path=str(wrapper), args=CHROMIUM_ARGS, headless=True)
        self._page = await self._browser.new_page()
        await self._page.goto(self._page_url, timeout=30_000)
        await self._page.evaluate("([url, token]) => receive(url, token)", [self._whep_url, self._token])

    async def sample(self) -> dict | None:
        if self._page is None:
            return None
        stats = await self._page.evaluate("sample()")
        video, audio = stats.get("video") or {}, stats.get("audio") or {}
        if not video and not audio:
            return None
        lost = max(0, int(audio.get("packetsLost", 0)))
        return {
            "state": stats.get("state"),
            "frames": video.get("framesDecoded", 0),
            "frozen_s": video.get("totalFreezesDuration", 0.0),
            "height": video.get("frameHeight", 0),
            "audio_expected": int(audio.get("packetsReceived", 0)) + lost,
            "audio_lost": lost,
            # what the listener hears: NetEq conceals what neither arrived nor was rebuilt from RED
            "audio_samples": audio.get("totalSamplesReceived"),
            "audio_concealed": audio.get("concealedSamples"),
        }

    async def close(self) -> None:
        for closing in (self._browser, self._playwright):
            if closing is not None:
                try:
                    await (closing.close() if closing is self._browser else closing.stop())
                except Exception:  # already gone: nothing left to close
                    pass
        self._browser = self._playwright = self._page = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
