"""``vcs bench sfu``: subscribers per core, this SFU against stock aiortc.

Each run starts, as separate processes on 127.0.0.1: a node (``python -m
sfu.bench node``), one publisher sending a pre-encoded synthetic scene (VP8
640x360 at about 500 kbps, 30 fps) and a 20 ms Opus tone, and a few processes
of counting WHEP subscribers (``sfu.bench_peers``). After a warm-up it reads
the node's CPU time from ``/proc/<pid>/stat`` over the measured window while
the subscribers count what they receive. The same is then done with the
stock ``MediaRelay`` node (``sfu.baseline``), usually with fewer subscribers,
and the figures are reported per core. The last line printed is::

    subscribers_per_core=X baseline_subscribers_per_core=Y ratio=Z loss_pct=L
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import sys
import time
from dataclasses import dataclass

import httpx

__all__ = ["BenchResult", "main", "run_bench", "run_relay_batching_bench"]

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
BENCH_KBPS = 500
BENCH_TIER = f"bench:640x360@{BENCH_KBPS}"
# the project's relay node taking the tier from an origin (`run_relay_batching_bench`): relayed video
# pushed a frame at a time (the node's way), or packet by packet
RELAY_NODE_MODES = ("relay-node", "relay-node-per-packet")


@dataclass
class BenchResult:
    mode: str
    subscribers: int
    seconds: float
    cores: float
    system_share: float
    loss_pct: float
    kbps_mean: float
    kbps_min: float
    fps_mean: float
    peers_cores: float
    auth_failures: int
    tiers: list

    @property
    def per_core(self) -> float:
        return self.subscribers / self.cores if self.cores > 0 else float("inf")

    def describe(self) -> str:
        encoders = "".join(
            f"\n{'':16}tier {t['tier']}: {t['frames']} frames encoded, {t['dropped']} dropped, {t['keyframes']} keyframes, {t.get('encode_ms')} ms CPU per encode"
            for t in self.tiers
        )
        return (
            f"{self.mode:>14}: {self.subscribers:4d} subscribers, node {self.cores * 100:6.1f}% of a core "
            f"({self.system_share * 100:.0f}% in the kernel) -> {self.per_core:7.1f} per core; per subscriber {self.kbps_mean:6.0f} kbps {self.fps_mean:.1f} fps "
            f"(min {self.kbps_min:.0f}), loss {self.loss_pct:.3f}%; peers used {self.peers_cores * 100:.0f}% of a core"
        ) + encoders


def process_cpu_times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process and all its threads, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS


def process_cpu_seconds(pid: int) -> float:
    return sum(process_cpu_times(pid))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _spawn(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )


async def _expect(proc: asyncio.subprocess.Process, prefix: str, timeout: float) -> str:
    assert proc.stdout is not None
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout)).decode()
        if not line:
            raise RuntimeError(f"a benchmark process exited before printing {prefix!r}")
        if line.startswith(prefix):
            return line.strip()


async def _say(proc: asyncio.subprocess.Process, line: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write((line + "\n").encode())
    await proc.stdin.drain()


async def _wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the node did not come up at {url}")


async def _stop(proc: asyncio.subprocess.Process, timeout: float = 15.0) -> None:
    if proc.returncode is None:
        if proc.stdin is not None and not proc.stdin.is_closing():
            try:
                await _say(proc, "EXIT")
            except (ConnectionError, RuntimeError):
                pass
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()


async def measure(
    mode: str, subscribers: int, seconds: float, *, processes: int, warmup: float, profile: str | None = None
) -> BenchResult:
    """One run: a node in ``mode`` (sfu, relay-packets, relay-reencode, or a relay: ``RELAY_NODE_MODES``).

    ``profile``: a path; if ``py-spy`` is on PATH, the node is sampled over
    the window into that file (raw/collapsed format).
    """
    env = dict(os.environ)
    env["VCS_BENCH_SECRET"] = secrets.token_hex(32)
    env.setdefault("PYTHONUNBUFFERED", "1")
    port = _free_port()
    base = f"http://127.0.0.1:{port}/sfu"
    node = await _spawn("-m", "sfu.bench", "node", "--mode", mode, "--port", str(port), env=env)
    peers: list[asyncio.subprocess.Process] = []
    try:
        await _wait_http(f"{base}/metrics", 30)
        publish_base = base
        if mode in RELAY_NODE_MODES:  # the measured node is a relay: the scene is published on an origin of its own
            origin_port = _free_port()
            publish_base = f"http://127.0.0.1:{origin_port}/sfu"
            peers.append(await _spawn("-m", "sfu.bench", "node", "--mode", "sfu", "--port", str(origin_port), env=env))
            await _wait_http(f"{publish_base}/metrics", 30)
        publisher = await _spawn("-m", "sfu.bench_peers", "publish", "--base", publish_base, env=env)
        peers.append(publisher)
        await _expect(publisher, "READY", 60)
        if mode in RELAY_NODE_MODES:
            await _open_relay_room(base, publish_base, env["VCS_BENCH_SECRET"])
        await asyncio.sleep(1.0)
        processes = max(1, min(processes, subscribers))
        counts = [subscribers // processes + (1 if i < subscribers % processes else 0) for i in range(processes)]
        subs = []
        for i, count in enumerate(counts):
            proc = await _spawn(
                "-m", "sfu.bench_peers", "subscribe", "--base", base, "--count", str(count), "--prefix", f"p{i}", env=env
            )
            subs.append(proc)
            peers.append(proc)
        for proc in subs:
            await _expect(proc, "READY", 60 + subscribers * 0.5)
        await asyncio.sleep(warmup)
        peer_cpu0 = sum(process_cpu_seconds(p.pid) for p in peers)
        (user0, sys0), t0 = process_cpu_times(node.pid), time.monotonic()
        for proc in subs:
            await _say(proc, "START")
        spy = None
        if profile and shutil.which("py-spy"):
            spy = await asyncio.create_subprocess_exec(
                "py-spy", "record", "--pid", str(node.pid), "--duration", str(int(seconds)), "--rate", "250",
                "--format", "raw", "--output", profile, "--nonblocking",
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )
        await asyncio.sleep(seconds)
        (user1, sys1), t1 = process_cpu_times(node.pid), time.monotonic()
        peer_cpu1 = sum(process_cpu_seconds(p.pid) for p in peers)
        room_stats = await _room_stats(base, env["VCS_BENCH_SECRET"]) if mode == "sfu" else None
        for proc in subs:
            await _say(proc, "STOP")
        rows = []
        for proc in subs:
            rows.extend(json.loads(await _expect(proc, "[", 30)))
        if spy is not None:
            await spy.wait()
    finally:
        for proc in peers:
            await _stop(proc)
        if node.returncode is None:
            node.send_signal(signal.SIGINT)
        await _stop(node)
    expected = sum(r["expected"] for r in rows)
    received = sum(r["received"] for r in rows)
    kbps = [r["kbps"] for r in rows] or [0.0]
    return BenchResult(
        mode=mode,
        subscribers=len(rows),
        seconds=t1 - t0,
        cores=(user1 + sys1 - user0 - sys0) / (t1 - t0),
        system_share=(sys1 - sys0) / max(1e-9, user1 + sys1 - user0 - sys0),
        loss_pct=100.0 * max(0, expected - received) / expected if expected else 100.0,
        kbps_mean=sum(kbps) / len(kbps),
        kbps_min=min(kbps),
        fps_mean=sum(r["fps"] for r in rows) / max(1, len(rows)),
        peers_cores=(peer_cpu1 - peer_cpu0) / (t1 - t0),
        auth_failures=sum(r["auth_failures"] for r in rows),
        tiers=(room_stats or {}).get("tiers", []),
    )


async def _open_relay_room(base: str, origin_base: str, secret: str) -> None:
    from vcs.media_tokens import mint_media_token

    token = mint_media_token(secret, room="bench", identity="bench", role="control")
    body = {"origin": origin_base.removesuffix("/sfu"), "origin_node": "sfu-bench"}
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.put(f"{base}/rooms/bench", json=body, headers={"Authorization": f"Bearer {token}"})
        response.raise_for_status()


async def _room_stats(base: str, secret: str) -> dict | None:
    from vcs.media_tokens import mint_media_token

    token = mint_media_token(secret, room="*", identity="bench", role="control")
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.get(f"{base}/rooms", headers={"Authorization": f"Bearer {token}"})
            rooms = response.json()["rooms"]
            return rooms[0] if rooms else None
    except (httpx.HTTPError, ValueError, KeyError):
        return None


# how many subscribers each baseline gets by default: stock re-encoding costs
# about an eighth of a core per subscriber here, packet relaying far less
BASELINE_DEFAULT_SUBSCRIBERS = {"relay-reencode": 6, "relay-packets": 40}


async def run_bench(
    subscribers: int,
    seconds: float,
    *,
    baseline_subscribers: int | None = None,
    baseline_mode: str = "relay-reencode",
    also: tuple[str, ...] = ("relay-packets",),
    processes: int = 3,
    warmup: float = 4.0,
    profile: str | None = None,
    out=print,
) -> tuple[BenchResult, BenchResult]:
    """Measure this SFU, then the baseline named by ``baseline_mode`` (the
    last line's comparison), then the modes in ``also`` for context."""
    out(f"machine: {os.cpu_count()} cores, {_cpu_model()}, Python {sys.version.split()[0]}, load {_loadavg()}")
    fast = await measure("sfu", subscribers, seconds, processes=processes, warmup=warmup, profile=profile)
    out(fast.describe())
    results = {}
    for mode in (baseline_mode, *[m for m in also if m != baseline_mode]):
        n = baseline_subscribers if mode == baseline_mode and baseline_subscribers else None
        n = min(subscribers, n or BASELINE_DEFAULT_SUBSCRIBERS.get(mode, 10))
        results[mode] = await measure(mode, n, seconds, processes=max(1, min(processes, n)), warmup=warmup)
        out(results[mode].describe())
    base = results[baseline_mode]
    for mode, result in results.items():
        if mode != baseline_mode:
            out(f"(for context: {fast.per_core / result.per_core:.1f} times the per-core figure of {mode})")
    for result in (fast, *results.values()):
        if result.fps_mean < 0.95 * 30:
            out(
                f"WARNING: {result.mode} delivered {result.fps_mean:.1f} fps of 30: the machine could not "
                "sustain this run (too many subscribers, or other load); its per-core figure flatters it"
            )
        if result.kbps_mean < 0.8 * BENCH_KBPS:
            # the publisher's own encoder follows the node's REMB; a softer picture re-encodes smaller
            out(
                f"WARNING: {result.mode} delivered {result.kbps_mean:.0f} kbps per subscriber, well under the "
                f"{BENCH_KBPS} kbps target: fewer bytes per subscriber, so its per-core figure flatters it"
            )
    ratio = fast.per_core / base.per_core if base.per_core else float("inf")
    out(
        f"subscribers_per_core={fast.per_core:.0f} baseline_subscribers_per_core={base.per_core:.0f} "
        f"ratio={ratio:.1f} loss_pct={fast.loss_pct:.3f}"
    )
    return fast, base


async def run_relay_batching_bench(subscribers: int, seconds: float, *, rounds: int = 2, processes: int = 3,
                                   warmup: float = 4.0, out=print) -> dict[str, list[BenchResult]]:  # fmt: skip
    """A relay's fan-out of one tier to `subscribers`: relayed video pushed a frame at a time (the
    node's way) against packet by packet, alternating `rounds` times so both see the same machine."""
    out(f"machine: {os.cpu_count()} cores, {_cpu_model()}, Python {sys.version.split()[0]}, load {_loadavg()}")
    results: dict[str, list[BenchResult]] = {mode: [] for mode in RELAY_NODE_MODES}
    for _ in range(rounds):
        for mode in RELAY_NODE_MODES:
            result = await measure(mode, subscribers, seconds, processes=processes, warmup=warmup)
            results[mode].append(result)
            out(result.describe())
            if result.fps_mean < 0.95 * 30:
                out(f"WARNING: {mode} delivered {result.fps_mean:.1f} fps of 30: the machine could not sustain this run")
    mean = {mode: sum(r.cores for r in runs) / len(runs) for mode, runs in results.items()}
    out(
        f"relay_cores_frames={mean['relay-node']:.3f} relay_cores_per_packet={mean['relay-node-per-packet']:.3f} "
        f"saving_pct={100 * (1 - mean['relay-node'] / mean['relay-node-per-packet']):.0f}"
    )
    return results


def _loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def node_main(mode: str, port: int) -> None:
    """The node process of one run."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from rtc.ice import restrict_host_addresses

    restrict_host_addresses(["127.0.0.1"])
    if mode == "sfu" or mode in RELAY_NODE_MODES:
        import contextlib

        from vcs.tiers import parse_tiers

        from .app import create_sfu_app
        from .config import SfuConfig
        from .node import SfuNode

        relay = mode in RELAY_NODE_MODES
        if mode == "relay-node-per-packet":
            from .upstream import Upstream

            Upstream.batch_frames = False
        config = SfuConfig(
            public_url=f"http://127.0.0.1:{port}",
            node_id="relay-bench" if relay else "sfu-bench",
            role="relay" if relay else "origin",
            tiers=parse_tiers(BENCH_TIER),
            capacity=5000,
            max_inflight_signaling=64,
            ice_host_addresses=("127.0.0.1",),
            ice_allowed_networks=("127.0.0.0/8",),
            drain_timeout_s=0,
            fanout=os.environ.get("VCS_SFU_FANOUT", "compiled"),  # "python": the loop before the compiled one
        )
        node = SfuNode(config, secret=os.environ["VCS_BENCH_SECRET"])

        @contextlib.asynccontextmanager
        async def lifespan(app):  # type: ignore[no-untyped-def]
            async with node:
                yield

        app = Starlette(routes=[Mount("/sfu", app=create_sfu_app(node))], lifespan=lifespan)
    else:
        from .baseline import create_baseline_app, use_packet_passthrough

        if mode == "relay-packets":
            use_packet_passthrough()
        app = Starlette(routes=[Mount("/sfu", app=create_baseline_app())])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def main(argv: list[str] | None = None) -> None:
    """The node a bench run starts in its own process; the bench itself is `vcs bench sfu`."""
    parser = argparse.ArgumentParser(prog="python -m sfu.bench")
    sub = parser.add_subparsers(dest="command", required=True)
    node = sub.add_parser("node")
    node.add_argument("--mode", choices=["sfu", "relay-packets", "relay-reencode", *RELAY_NODE_MODES], required=True)
    node.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    node_main(args.mode, args.port)


if __name__ == "__main__":
    main()
