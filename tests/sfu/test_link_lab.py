"""The link lab's pure parts: the delay/loss element, frozen time, the figures, the schedules."""

from __future__ import annotations

import argparse
import random

import pytest

from sfu.cli import add_links_bench_command
from sfu.link_lab.figures import FreezeMeter, NodeSample, ReceiverSample, compute_figures
from sfu.link_lab.impairment import Impairment
from sfu.link_lab.scenarios import SCENARIOS


def test_every_packet_waits_exactly_the_delay_and_keeps_its_order():
    link = Impairment(0.3, 0.0)
    for i in range(5):
        assert link.push(bytes([i]), now=10.0 + i * 0.01)
    assert link.due(10.29) == []
    assert link.next_due() == pytest.approx(10.3)
    assert link.due(10.3) == [b"\x00"]
    assert link.due(10.35) == [b"\x01", b"\x02", b"\x03", b"\x04"]
    assert link.next_due() is None and link.waiting == 0
    assert link.counts() == {"passed": 5, "dropped": 0, "waiting": 0}


def test_loss_drops_about_the_given_share_and_nothing_without_it():
    lossy = Impairment(0.0, 0.02, random.Random(7))
    kept = sum(lossy.push(b"x", now=0.0) for _ in range(20_000))
    assert 0.015 < lossy.dropped / 20_000 < 0.025
    assert len(lossy.due(0.0)) == kept
    clean = Impairment(0.0, 0.0, random.Random(7))
    assert all(clean.push(b"x", now=0.0) for _ in range(1000))
    assert clean.dropped == 0


def test_a_link_that_loses_everything_passes_nothing():
    dead = Impairment(0.01, 1.0)
    assert not any(dead.push(b"x", now=0.0) for _ in range(100))
    assert dead.due(1.0) == [] and dead.dropped == 100


@pytest.mark.parametrize("delay, loss", [(-0.1, 0.0), (0.0, -0.01), (0.0, 1.5)])
def test_nonsense_delay_or_loss_is_refused(delay, loss):
    with pytest.raises(ValueError):
        Impairment(delay, loss)


def test_a_steady_picture_is_never_frozen():
    meter = FreezeMeter()
    for i in range(300):
        meter.frame(i / 30)
    assert meter.frozen_s == 0 and meter.frozen_until(300 / 30) == 0


def test_a_long_gap_counts_whole_and_a_freeze_in_progress_counts_too():
    meter = FreezeMeter()
    for i in range(60):
        meter.frame(i / 30)
    meter.frame(59 / 30 + 2.0)  # two seconds without a frame
    assert meter.frozen_s == pytest.approx(2.0) and meter.freezes == 1
    last = 59 / 30 + 2.0
    assert meter.frozen_until(last + 0.05) == pytest.approx(2.0)  # a normal gap
    assert meter.frozen_until(last + 1.0) == pytest.approx(3.0)  # still frozen one second later


def test_the_drop_scenario_narrows_at_a_fifth_and_widens_a_minute_later():
    b = SCENARIOS["b"]
    assert b.schedule(150) == [(0.0, None), (20.0, 1000), (80.0, None)]
    assert b.shaped_window(150) == (20.0, 80.0, 1000)
    assert b.widens_at(150) == 80.0
    a = SCENARIOS["a"]
    assert a.schedule(60) == [(0.0, 1000)] and a.shaped_window(60) == (0.0, 60, 1000) and a.widens_at(60) is None
    assert SCENARIOS["d"].rtt_ms == 600 and SCENARIOS["d"].loss == 0.02


COSTS = {"720p": 2564.0, "360p": 864.0, "180p": 314.0, "audio": 64.0}


def _node(rates_kbps: list[float], tiers: list[str]) -> list[NodeSample]:
    return [NodeSample(float(t), tier, kbps * 1000) for t, (kbps, tier) in enumerate(zip(rates_kbps, tiers))]


def test_figures_of_a_drop_with_a_periodic_retry_and_a_climb_back():
    b = SCENARIOS["b"]  # at 30 s: 1 Mbps from 4 s to 19 s (15 s), then unshaped
    rates = [2500] * 4 + [2500, 2500, 900, 300, 300, 300, 2500, 300, 300, 300, 300, 300, 300, 300, 300] + [300] * 6 + [2500] * 5
    tiers = ["720p"] * 4 + ["720p", "720p", "360p"] + ["180p"] * 3 + ["720p"] + ["180p"] * 14 + ["720p"] * 5
    node = _node(rates, tiers)
    receiver = [ReceiverSample(0.0, 0, 0.0, 0, 0), ReceiverSample(30.0, 800, 3.0, 1500, 15)]
    figures = compute_figures(b, 30, node, receiver, top_tier="720p", costs=COSTS, audio_tier="audio")
    assert figures.audio_only_s_per_min == 0.0
    assert figures.fit_s == 2.0  # within the link from 6 s on
    assert figures.above_s_per_min == pytest.approx(60 / 13)  # one second above in the 13 s after fitting
    assert figures.top_s == 6.0  # 720p again at 25 s
    assert figures.frozen_s_per_min == pytest.approx(6.0)
    assert figures.audio_loss_pct == pytest.approx(1.0)
    assert figures.tiers == ("720p", "360p", "180p", "720p", "180p", "720p")


def test_a_link_never_fitted_and_a_top_tier_never_reached_say_so():
    b = SCENARIOS["b"]
    node = _node([2500] * 30, ["720p"] * 19 + ["180p"] * 11)
    figures = compute_figures(b, 30, node, [], top_tier="720p", costs=COSTS)
    assert figures.never_fit and figures.fit_s is None and figures.above_s_per_min is None
    assert figures.never_top and figures.top_s is None
    text = "\n".join(figures.lines(b, 30))
    assert "never (> 30 s)" in text


def test_the_command_takes_a_scenario_a_receiver_and_a_length():
    parser = argparse.ArgumentParser()
    add_links_bench_command(parser.add_subparsers(dest="target"))
    args = parser.parse_args(["links", "--scenario", "d", "--receiver", "chromium", "--seconds", "30"])
    assert (args.scenario, args.receiver, args.seconds) == ("d", "chromium", 30.0)
    assert parser.parse_args(["links"]).scenario == "all"
    with pytest.raises(SystemExit):
        parser.parse_args(["links", "--receiver", "firefox"])


def test_a_tier_costing_more_than_the_link_counts_above_it_even_while_its_encoder_undershoots():
    a = SCENARIOS["a"]  # 1 Mbps all along
    node = _node([300] * 5 + [800] * 2 + [300] * 3, ["180p"] * 5 + ["720p"] * 2 + ["180p"] * 3)
    figures = compute_figures(a, 10, node, [], top_tier="720p", costs=COSTS)
    assert figures.fit_s == 0.0
    assert figures.above_s_per_min == pytest.approx(2 * 60 / 10)


def test_frozen_time_before_the_drop_is_reported_apart():
    b = SCENARIOS["b"]  # at 30 s the drop is at 4 s
    receiver = [ReceiverSample(0.0, 0, 0.0, 0, 0), ReceiverSample(4.0, 100, 1.0, 200, 0), ReceiverSample(30.0, 500, 10.0, 1500, 0)]
    figures = compute_figures(b, 30, _node([300] * 30, ["180p"] * 30), receiver, top_tier="720p", costs=COSTS)
    assert figures.frozen_before_drop_s_per_min == pytest.approx(15.0)
    assert figures.frozen_s_per_min == pytest.approx(20.0)
    assert compute_figures(SCENARIOS["a"], 30, [], receiver, top_tier="720p", costs=COSTS).frozen_before_drop_s_per_min is None


def test_seconds_on_the_audio_tier_are_counted_apart_from_freezes():
    a = SCENARIOS["a"]
    node = _node([300] * 5 + [34] * 15, ["180p"] * 5 + ["audio"] * 15)
    figures = compute_figures(a, 20, node, [], top_tier="720p", costs=COSTS, audio_tier="audio")
    assert figures.audio_only_s_per_min == pytest.approx(45.0)
    assert "audio only (no video sent):             45.0 s/min" in figures.lines(a, 20)


def test_audio_loss_after_repair_is_what_was_concealed_when_the_receiver_says():
    d = SCENARIOS["d"]
    node = _node([800] * 20, ["360p"] * 20)
    # 2 % of the packets never arrived, but RED rebuilt most: 0.1 % of the sound was made up
    heard = [ReceiverSample(0.0, 0, 0.0, 0, 0, 360, 0, 0), ReceiverSample(20.0, 600, 0.0, 1000, 20, 360, 960_000, 960)]
    figures = compute_figures(d, 20, node, heard, top_tier="720p", costs=COSTS)
    assert figures.audio_loss_pct == pytest.approx(2.0)
    assert figures.audio_concealed_pct == pytest.approx(0.1)
    assert figures.audio_after_repair_pct == pytest.approx(0.1)
    text = "\n".join(figures.lines(d, 20))
    assert "audio loss after repair:                0.10 % (samples concealed)" in text
    assert "audio packets never received:           2.00 % (before repair" in text
    # a receiver that does not count what it plays: the packets never received are the loss after repair
    counted = [ReceiverSample(0.0, 0, 0.0, 0, 0), ReceiverSample(20.0, 600, 0.0, 1000, 1)]
    figures = compute_figures(d, 20, node, counted, top_tier="720p", costs=COSTS)
    assert figures.audio_concealed_pct is None and figures.audio_after_repair_pct == pytest.approx(0.1)
    assert "audio loss after repair:                0.10 % (packets never received)" in "\n".join(figures.lines(d, 20))


def test_seconds_of_video_sent_twice_are_counted():
    d = SCENARIOS["d"]
    node = [NodeSample(float(t), "180p", 600_000, repeat=t >= 5) for t in range(20)]
    figures = compute_figures(d, 20, node, [], top_tier="720p", costs=COSTS)
    assert figures.repeat_s_per_min == pytest.approx(45.0)
    assert "video sent twice:                       45.0 s/min" in figures.lines(d, 20)
