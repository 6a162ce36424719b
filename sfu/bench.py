"""``vcs bench sfu``: subscribers per core, this SFU against stock aiortc.

Each run starts, as separate processes on 127.0.0.1: a node (``python -m
sfu.bench node``), one publisher sending a pre-encoded synthetic scene (VP8
640x360 at about 500 kbps, 30 fps) and a 20 ms Opus tone, and a few processes
of WHEP subscribers (``sfu.bench_peers``) that all ask to join at once: the
join rate is the subscribers connected over the node's CPU seconds meanwhile.
Most subscribers are sinks whose SRTP the kernel counts (``sfu.bench_sink``),
one in ``SAMPLE_EVERY`` decrypts and counts in full. After a warm-up the
bench reads the node's CPU time from ``/proc/<pid>/stat`` over a window at N
subscribers, lets half of them leave, and measures again: the slope is the
marginal cost per subscriber. The node is run so "after" (its defaults) and
"before" (``BEFORE_ENV``: one socket per peer, the Python fan-out, libsrtp), then
aiortc's stock ``MediaRelay`` relaying packets (``sfu.baseline``) with fewer
subscribers as the yardstick. The last line printed is::

    subscribers_per_core=X baseline_subscribers_per_core=Y ratio=Z loss_pct=L relay_ratio=R marginal_us_per_subscriber_second=M joins_per_second_per_core=J
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
    """One measured window of one node at one subscriber count."""

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
    joined: int = 0
    sinks: int = 0  # of `subscribers`, counted in the kernel; the others were full counting subscribers
    sink_pps: float = 0.0  # SRTP packets per second per sink over the window
    receiving: int = 0  # subscribers that received packets in the window

    @property
    def per_core(self) -> float:
        return self.subscribers / self.cores if self.cores > 0 else float("inf")

    def describe(self) -> str:
        encoders = "".join(
            f"\n{'':16}tier {t['tier']}: {t['frames']} frames encoded, {t['dropped']} dropped, {t['keyframes']} keyframes, {t.get('encode_ms')} ms CPU per encode"
            for t in self.tiers
        )
        sinks = f"; {self.sinks} sinks at {self.sink_pps:.0f} packets/s each" if self.sinks else ""
        return (
            f"{self.mode:>14}: {self.subscribers:4d} subscribers, node {self.cores * 100:6.1f}% of a core "
            f"({self.system_share * 100:.0f}% in the kernel) -> {self.per_core:7.1f} per core; per full subscriber {self.kbps_mean:6.0f} kbps {self.fps_mean:.1f} fps "
            f"(min {self.kbps_min:.0f}), loss {self.loss_pct:.3f}%{sinks}; {self.receiving} receiving; peers used {self.peers_cores * 100:.0f}% of a core"
        ) + encoders


@dataclass
class JoinResult:
    """Subscribers all asking to join at once, from the first request to the last one connected."""

    wanted: int
    joined: int
    seconds: float
    node_cpu_s: float  # CPU seconds the node used meanwhile

    @property
    def per_second_per_core(self) -> float:
        return self.joined / self.node_cpu_s if self.node_cpu_s > 0 else float("inf")

    def describe(self, mode: str) -> str:
        return (
            f"{mode:>14}: {self.joined} of {self.wanted} subscribers joined at once in {self.seconds:.1f} s, the node using "
            f"{self.node_cpu_s:.1f} CPU seconds -> {self.per_second_per_core:.1f} joins per second per core"
        )


@dataclass
class NodeRun:
    """A node's windows (one per subscriber count, largest first), its join storm and its sinks' totals."""

    mode: str
    windows: list[BenchResult]
    joins: JoinResult | None
    sink_expected: int = 0  # SRTP packets the node sent its remaining sinks over their whole session
    sink_lost: int = 0  # of those, how many the sinks' sockets never saw
    full_expected: int = 0
    full_lost: int = 0

    @property
    def loss_pct(self) -> float:
        expected = self.sink_expected + self.full_expected
        return 100.0 * (self.sink_lost + self.full_lost) / expected if expected else 100.0

    @property
    def marginal_us(self) -> float:
        """Node CPU microseconds per subscriber-second: the slope between the first two windows."""
        if len(self.windows) < 2 or self.windows[0].subscribers == self.windows[1].subscribers:
            return float("nan")
        hi, lo = self.windows[0], self.windows[1]
        return 1e6 * (hi.cores - lo.cores) / (hi.subscribers - lo.subscribers)

    def describe(self) -> list[str]:
        lines = [w.describe() for w in self.windows]
        if self.joins is not None:
            lines.append(self.joins.describe(self.mode))
        if self.sink_expected:
            lines.append(
                f"{self.mode:>14}: the remaining sinks lost {self.sink_lost} of the {self.sink_expected} packets the node "
                f"sent them over their sessions; loss over sinks and full subscribers {self.loss_pct:.3f}%"
            )
        if len(self.windows) >= 2:
            lines.append(f"{self.mode:>14}: marginal cost {self.marginal_us:.1f} us of node CPU per subscriber-second")
        return lines


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


def _favour(pid: int) -> None:
    """Run a measured node ahead of the bench's own processes (its subscribers, the publisher), as on a
    machine of its own: its CPU time is the figure, but a node starved by its load generators would
    fall behind (drop frames) for want of the CPU they took. Without the right to, it runs as it is."""
    try:
        os.setpriority(os.PRIO_PROCESS, pid, NODE_NICE)
    except PermissionError:
        pass


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


# one subscriber in this many counts in full (decrypts, sequence loss, frames); the others are sinks
SAMPLE_EVERY = 25
# the env of the node "before" the shared UDP socket, the compiled fan-out and its SRTP: the same node, the old layout
BEFORE_ENV = {"VCS_SFU_UDP_PORT": "off", "VCS_SFU_FANOUT": "python", "VCS_SFU_SRTP": "libsrtp"}
BASELINE_MODES = ("relay-packets", "relay-reencode")  # stock aiortc: no per-subscriber stats, so no sinks
QUIET_WAIT_S = 20.0
NODE_NICE = -5  # the measured node's priority (``_favour``)
LEAVE_S = 60.0  # for a leaving subscriber process to delete its sessions (a saturated node answers slowly)


async def measure(
    mode: str, subscribers: int, seconds: float, *, processes: int, warmup: float, profile: str | None = None
) -> BenchResult:
    """One window of a node in ``mode`` (sfu, relay-packets, relay-reencode, or a relay: ``RELAY_NODE_MODES``).

    ``profile``: a path; if ``py-spy`` is on PATH, the node is sampled over
    the window into that file (raw/collapsed format).
    """
    run = await run_node(mode, [subscribers], seconds, processes=processes, warmup=warmup, profile=profile)
    window = run.windows[0]
    window.loss_pct = run.loss_pct
    return window


async def run_node(
    mode: str,
    counts: list[int],
    seconds: float,
    *,
    processes: int,
    warmup: float,
    env: dict[str, str] | None = None,
    sample_every: int = SAMPLE_EVERY,
    profile: str | None = None,
) -> NodeRun:
    """A node, its subscribers joining all at once, then a window at each of `counts` (largest first).

    With two counts the subscriber processes are split so that leaving ones take the node from the
    first count to the second. Sinks (all but the sampled subscribers; none on the stock baselines,
    which have no per-subscriber figures) are checked at the end: the publisher leaves, the node
    goes quiet, and what it says it sent each remaining sink is compared with the sink's count.
    """
    if len(counts) not in (1, 2) or counts != sorted(counts, reverse=True) or counts[-1] < 1:
        raise ValueError("one or two subscriber counts, the largest first")
    env = {**os.environ, **(env or {})}
    env["VCS_BENCH_SECRET"] = secret = secrets.token_hex(32)
    env.setdefault("PYTHONUNBUFFERED", "1")
    if mode in BASELINE_MODES:
        sample_every = 1
    port = _free_port()
    base = f"http://127.0.0.1:{port}/sfu"
    node = await _spawn("-m", "sfu.bench", "node", "--mode", mode, "--port", str(port), env=env)
    _favour(node.pid)  # before it starts its threads: they inherit its priority
    peers: list[asyncio.subprocess.Process] = []
    windows: list[BenchResult] = []
    run = NodeRun(mode, windows, None)
    try:
        await _wait_http(f"{base}/metrics", 30)
        publish_base = base
        if mode in RELAY_NODE_MODES:  # the measured node is a relay: the scene is published on an origin of its own
            origin_port = _free_port()
            publish_base = f"http://127.0.0.1:{origin_port}/sfu"
            peers.append(await _spawn("-m", "sfu.bench", "node", "--mode", "sfu", "--port", str(origin_port), env=env))
            await _wait_http(f"{publish_base}/metrics", 30)
        # The project's node is joined as at a meeting's warm-up: the room is open, the communes join, then the
        # host starts (so the join figure is the joins' own cost). The stock baselines need the publisher first.
        at_warm_up = mode == "sfu"
        publisher = None
        if at_warm_up:
            await _open_room(base, secret)
        else:
            publisher = await _start_publisher(publish_base, env, peers)
        if mode in RELAY_NODE_MODES:
            await _open_relay_room(base, publish_base, secret)
        await asyncio.sleep(1.0)
        groups = _process_counts(counts, processes)
        subs = []
        cpu0, t0 = process_cpu_seconds(node.pid), time.monotonic()
        for i, count in enumerate(groups):
            args = ["--count", str(count), "--prefix", f"p{i}", "--concurrency", str(count), "--sample-every", str(sample_every)]
            subs.append(await _spawn("-m", "sfu.bench_peers", "subscribe", "--base", base, *args, env=env))
        peers.extend(subs)
        joined = [0] * len(subs)
        for i, proc in enumerate(subs):
            joined[i] = int((await _expect(proc, "READY", 120 + counts[0] * 0.5)).split()[1])
        run.joins = JoinResult(counts[0], sum(joined), time.monotonic() - t0, process_cpu_seconds(node.pid) - cpu0)
        if publisher is None:
            publisher = await _start_publisher(publish_base, env, peers)
            await asyncio.sleep(warmup)  # the host's first seconds (its encoder's start, keyframes) are not the steady state
        live = list(subs)
        for count in counts:
            while sum(joined[: len(live)]) > count and len(live) > 1:
                leaving = live.pop()
                await _stop(leaving, LEAVE_S)
            if count != counts[0]:
                await _wait_subscribers(base, secret, sum(joined[: len(live)]))
            await asyncio.sleep(warmup)
            window, rows = await _window(mode, node.pid, base, secret, live, peers, seconds, profile if count == counts[0] else None)
            windows.append(window)
            full = [r for r in rows if not r.get("sink")]
            run.full_expected += sum(r["expected"] for r in full)
            run.full_lost += max(0, sum(r["expected"] for r in full) - sum(r["received"] for r in full))
        if any(w.sinks for w in windows):
            run.sink_expected, run.sink_lost = await _sink_totals(base, secret, publisher, live)
    finally:
        for proc in peers:
            await _stop(proc)
        if node.returncode is None:
            node.send_signal(signal.SIGINT)
        await _stop(node)
    return run


def _process_counts(counts: list[int], processes: int) -> list[int]:
    """Subscribers per process; with two counts the first processes hold the smaller count."""

    def spread(n: int, k: int) -> list[int]:
        k = max(1, min(k, n))
        return [n // k + (1 if i < n % k else 0) for i in range(k)]

    if len(counts) == 1 or counts[1] == counts[0]:
        return spread(counts[0], processes)
    half = max(1, processes // 2)
    return spread(counts[1], half) + spread(counts[0] - counts[1], max(1, processes - half))


async def _window(
    mode: str, node_pid: int, base: str, secret: str, subs: list, peers: list, seconds: float, profile: str | None
) -> tuple[BenchResult, list[dict]]:
    """The node's CPU and what the subscribers of `subs` received over one window."""
    peer_cpu0 = sum(process_cpu_seconds(p.pid) for p in peers if p.returncode is None)
    (user0, sys0), t0 = process_cpu_times(node_pid), time.monotonic()
    for proc in subs:
        await _say(proc, "START")
    spy = None
    if profile and shutil.which("py-spy"):
        spy = await asyncio.create_subprocess_exec(
            "py-spy", "record", "--pid", str(node_pid), "--duration", str(int(seconds)), "--rate", "250",
            "--format", "raw", "--output", profile, "--nonblocking",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
    await asyncio.sleep(seconds)
    (user1, sys1), t1 = process_cpu_times(node_pid), time.monotonic()
    peer_cpu1 = sum(process_cpu_seconds(p.pid) for p in peers if p.returncode is None)
    for proc in subs:
        await _say(proc, "STOP")
    rows: list[dict] = []
    for proc in subs:
        rows.extend(json.loads(await _expect(proc, "[", 30)))
    room_stats = await _room_stats(base, secret) if mode not in BASELINE_MODES else None
    if spy is not None:
        await spy.wait()
    full = [r for r in rows if not r.get("sink")]
    sinks = [r for r in rows if r.get("sink")]
    expected = sum(r["expected"] for r in full)
    received = sum(r["received"] for r in full)
    kbps = [r["kbps"] for r in full] or [0.0]
    elapsed = t1 - t0
    cpu = user1 + sys1 - user0 - sys0
    window = BenchResult(
        mode=mode,
        subscribers=len(rows),
        seconds=elapsed,
        cores=cpu / elapsed,
        system_share=(sys1 - sys0) / max(1e-9, cpu),
        loss_pct=100.0 * max(0, expected - received) / expected if expected else 100.0,
        kbps_mean=sum(kbps) / len(kbps),
        kbps_min=min(kbps),
        fps_mean=sum(r["fps"] for r in full) / max(1, len(full)),
        peers_cores=(peer_cpu1 - peer_cpu0) / elapsed,
        auth_failures=sum(r["auth_failures"] for r in full),
        tiers=(room_stats or {}).get("tiers", []),
        joined=sum(1 for r in rows if r.get("joined", True)),
        sinks=len(sinks),
        sink_pps=sum(r["received"] for r in sinks) / max(1, len(sinks)) / elapsed,
        receiving=sum(1 for r in rows if r["received"] > 0),
    )
    return window, rows


async def _wait_subscribers(base: str, secret: str, count: int, timeout: float = 180.0) -> None:
    """Until the node lists `count` subscribers (the others' sessions deleted, or their consent expired:
    a saturated node, such as "before" at 1,000, takes its time over both)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = await _room_stats(base, secret)
        if stats is not None and len(stats.get("subscribers", [])) <= count:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the node still had more than {count} subscribers after {timeout:.0f} s")


async def _sink_totals(base: str, secret: str, publisher: asyncio.subprocess.Process, subs: list) -> tuple[int, int]:
    """(packets the node sent the sinks, packets they did not receive) over their whole sessions.

    The publisher leaves first and the node's counts are read once they stop moving, so both sides
    are compared at rest: nothing in flight, no window edge to straddle.
    """
    await _say(publisher, "STOP")
    await _expect(publisher, "STOPPED", 30)
    sent: dict[str, int] = {}
    deadline = time.monotonic() + QUIET_WAIT_S
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        stats = await _room_stats(base, secret) or {}
        now = {s["identity"]: int(s.get("packets_sent") or 0) for s in stats.get("subscribers", [])}
        if now and now == sent:
            break
        sent = now
    received: dict[str, int] = {}
    for proc in subs:
        await _say(proc, "TOTALS")
        received.update(json.loads(await _expect(proc, "{", 30))["sinks"])
    expected = sum(sent.get(identity, 0) for identity in received)
    lost = sum(max(0, sent.get(identity, 0) - got) for identity, got in received.items())
    return expected, lost


async def _start_publisher(base: str, env: dict[str, str], peers: list[asyncio.subprocess.Process]) -> asyncio.subprocess.Process:
    publisher = await _spawn("-m", "sfu.bench_peers", "publish", "--base", base, env=env)
    peers.append(publisher)
    await _expect(publisher, "READY", 60)
    return publisher


async def _open_room(base: str, secret: str) -> None:
    """Open the room with the publisher as its host, as the scheduler does at warm-up."""
    from vcs.media_tokens import mint_media_token

    token = mint_media_token(secret, room="bench", identity="bench", role="control")
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.put(f"{base}/rooms/bench", json={"host": "bench-studio"}, headers={"Authorization": f"Bearer {token}"})
        response.raise_for_status()


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


# how many subscribers each stock baseline gets by default: stock re-encoding costs
# about an eighth of a core per subscriber here, packet relaying far less
BASELINE_DEFAULT_SUBSCRIBERS = {"relay-reencode": 6, "relay-packets": 40}


async def run_bench(
    subscribers: int,
    seconds: float,
    *,
    before: bool = True,
    relay_subscribers: int | None = None,
    relay: bool = True,
    processes: int = 4,
    warmup: float = 4.0,
    sample_every: int = SAMPLE_EVERY,
    profile: str | None = None,
    out=print,
) -> tuple[NodeRun, NodeRun | None, BenchResult | None]:
    """This node "after" (default settings) and "before" (`BEFORE_ENV`), each joined by `subscribers`
    at once and measured at that count and half of it, then aiortc's stock packet relay at a smaller
    count as the yardstick; prints a line per window and the summary line last."""
    out(f"machine: {os.cpu_count()} cores, {_cpu_model()}, Python {sys.version.split()[0]}, load {_loadavg()}")
    counts = [subscribers, subscribers // 2] if subscribers >= 2 else [subscribers]
    options = dict(processes=max(processes, 2), warmup=warmup, sample_every=sample_every)
    after = await run_node("sfu", counts, seconds, profile=profile, **options)
    _report("after", after, out)
    base = None
    if before:
        base = await run_node("sfu", counts, seconds, env=BEFORE_ENV, **options)
        _report("before", base, out)
    stock = None
    if relay:
        n = min(subscribers, relay_subscribers or BASELINE_DEFAULT_SUBSCRIBERS["relay-packets"])
        stock = await measure("relay-packets", n, seconds, processes=max(1, min(processes, n)), warmup=warmup)
        out("relay-packets (aiortc's own packet relay):")
        out(stock.describe())
        _warn(stock, out)
    out(summary_line(after, base, stock))
    return after, base, stock


def summary_line(after: NodeRun, before: NodeRun | None, stock: BenchResult | None) -> str:
    """The last line of `vcs bench sfu`; a figure of a mode that was skipped is nan."""
    nan = float("nan")
    x = after.windows[0].per_core
    y = before.windows[0].per_core if before is not None else nan
    r = stock.per_core if stock is not None else nan
    j = after.joins.per_second_per_core if after.joins is not None else nan
    return (
        f"subscribers_per_core={x:.0f} baseline_subscribers_per_core={y:.0f} ratio={_ratio(x, y):.2f} "
        f"loss_pct={after.loss_pct:.3f} relay_ratio={_ratio(x, r):.1f} marginal_us_per_subscriber_second={after.marginal_us:.1f} "
        f"joins_per_second_per_core={j:.1f}"
    )


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def _report(label: str, run: NodeRun, out) -> None:  # type: ignore[no-untyped-def]
    out(f"{label}:")
    for line in run.describe():
        out(line)
    for window in run.windows:
        _warn(window, out)


def _warn(result: BenchResult, out) -> None:  # type: ignore[no-untyped-def]
    if result.fps_mean < 0.95 * 30:
        out(
            f"WARNING: {result.mode} delivered {result.fps_mean:.1f} fps of 30 at {result.subscribers} subscribers: the "
            "machine could not sustain this run (too many subscribers, or other load); its per-core figure flatters it"
        )
    if result.kbps_mean < 0.8 * BENCH_KBPS:
        # the publisher's own encoder follows the node's REMB; a softer picture re-encodes smaller
        out(
            f"WARNING: {result.mode} delivered {result.kbps_mean:.0f} kbps per subscriber, well under the "
            f"{BENCH_KBPS} kbps target: fewer bytes per subscriber, so its per-core figure flatters it"
        )
    if result.joined < result.subscribers:
        out(f"WARNING: {result.subscribers - result.joined} of {result.subscribers} subscribers of {result.mode} never joined")


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
        # the environment's VCS_SFU_* first (the bench's "before" settings among them), then the bench's own
        config = SfuConfig.from_environ(os.environ, public_url=f"http://127.0.0.1:{port}").with_changes(
            node_id="relay-bench" if relay else "sfu-bench",
            role="relay" if relay else "origin",
            tiers=parse_tiers(BENCH_TIER),
            capacity=5000,
            max_inflight_signaling=64,
            ice_host_addresses=("127.0.0.1",),
            ice_allowed_networks=("127.0.0.0/8",),
            drain_timeout_s=0,
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
