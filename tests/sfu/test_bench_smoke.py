"""The benchmark's path, tiny: real processes, a handful of subscribers."""

from __future__ import annotations

import argparse

from sfu.bench import measure, process_cpu_times
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
    result = await measure("cascade", 2, 2.0, processes=1, warmup=1.0)
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
