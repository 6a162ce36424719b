"""The benchmark's path, tiny: real processes, a handful of subscribers."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from sfu.bench import BEFORE_ENV, NODE_NICE, _favour, measure, process_cpu_times, run_node, summary_line
from sfu.bench_cascade import measure_cascade, pick_communes
from sfu.bench_feedback import CASES, run_feedback_bench
from sfu.cli import add_bench_command


async def test_bench_path_measures_a_few_subscribers():
    result = await measure("sfu", 3, 2.0, processes=1, warmup=1.0)
    assert result.subscribers == 3
    assert result.cores > 0
    assert result.loss_pct < 5
    assert result.kbps_mean > 200  # about 500 kbps of VP8 plus Opus
    assert result.fps_mean > 20
    assert result.auth_failures == 0
    assert result.tiers and result.tiers[0]["frames"] > 0


async def test_sinks_are_counted_against_what_the_node_sent_and_half_leave():
    # 8 subscribers in two processes: 2 full counting ones and 2 sinks each; then one process leaves
    run = await run_node("sfu", [8, 4], 2.0, processes=2, warmup=1.0, sample_every=25)
    big, small = run.windows
    assert (big.subscribers, big.sinks, small.subscribers, small.sinks) == (8, 4, 4, 2)
    assert big.receiving == 8 and small.receiving == 4
    assert big.sink_pps > 50  # about 50 video and 50 audio packets a second
    assert run.sink_expected > 0 and run.loss_pct < 5
    assert run.joins is not None and run.joins.joined == 8 and run.joins.per_second_per_core > 0
    line = summary_line(run, run, big)
    assert line.startswith("subscribers_per_core=") and " marginal_us_per_subscriber_second=" in line
    assert line.split()[-1].startswith("joins_per_second_per_core=")


async def test_the_before_node_runs_with_the_old_layout():
    run = await run_node("sfu", [3], 2.0, processes=1, warmup=1.0, env=BEFORE_ENV)
    assert run.windows[0].receiving == 3 and run.loss_pct < 5


async def test_the_relay_bench_measures_the_relay():
    result = await measure("relay-node", 2, 2.0, processes=1, warmup=1.0)
    assert result.subscribers == 2 and result.cores > 0
    assert result.loss_pct < 5 and result.fps_mean > 20  # the tier came through the relay


def test_bench_command_arguments():
    parser = argparse.ArgumentParser()
    add_bench_command(parser.add_subparsers(dest="target"))
    args = parser.parse_args(["sfu", "--subscribers", "120", "--seconds", "5"])
    assert (args.subscribers, args.seconds) == (120, 5.0)
    assert args.before and args.relay
    args = parser.parse_args(["sfu", "--no-before", "--no-relay", "--sample-every", "10"])
    assert (args.subscribers, args.before, args.relay, args.sample_every) == (1000, False, False, 10)
    assert callable(args.func)


def test_cpu_times_of_this_process():
    user, system = process_cpu_times(__import__("os").getpid())
    assert user > 0 and system >= 0


async def test_cascade_bench_path_with_two_relays():
    result = await measure_cascade(2, 6, 2.0, processes_per_relay=1, warmup=1.0)
    assert result.subscribers == 6
    assert result.receiving == result.subscribers, result.describe()
    assert result.joined == result.subscribers and result.auth_failed == 0, result.describe()
    assert result.tiers_in_use == 3  # 360p, 180p and the program audio
    assert result.upstream_streams == result.relays * result.tiers_in_use, result.describe()
    assert all(relay["provinces"] == 3 for relay in result.per_relay), "each relay serves communes of its own provinces"
    assert result.hop_latency_ms is not None and result.relay_cores > 0
    line = result.last_line()
    assert line.startswith("subscribers=6 receiving=6 relays=2 upstream_streams=6 tiers_in_use=3 hop_latency_ms=")
    assert "relay_subscribers_per_core=" in line


def test_cascade_bench_command_arguments():
    parser = argparse.ArgumentParser()
    add_bench_command(parser.add_subparsers(dest="target"))
    args = parser.parse_args(["cascade", "--relays", "3", "--subscribers", "600", "--seconds", "10"])
    assert (args.relays, args.subscribers, args.seconds) == (3, 600, 10.0)
    assert callable(args.func)


def test_subscribers_span_several_provinces():
    picked = pick_communes(40)
    assert len(picked) == len({commune for commune, _ in picked}) == 40
    assert len({province for _, province in picked}) == 34  # every province before a second commune of any


async def test_the_feedback_bench_feeds_every_packet_to_the_estimator():
    lines: list[str] = []
    results = await run_feedback_bench(count=50, passes=1, out=lines.append)
    assert set(results) == {case.name for case in CASES}  # each case's 50 packets all taken, or it raises
    assert all(feedback > 0 and yardstick > 0 for feedback, yardstick in results.values())
    assert lines[-1].startswith("us_per_feedback=") and " ratio=" in lines[-1]


def test_the_measured_node_runs_ahead_of_the_bench_load():
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)  # lives until told
    try:
        _favour(proc.pid)
        # lowering a nice value needs root: else it is left as the child inherited it
        expected = NODE_NICE if os.geteuid() == 0 else os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, proc.pid) == expected
    finally:
        proc.kill()
        proc.wait()
