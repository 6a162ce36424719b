"""``vcs bench cascade``: a national meeting's media path on one machine, measured at its relays.

Each run starts, as separate processes on 127.0.0.1: a private Redis
(`vcs.redis_server.EmbeddedRedis`), an origin and R relays (the real ``vcs sfu
--role origin|relay`` commands against that Redis), a host publishing a
synthetic scene to the origin (`sfu.bench_peers`), and N WHEP subscribers
(real ICE, DTLS and SRTP, nothing decoded) in processes of `sfu.bench_peers`:
one in `SAMPLE_EVERY` of them counts in full, the others are sinks whose
SRTP the kernel counts (`sfu.bench_sink`), so one machine drives more
subscribers per relay. A sink is receiving when it got packets in the window
and its relay sends it a video tier. The subscribers are communes of several provinces, taken in
turn from each province of the national list; each province is served by one
relay (the i-th province on relay i mod R), as the placement does, and the
subscribers alternate between the two video tiers of the bench ladder.

Every relay room is opened from the origin (``PUT /sfu/rooms/{room}`` naming
it), so each relay pulls one upstream stream per tier its subscribers use plus
the program audio. Over the measured window the bench reads the relay
processes' CPU time, then their ``/sfu/node`` figures. The last line printed is::

    subscribers=N receiving=M relays=R upstream_streams=U tiers_in_use=T hop_latency_ms=L relay_subscribers_per_core=X

``receiving``: subscribers that got video frames in the window;
``upstream_streams``: the relays' upstream subscriptions (``/sfu/node``);
``tiers_in_use``: tiers the subscribers of one relay use, the program audio
counted; ``hop_latency_ms``: the largest of the relays' p95 time from upstream
arrival to fan-out (``hop_ms_p95``); ``relay_subscribers_per_core``: N over the
CPU seconds per second the relay processes used together; the line above it
gives the per-relay figure (each relay's subscribers over its own CPU).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from vcs.divisions import communes
from vcs.media_tokens import mint_media_token
from vcs.redis_server import EmbeddedRedis

from .bench import SAMPLE_EVERY, _cpu_model, _expect, _free_port, _loadavg, _say, _stop, process_cpu_seconds

__all__ = ["CascadeResult", "measure_cascade", "pick_communes", "run_cascade_bench"]

ROOM = "bench-cascade"
ORIGIN_ID = "bench-origin"
HOST_ID = "bench-studio"
# the ladder of the run: the host's 640x360 scene encoded twice by the origin, and the program audio
LADDER = "360p:640x360@800,180p:320x180@250,audio"
VIDEO_TIERS = ("360p", "180p")
NODE_START_S = 60.0


@dataclass
class CascadeResult:
    subscribers: int
    receiving: int
    any_media: int  # subscribers that got packets of any kind (audio, or video without a whole frame)
    joined: int  # subscribers connected when the window began
    auth_failed: int  # subscribers some of whose packets failed SRTP authentication
    replayed: int  # subscribers that were sent some packets twice (refused by their replay check)
    relays: int
    upstream_streams: int
    tiers_in_use: int
    hop_latency_ms: float | None
    relay_cores: float  # CPU seconds per second, all relay processes together
    origin_cores: float
    seconds: float
    loss_pct: float
    kbps_mean: float
    fps_mean: float
    per_relay: list[dict] = field(default_factory=list)

    @property
    def relay_subscribers_per_core(self) -> float:
        return self.subscribers / self.relay_cores if self.relay_cores > 0 else float("inf")

    def last_line(self) -> str:
        hop = f"{self.hop_latency_ms:.2f}" if self.hop_latency_ms is not None else "nan"
        return (
            f"subscribers={self.subscribers} receiving={self.receiving} relays={self.relays} upstream_streams={self.upstream_streams} "
            f"tiers_in_use={self.tiers_in_use} hop_latency_ms={hop} relay_subscribers_per_core={self.relay_subscribers_per_core:.0f}"
        )

    def describe(self) -> list[str]:
        lines = [
            f"origin: {self.origin_cores * 100:.0f}% of a core; relays together: {self.relay_cores * 100:.0f}% of a core "
            f"over {self.seconds:.1f} s",
            f"per full subscriber: {self.kbps_mean:.0f} kbps, {self.fps_mean:.1f} fps, loss {self.loss_pct:.3f}%; "
            f"{self.receiving} got video, {self.any_media} any media, of {self.joined} joined; "
            f"{self.auth_failed} had packets failing SRTP authentication, {self.replayed} were sent packets twice",
        ]
        per_relay = [r["subscribers"] / r["cores"] for r in self.per_relay if r["cores"] > 0]
        if per_relay:
            lines.append(f"per relay: {min(per_relay):.0f} to {max(per_relay):.0f} subscribers per core of the relay")
        for relay in self.per_relay:
            lines.append(
                f"  {relay['id']}: {relay['subscribers']} subscribers of {relay['provinces']} provinces, "
                f"{relay['cores'] * 100:.0f}% of a core, subscribers on {', '.join(relay['tiers'])}; "
                f"upstream {relay['upstream_streams']} ({'; '.join(relay['upstream'])}), hop p95 {relay['hop_ms_p95']} ms; "
                f"{relay['switching']} switching tiers, {relay['not_connected']} not connected, {relay['sent_nothing']} sent nothing"
            )
        return lines


def pick_communes(count: int) -> list[tuple[str, str]]:
    """`count` (commune id, province code) pairs, one province after another, so a few subscribers span several provinces."""
    by_province: dict[str, list[str]] = defaultdict(list)
    for commune in communes():
        by_province[commune.province_code].append(commune.code)
    provinces = sorted(by_province)
    picked: list[tuple[str, str]] = []
    depth = 0
    while len(picked) < count:
        for province in provinces:
            if depth < len(by_province[province]) and len(picked) < count:
                picked.append((by_province[province][depth], province))
        depth += 1
    return picked


class _Nodes:
    """The `vcs sfu` processes of one run, their output in a log file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.processes: list[asyncio.subprocess.Process] = []

    async def start(self, role: str, node_id: str) -> tuple[str, asyncio.subprocess.Process]:
        port = _free_port()
        with self.log.open("ab") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "app.cli", "sfu", "--role", role, "--port", str(port),
                env={**self.env, "VCS_SFU_NODE_ID": node_id}, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out,
            )  # fmt: skip
        self.processes.append(process)
        return f"http://127.0.0.1:{port}", process

    async def stop(self) -> None:
        for process in self.processes:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                await asyncio.wait_for(process.wait(), 15)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


async def _get(http: httpx.AsyncClient, url: str, control: dict[str, str]) -> dict:
    response = await http.get(url, headers=control)
    response.raise_for_status()
    return response.json()


async def _wait_node(
    http: httpx.AsyncClient, url: str, control: dict[str, str], process: asyncio.subprocess.Process, nodes: _Nodes
) -> None:
    deadline = time.monotonic() + NODE_START_S
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise RuntimeError(f"the node at {url} exited with {process.returncode}:\n{nodes.tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if (await http.get(f"{url}/sfu/node", headers=control)).status_code == 200:
                return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the node at {url} did not come up:\n{nodes.tail()}")


async def measure_cascade(
    relays: int, subscribers: int, seconds: float, *, processes_per_relay: int = 2, warmup: float = 4.0
) -> CascadeResult:
    """One run; see the module's docstring."""
    if relays < 1 or subscribers < 1 or seconds <= 0:
        raise ValueError("relays, subscribers and seconds must be positive")
    workdir = Path(tempfile.mkdtemp(prefix="vcs-bench-cascade-"))
    redis = EmbeddedRedis(workdir / "data")
    secret = secrets.token_urlsafe(48)
    control = {"Authorization": f"Bearer {mint_media_token(secret, room='*', identity='bench', role='control', ttl=3600)}"}
    redis.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VCS_")}
    env.update(
        VCS_REDIS_URL=redis.url,
        VCS_SECRET_KEY=secret,
        VCS_BENCH_SECRET=secret,  # the peers mint their own media tokens
        VCS_DATA_DIR=str(workdir / "data"),
        VCS_LOG_LEVEL="WARNING",
        VCS_SFU_TIERS=LADDER,
        VCS_SFU_ICE_HOSTS="127.0.0.1",
        VCS_SFU_ICE_ALLOW="127.0.0.0/8",
        VCS_SFU_CAPACITY="20000",
        VCS_SFU_MAX_INFLIGHT="64",
        VCS_SFU_DRAIN_TIMEOUT="0",
        PYTHONUNBUFFERED="1",
    )
    nodes = _Nodes(env, workdir / "nodes.log")
    peers: list[asyncio.subprocess.Process] = []
    try:
        async with httpx.AsyncClient(timeout=20) as http:
            origin_url, origin = await nodes.start("origin", ORIGIN_ID)
            relay_nodes = [(f"bench-relay{i + 1}", *await nodes.start("relay", f"bench-relay{i + 1}")) for i in range(relays)]
            for url, process in [(origin_url, origin), *[(url, p) for _, url, p in relay_nodes]]:
                await _wait_node(http, url, control, process, nodes)

            publisher = await _spawn_peer(["publish", "--base", f"{origin_url}/sfu", "--room", ROOM], env)
            peers.append(publisher)
            await _expect(publisher, "READY", 180)  # a loaded machine takes its time
            for _, url, _ in relay_nodes:
                opened = await http.put(f"{url}/sfu/rooms/{ROOM}", json={"origin": origin_url, "origin_node": ORIGIN_ID}, headers=control)
                if opened.status_code >= 300:
                    raise RuntimeError(f"the relay at {url} refused the room: {opened.status_code} {opened.text}")

            # provinces onto relays in turn; each relay's communes over its subscriber processes
            placed: list[list[tuple[str, str]]] = [[] for _ in relay_nodes]
            relay_of: dict[str, int] = {}
            for commune, province in pick_communes(subscribers):
                placed[relay_of.setdefault(province, len(relay_of) % relays)].append((commune, province))
            subs: list[asyncio.subprocess.Process] = []
            for (_, url, _), members in zip(relay_nodes, placed, strict=True):
                chunks = max(1, min(processes_per_relay, len(members)))
                for k in range(chunks):
                    chunk = [commune for commune, _ in members[k::chunks]]
                    if chunk:
                        tiers = ",".join(VIDEO_TIERS[i % len(VIDEO_TIERS)] for i in range(k, len(members), chunks))
                        args = ["--base", f"{url}/sfu", "--room", ROOM, "--identities", ",".join(chunk), "--max-tiers", tiers,
                                "--sample-every", str(SAMPLE_EVERY)]  # fmt: skip
                        subs.append(await _spawn_peer(["subscribe", *args], env))
            peers.extend(subs)
            joined = 0
            for proc in subs:
                joined += int((await _expect(proc, "READY", 120 + subscribers)).split()[1])
            await asyncio.sleep(warmup)

            relay_pids = [p.pid for _, _, p in relay_nodes]
            cpu0 = {pid: process_cpu_seconds(pid) for pid in [origin.pid, *relay_pids]}
            t0 = time.monotonic()
            for proc in subs:
                await _say(proc, "START")
            await asyncio.sleep(seconds)
            cpu1 = {pid: process_cpu_seconds(pid) for pid in cpu0}
            elapsed = time.monotonic() - t0
            reports = []
            for (node_id, url, process), members in zip(relay_nodes, placed, strict=True):
                info = await _get(http, f"{url}/sfu/node", control)
                room = await _get(http, f"{url}/sfu/rooms/{ROOM}", control)
                listed = room.get("subscribers", [])
                tiers = sorted({s.get("tier") or "" for s in listed} - {""} | {"audio"})
                reports.append({
                    "id": node_id,
                    "subscribers": len(listed),
                    # the relay's side of those who got nothing: not connected, still switching, or sent nothing
                    "not_connected": sum(1 for s in listed if s.get("state") != "connected"),
                    "switching": sum(1 for s in listed if s.get("switching")),
                    "sent_nothing": sum(1 for s in listed if not s.get("packets_sent")),
                    "provinces": len({province for _, province in members}),
                    "upstream_streams": int(info.get("upstream_streams") or 0),
                    "hop_ms_p95": info.get("hop_ms_p95"),
                    "tiers": tiers,
                    "upstream": [f"{u.get('tier')}: {u.get('subscribers', '?')} subscribers" for u in room.get("upstream", [])],
                    "cores": (cpu1[process.pid] - cpu0[process.pid]) / elapsed,
                    "listed": listed,
                })  # fmt: skip
            for proc in subs:
                await _say(proc, "STOP")
            rows = []
            for proc in subs:
                rows.extend(json.loads(await _expect(proc, "[", 30)))
            video = {s.get("identity") for r in reports for s in r.pop("listed") if s.get("tier") in VIDEO_TIERS}
            for row in rows:  # a sink knows only its packet count; its relay knows the tier it sends it
                row["video"] = row["received"] > 0 and row["identity"] in video if row.get("sink") else row["fps"] > 0
    finally:
        for proc in peers:
            await _stop(proc)
        await nodes.stop()
        redis.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    full = [r for r in rows if not r.get("sink")]  # loss, rate, frames and integrity: the sampled subscribers
    expected = sum(r["expected"] for r in full)
    received = sum(r["received"] for r in full)
    hops = [float(r["hop_ms_p95"]) for r in reports if r["hop_ms_p95"] is not None]
    return CascadeResult(
        subscribers=len(rows),
        receiving=sum(1 for r in rows if r["video"]),
        any_media=sum(1 for r in rows if r["received"] > 0),
        joined=joined,
        auth_failed=sum(1 for r in full if r["auth_failures"]),
        replayed=sum(1 for r in full if r.get("replays")),
        relays=relays,
        upstream_streams=sum(r["upstream_streams"] for r in reports),
        tiers_in_use=max(len(r["tiers"]) for r in reports),
        hop_latency_ms=max(hops) if hops else None,
        relay_cores=sum(r["cores"] for r in reports),
        origin_cores=(cpu1[origin.pid] - cpu0[origin.pid]) / elapsed,
        seconds=elapsed,
        loss_pct=100.0 * max(0, expected - received) / expected if expected else 100.0,
        kbps_mean=sum(r["kbps"] for r in full) / max(1, len(full)),
        fps_mean=sum(r["fps"] for r in full) / max(1, len(full)),
        per_relay=reports,
    )


async def _spawn_peer(args: list[str], env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sfu.bench_peers", *args, env=env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )


async def run_cascade_bench(
    relays: int, subscribers: int, seconds: float, *, processes_per_relay: int = 2, out: Any = print
) -> CascadeResult:
    out(f"machine: {os.cpu_count()} cores, {_cpu_model()}, Python {sys.version.split()[0]}, load {_loadavg()}")
    result = await measure_cascade(relays, subscribers, seconds, processes_per_relay=processes_per_relay)
    for line in result.describe():
        out(line)
    if result.fps_mean < 0.95 * 30:
        out(f"WARNING: subscribers received {result.fps_mean:.1f} fps of 30: the machine could not sustain this run")
    out(result.last_line())
    return result
