"""The benchmark's path, tiny: real processes, a handful of subscribers."""

from __future__ import annotations

import argparse

from sfu.bench import measure, process_cpu_times
from sfu.bench_cascade import measure_cascade, pick_communes
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


async def test_the_relay_bench_measures_the_relay():
    result = await measure("relay-node", 2, 2.0, processes=1, warmup=1.0)
    assert result.subscribers == 2 and result.cores > 0
    assert result.loss_pct < 5 and result.fps_mean > 20  # the tier came through the relay


def test_bench_command_arguments():
    parser = argparse.ArgumentParser()
    add_bench_command(parser.add_subparsers(dest="target"))
    args = parser.parse_args(["sfu", "--subscribers", "120", "--seconds", "5"])
    assert (args.subscribers, args.seconds) == (120, 5.0)
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
