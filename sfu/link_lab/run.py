"""``vcs bench links``: one scenario, one receiver, against a real node.

The run: build the lab network (`LabNetwork`), start the delay/loss element
in its router namespace, the node on the host side (its ICE limited to the
lab's addresses), the synthetic host publishing 720p, then the receiver in
the subscriber namespace. Once the receiver decodes, the clock starts: the
scenario's downlink schedule is applied with ``tbf`` while the node's view of
the subscriber (tier, bitrate sent) and the receiver's counters are sampled
once a second. Then everything is stopped, the namespaces removed (also on
Ctrl-C) and the figures printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import httpx

from sfu.bench import _free_port, _wait_http
from vcs.media_tokens import mint_media_token
from vcs.tiers import Ladder

from .figures import Figures, NodeSample, ReceiverSample, compute_figures
from .netns import LabNetwork
from .node import SECRET_ENV
from .receivers import AiortcReceiver, ChromiumReceiver, Receiver
from .scenarios import Scenario

__all__ = ["LabRun", "run_scenario"]

ROOM = "links"
IDENTITY = "lab-commune"
CONNECT_TIMEOUT_S = 90.0


class LabRun:
    """Everything one run started, stopped in reverse order by `close()` (safe twice)."""

    def __init__(self) -> None:
        self.lab: LabNetwork | None = None
        self.procs: list[tuple[asyncio.subprocess.Process, bool]] = []  # (process, ends on SIGINT rather than stdin)
        self.receiver: Receiver | None = None
        self.element_counts: str | None = None

    async def spawn(self, *command: str, env: dict[str, str], interrupt: bool = False) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env
        )
        self.procs.append((proc, interrupt))
        return proc

    async def close(self) -> None:
        if self.receiver is not None:
            receiver, self.receiver = self.receiver, None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(receiver.close(), 20)
        for proc, interrupt in reversed(self.procs):
            await _stop(proc, interrupt)
        self.procs.clear()
        if self.lab is not None:
            self.lab.close()
            self.lab = None


async def _stop(proc: asyncio.subprocess.Process, interrupt: bool) -> None:
    """Close its stdin (the peers and the element end then) or send SIGINT (the node); SIGKILL if that fails."""
    if proc.stdin is not None and not proc.stdin.is_closing():
        proc.stdin.close()
    steps = ((signal.SIGINT, 10.0),) if interrupt else ((None, 5.0), (signal.SIGINT, 5.0))
    for sig, wait in (*steps, (signal.SIGKILL, None)):
        if proc.returncode is not None:
            return
        if sig is not None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
        try:
            await asyncio.wait_for(proc.wait(), wait)
        except asyncio.TimeoutError:
            continue


async def _line(proc: asyncio.subprocess.Process, prefix: str, timeout: float, what: str) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise RuntimeError(f"{what} did not start within {timeout:.0f} s")
        line = (await asyncio.wait_for(proc.stdout.readline(), left)).decode()
        if not line:
            raise RuntimeError(f"{what} exited before it was ready")
        if line.startswith(prefix):
            return line.strip()


async def _subscriber_stats(http: httpx.AsyncClient, url: str, token: str) -> dict | None:
    try:
        response = await http.get(url, headers={"Authorization": f"Bearer {token}"})
        if response.status_code != 200:
            return None
        return next((s for s in response.json().get("subscribers", []) if s.get("identity") == IDENTITY), None)
    except (httpx.HTTPError, ValueError):
        return None


async def run_scenario(
    scenario: Scenario,
    receiver_kind: str,
    seconds: float,
    *,
    out: Callable[[str], None] = print,
    samples_to: Path | None = None,
    source: tuple[str, float] = ("1280x720", 4.0),
) -> Figures:
    """Run one scenario and print its figures; the lab is always torn down.

    ``samples_to``: a directory where the run's samples are written as JSON
    (``{scenario}-{receiver}.json``), to compare runs or recompute figures.
    ``source``: the synthetic host's picture size and the length of its loop.
    """
    run = LabRun()
    try:
        return await _run(run, scenario, receiver_kind, seconds, out, samples_to, source)
    finally:
        await asyncio.shield(run.close())


async def _run(
    run: LabRun,
    scenario: Scenario,
    receiver_kind: str,
    seconds: float,
    out: Callable[[str], None],
    samples_to: Path | None,
    source: tuple[str, float],
) -> Figures:
    run.lab = lab = LabNetwork.create()
    env = dict(os.environ)
    env.update(
        {
            SECRET_ENV: secrets.token_hex(32),
            "PYTHONUNBUFFERED": "1",
            "VCS_SFU_ICE_HOSTS": lab.host_ip,
            "VCS_SFU_ICE_ALLOW": lab.network,
            "VCS_SFU_DRAIN_TIMEOUT": "0",
        }
    )
    one_way_ms = str(scenario.rtt_ms / 2)
    element = await run.spawn(
        *lab.in_router(
            sys.executable, "-m", "sfu.link_lab.impairment", "--tun", lab.tun, "--down-net", lab.subscriber_net,
            "--down-delay-ms", one_way_ms, "--up-delay-ms", one_way_ms, "--loss", str(scenario.loss),
        ),
        env=env,
    )  # fmt: skip
    await _line(element, "READY", 30, "the delay/loss element")
    schedule = scenario.schedule(seconds)
    lab.shape(schedule[0][1])

    port = _free_port()
    origin = f"http://{lab.host_ip}:{port}"
    base = f"{origin}/sfu"
    await run.spawn(
        sys.executable, "-m", "sfu.link_lab.node", "--host", lab.host_ip, "--port", str(port),
        "--profile-kbps", str(scenario.profile_kbps), env=env, interrupt=True,
    )  # fmt: skip
    await _wait_http(f"{base}/metrics", 30)
    publisher = await run.spawn(
        sys.executable, "-m", "sfu.link_lab.peers", "publish", "--base", base, "--room", ROOM, "--bind", lab.host_ip,
        "--size", source[0], "--loop-seconds", str(source[1]), env=env,
    )  # fmt: skip
    await _line(publisher, "READY", 300, "the synthetic host")

    secret = env[SECRET_ENV]
    if receiver_kind == "chromium":
        token = mint_media_token(secret, room=ROOM, identity=IDENTITY, role="subscribe", ttl=3600)
        run.receiver = ChromiumReceiver(lab, f"{origin}/lab/whep", f"{base}/whep/{ROOM}", token)
    else:
        run.receiver = AiortcReceiver(lab, base, ROOM, IDENTITY, env)
    receiver = run.receiver
    await receiver.start()

    control = mint_media_token(secret, room=ROOM, identity="lab", role="control", ttl=3600)
    room_url = f"{base}/rooms/{ROOM}"
    ladder = Ladder.from_environ(env)  # the node's, read from the same variables
    top_tier = ladder.tiers[0].name
    costs = {tier.name: float(ladder.cost_kbps(tier)) for tier in ladder.tiers}
    async with httpx.AsyncClient(timeout=5) as http:
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while True:  # the clock starts when the receiver decodes its first frames
            counters = await receiver.sample()
            if counters and counters["frames"] > 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {receiver_kind} receiver decoded nothing within {CONNECT_TIMEOUT_S:.0f} s")
            await asyncio.sleep(0.2)
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
        out(f"scenario {scenario.key} ({scenario.title}), {receiver_kind} receiver, {seconds:.0f} s; lab {lab.network}; load {load}")
        t0 = time.monotonic()
        node_samples: list[NodeSample] = []
        receiver_samples: list[ReceiverSample] = []
        pending = list(schedule[1:])
        tick = 0
        sent_mark: tuple[float, int] | None = None  # (when, the node's byte count for the subscriber then)

        async def node_stats() -> tuple[dict | None, float]:
            stats = await _subscriber_stats(http, room_url, control)
            return stats, time.monotonic() - t0  # when the count was read, give or take the reply's way back

        while (now := time.monotonic() - t0) < seconds:
            while pending and pending[0][0] <= now:
                _, kbps = pending.pop(0)
                lab.shape(kbps)
                out(f"  {now:5.1f} s: downlink {'unshaped' if kbps is None else f'{kbps} kbps'}")
            (stats, read_at), counters = await asyncio.gather(node_stats(), receiver.sample())
            t = time.monotonic() - t0
            if stats is not None:
                # the rate over this very second, from the node's byte count: its own once-a-second figure
                # would lag up to a second behind and straddle the moment the link changed
                octets = stats.get("octets_sent")
                if octets is not None and sent_mark is not None and read_at > sent_mark[0]:
                    rate = (octets - sent_mark[1]) * 8 / (read_at - sent_mark[0])
                else:
                    rate = float(stats.get("bitrate_bps") or 0)
                sent_mark = (read_at, octets) if octets is not None else None
                node_samples.append(NodeSample(t, stats.get("tier"), rate, bool(stats.get("video_repeat"))))
            if counters is not None:
                receiver_samples.append(Receiver.to_sample(t, counters))
            if stats is not None and tick % 10 == 0:
                out(
                    f"  {t:5.1f} s: tier {stats.get('tier')}{' twice' if stats.get('video_repeat') else ''},"
                    f" sending {node_samples[-1].bitrate_bps / 1000:.0f} kbps,"
                    f" loss {stats.get('loss_pct')} %, receiver {counters.get('height') if counters else '-'}p"
                )
            tick += 1
            await asyncio.sleep(max(0.0, tick - (time.monotonic() - t0)))
    audio_tier = next((tier.name for tier in ladder.tiers if tier.audio_only), None)
    figures = compute_figures(scenario, seconds, node_samples, receiver_samples, top_tier, costs, audio_tier)
    if samples_to is not None:
        samples_to.mkdir(parents=True, exist_ok=True)
        record = {
            "scenario": scenario.key,
            "receiver": receiver_kind,
            "seconds": seconds,
            "schedule": scenario.schedule(seconds),
            "costs_kbps": costs,
            "node": [asdict(s) for s in node_samples],
            "receiver_samples": [asdict(s) for s in receiver_samples],
            "figures": asdict(figures),
        }
        (samples_to / f"{scenario.key}-{receiver_kind}.json").write_text(json.dumps(record, indent=1))
    for line in figures.lines(scenario, seconds):
        out("  " + line)
    return figures
