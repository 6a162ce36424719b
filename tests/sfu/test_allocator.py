"""The bandwidth fit, driven by a fake clock."""

import itertools

from sfu.allocator import LinkInfo, TierAllocation
from sfu.config import SfuConfig

CONFIG = SfuConfig(public_url="http://x", upgrade_hold_s=8.0, audio_kbps=40)
# ladder: 720p 2500, 360p 800, 180p 250, audio-only; each plus 40 kbps audio


def names(alloc: TierAllocation) -> str:
    return alloc.tier.name


def test_start_fits_the_share_of_the_downlink():
    assert names(TierAllocation(CONFIG, LinkInfo(downlink_kbps=200_000, uplink_kbps=50_000), 0)) == "720p"
    # 1 Mbps link, 50% share = 500 kbps: 360p (840) does not fit, 180p (290) does
    assert names(TierAllocation(CONFIG, LinkInfo(downlink_kbps=1000, uplink_kbps=500), 0)) == "180p"
    assert names(TierAllocation(CONFIG, LinkInfo(downlink_kbps=2000, uplink_kbps=500), 0)) == "360p"
    assert names(TierAllocation(CONFIG, LinkInfo(downlink_kbps=300, uplink_kbps=100), 0)) == "audio"
    assert names(TierAllocation(CONFIG, LinkInfo(downlink_kbps=50, uplink_kbps=50), 0)) == "audio"


def test_unknown_link_starts_at_the_top():
    assert names(TierAllocation(CONFIG, None, 0)) == "720p"


def test_share_is_configurable():
    config = CONFIG.with_changes(vcs_share=0.9)
    assert names(TierAllocation(config, LinkInfo(downlink_kbps=1000, uplink_kbps=500), 0)) == "360p"


def test_fit_edges():
    ladder = CONFIG.ladder
    assert ladder.best_within(2540) == 0
    assert ladder.best_within(2539) == 1
    assert ladder.best_within(0) is None  # nothing fits: the allocator keeps the lowest tier
    assert TierAllocation(CONFIG, LinkInfo(downlink_kbps=0, uplink_kbps=0), 0).tier.name == "720p"  # unknown link


def test_remb_moves_down_at_once_to_what_fits():
    alloc = TierAllocation(CONFIG, None, 0)
    assert alloc.on_remb(600_000, now=1).name == "180p"
    assert alloc.on_remb(100_000, now=2).name == "audio"


def test_loss_moves_down_at_once_to_what_got_through():
    alloc = TierAllocation(CONFIG, None, 0)
    assert alloc.on_receiver_report(0.15, 40.0, now=1).name == "360p"  # 2540 * (1 - 0.15 / 2) fits 360p
    assert alloc.rtt_ms == 40.0
    assert alloc.on_receiver_report(0.05, None, now=2) is None  # between the thresholds: stay


def test_up_slowly_after_a_calm_hold():
    alloc = TierAllocation(CONFIG, None, 0)
    alloc.on_remb(1_000_000, now=0)
    assert names(alloc) == "360p"
    alloc.on_remb(10_000_000, now=1)  # plenty again
    assert alloc.tick(now=5) is None  # too soon after the change
    assert alloc.probe is None
    assert alloc.tick(now=8.5) is None  # a probe first
    assert alloc.probe.target_kbps == 2540 * 1.25
    assert alloc.probe_result(True, now=9.5).name == "720p"


def test_hysteresis_needs_headroom_to_go_up():
    alloc = TierAllocation(CONFIG, None, 0)
    alloc.on_remb(900_000, now=0)
    assert names(alloc) == "360p"
    # 720p costs 2540 kbps; 2.6 Mbps fits it but not with 25% headroom
    alloc.on_remb(2_600_000, now=1)
    alloc.on_remb(2_600_000, now=25)  # a REMB receiver keeps reporting
    assert alloc.tick(now=30) is None
    assert alloc.probe is None  # not even a probe
    assert alloc.on_remb(3_200_000, now=31) is None and alloc.probe is not None
    assert alloc.probe_result(True, now=32).name == "720p"


def test_loss_restarts_the_hold():
    alloc = TierAllocation(CONFIG, None, 0)
    alloc.on_receiver_report(0.2, None, now=0)
    assert names(alloc) == "360p"
    alloc.on_receiver_report(0.03, None, now=7)  # lossy, not enough to go down
    assert alloc.tick(now=9) is None and alloc.probe is None
    assert alloc.tick(now=15.1) is None and alloc.probe is not None
    assert alloc.probe_result(True, now=16).name == "720p"


def test_never_above_the_link_cap():
    alloc = TierAllocation(CONFIG, LinkInfo(downlink_kbps=1000, uplink_kbps=500), 0)
    alloc.on_remb(50_000_000, now=0)
    for t in range(1, 100, 5):
        alloc.tick(now=t)
    assert names(alloc) == "180p"
    assert alloc.budget_kbps == 500


def test_one_step_at_a_time_up():
    alloc = TierAllocation(CONFIG, None, 0)
    alloc.on_remb(100_000, now=0)
    assert names(alloc) == "audio"
    alloc.on_remb(20_000_000, now=1)
    alloc.tick(now=9)
    assert alloc.probe_result(True, now=9).name == "180p"
    assert alloc.tick(now=10) is None and alloc.probe is None
    alloc.tick(now=17)
    assert alloc.probe_result(True, now=17).name == "360p"


def test_a_max_tier_caps_the_start_and_every_upgrade():
    fast = LinkInfo(downlink_kbps=200_000, uplink_kbps=50_000)
    capped = TierAllocation(CONFIG, fast, 0, max_tier="180p")
    assert names(capped) == "180p"
    assert capped.tick(100.0) is None and names(capped) == "180p"
    assert capped.on_remb(10_000_000, 200.0) is None and names(capped) == "180p"
    assert capped.on_receiver_report(0.5, 100, 300.0).name == "audio"  # down still works
    capped.tick(400.0)
    assert capped.probe_result(True, 400.5).name == "180p" and capped.tick(500.0) is None and capped.probe is None
    assert names(TierAllocation(CONFIG, fast, 0, max_tier="audio")) == "audio"


def test_heavy_loss_lands_on_the_tier_that_fits_in_one_step():
    alloc = TierAllocation(CONFIG, None, 0)
    # 60% lost of 2540 kbps: 1778 got through... halved loss model: 2540 * 0.7 = 1778 -> 360p
    assert alloc.on_receiver_report(0.6, None, now=1).name == "360p"
    alloc = TierAllocation(CONFIG, None, 0)
    # an estimate of 700 kbps lands on 180p directly, not 360p first
    assert alloc.on_estimate(700, now=1).name == "180p"
    assert alloc.changes == 1


def test_reports_about_packets_sent_before_a_downgrade_do_not_chain_it():
    alloc = TierAllocation(CONFIG, None, 0)
    assert alloc.on_receiver_report(0.2, None, now=10, sent_at=9).name == "360p"
    # the old tier's queue still draining: a report about packets sent before 10 s
    assert alloc.on_receiver_report(0.3, None, now=10.8, sent_at=10.0 - 0.5) is None
    assert alloc.on_estimate(500, now=10.9, sent_at=9.9) is None
    assert names(alloc) == "360p"
    # about packets sent after the switch: they count
    assert alloc.on_receiver_report(0.3, None, now=12, sent_at=10.8).name == "180p"
    assert alloc.on_estimate(100, now=13, sent_at=12.5).name == "audio"


def test_a_failed_probe_backs_off_exponentially_then_forgets_on_headroom():
    alloc = TierAllocation(CONFIG, LinkInfo(downlink_kbps=200_000, uplink_kbps=50_000), 0)
    alloc.on_estimate(1000, now=0, sent_at=0)
    assert names(alloc) == "360p"
    starts = []
    now = 0.0
    while now < 1200:
        now += 0.5
        alloc.tick(now)
        if alloc.probe is not None:
            starts.append(now)
            assert alloc.probe_result(False, now + 1) is None
    gaps = [round(b - a) for a, b in itertools.pairwise(starts)]
    assert gaps[:5] == [16, 31, 61, 121, 241]  # 15, 30, 60, 120, 240 s after each failed second
    assert len(gaps) > 6 and all(gap == 301 for gap in gaps[5:])  # then every 5 minutes
    assert names(alloc) == "360p"
    # clear headroom (1.5 times the next tier) forgets the failures
    alloc.on_estimate(2540 * 1.6, now)
    assert alloc.failed_probes == 0
    alloc.tick(now + 8)
    assert alloc.probe is not None


def test_audio_costs_what_is_forwarded():
    alloc = TierAllocation(CONFIG, LinkInfo(downlink_kbps=2000, uplink_kbps=500), 0)
    assert names(alloc) == "360p"  # 800 + 40 within 1000
    alloc.audio_kbps = 200  # 160 kbps Opus and its headers
    assert alloc.on_estimate(990, now=1).name == "180p"  # 360p now costs 1000
    assert alloc.cost_kbps(alloc.index) == 450


def test_bad_estimates_are_clamped():
    alloc = TierAllocation(CONFIG, None, 0)
    assert alloc.on_estimate(float("nan"), now=1).name == "audio"
    alloc = TierAllocation(CONFIG, None, 0)
    assert alloc.on_estimate(-5, now=1).name == "audio"
    alloc = TierAllocation(CONFIG, None, 0)
    assert alloc.on_estimate(float("inf"), now=1) is None and alloc.estimate_kbps == 100_000


def test_a_probe_that_failed_near_its_target_is_retried_soon_without_backing_off():
    alloc = TierAllocation(CONFIG, LinkInfo(downlink_kbps=200_000, uplink_kbps=50_000), 0)
    alloc.on_estimate(1000, now=0, sent_at=0)
    assert names(alloc) == "360p"
    alloc.tick(now=8)
    target = alloc.probe.target_kbps
    assert alloc.probe_result(False, now=9, delivered_kbps=0.5 * target) is None  # far: backs off 15 s
    alloc.tick(now=23)
    assert alloc.probe is None
    alloc.tick(now=24.1)
    assert alloc.probe is not None
    for attempt in range(5):  # near (a link just under the next tier): every 8 s, however often it fails
        now = 25 + attempt * 8.5
        assert alloc.probe_result(False, now=now, delivered_kbps=0.9 * target) is None
        alloc.tick(now + 7.9)
        assert alloc.probe is None
        alloc.tick(now + 8.1)
        assert alloc.probe is not None
    assert alloc.failed_probes == 1
    assert alloc.probe_result(True, now=70).name == "720p"  # the link widened


def test_a_stale_remb_no_longer_holds_the_probe_back():
    alloc = TierAllocation(CONFIG, None, 0)
    alloc.on_remb(300_000, now=0)
    assert names(alloc) == "180p"
    alloc.tick(now=9)
    assert alloc.probe is None  # a fresh REMB says no
    alloc.tick(now=10.5)
    assert alloc.probe is not None  # none for 10 s: the probe decides


def test_after_a_proven_step_up_the_next_probe_comes_soon():
    alloc = TierAllocation(CONFIG, None, 0)
    alloc.on_remb(100_000, now=0)
    assert names(alloc) == "audio"
    alloc.on_remb(20_000_000, now=1)
    alloc.tick(now=9)
    assert alloc.probe_result(True, now=9.8).name == "180p"
    alloc.tick(now=11)
    assert alloc.probe is None  # not yet
    alloc.tick(now=11.9)
    assert alloc.probe_result(True, now=12.7).name == "360p"
    alloc.tick(now=14.8)
    assert alloc.probe_result(True, now=15.6).name == "720p"  # audio to the top in under 16 s
    # loss ends the climb: the full hold again
    alloc = TierAllocation(CONFIG, None, 0)
    alloc.on_remb(100_000, now=0)
    alloc.on_remb(20_000_000, now=1)
    alloc.tick(now=9)
    alloc.probe_result(True, now=9.8)
    alloc.on_receiver_report(0.03, None, now=10)
    alloc.tick(now=12)
    assert alloc.probe is None


def test_with_transport_cc_a_receiver_report_holds_step_ups_but_moves_nothing():
    alloc = TierAllocation(CONFIG, None, 0)
    # the estimator judges each packet's loss by send time; the report's coarse figure does not also step down
    assert alloc.on_receiver_report(0.3, 40.0, now=1, moves=False) is None
    assert names(alloc) == "720p" and alloc.loss == 0.3
    alloc.on_estimate(700, now=2)
    assert names(alloc) == "180p"
    alloc.on_receiver_report(0.05, 40.0, now=9, moves=False)  # loss above 2%: no probe for another hold
    alloc.tick(now=12)
    assert alloc.probe is None
    alloc.tick(now=17.1)
    assert alloc.probe is not None


def test_packets_sent_just_after_a_downgrade_met_the_old_queue_and_do_not_chain_it():
    alloc = TierAllocation(CONFIG, None, 0)
    assert alloc.on_receiver_report(0.2, None, now=10, sent_at=9).name == "360p"
    assert alloc.on_receiver_report(0.4, None, now=11, sent_at=10.3) is None  # within the drain
    assert alloc.on_receiver_report(0.4, None, now=12, sent_at=10.6).name == "180p"


def test_a_tier_backed_off_does_not_hold_back_the_probe_for_the_tier_below_it():
    alloc = TierAllocation(CONFIG, LinkInfo(downlink_kbps=200_000, uplink_kbps=50_000), 0)
    alloc.on_estimate(500, now=0, sent_at=0)
    assert names(alloc) == "180p"
    for now in (8, 24, 55, 116):  # 360p fails again and again: 15, 30, 60 s apart
        alloc.tick(now)
        assert alloc.probe is not None and alloc.probe.index == 1
        alloc.probe_result(False, now + 1)
    assert alloc.failed_probes == 4
    assert alloc.on_receiver_report(0.5, None, now=120, sent_at=119).name == "audio"
    alloc.tick(now=128.1)
    assert alloc.probe is not None and alloc.probe.index == 2  # 180p: a probe after the usual hold
    assert alloc.probe_result(True, now=129).name == "180p"
    alloc.tick(now=131.1)
    assert alloc.probe is None  # 360p keeps its back-off (120 s from its last failure)
    alloc.tick(now=237.1)
    assert alloc.probe is not None and alloc.probe.index == 1


# video sent twice on long lossy links -----------------------------------------------------------

SATELLITE = LinkInfo(downlink_kbps=2000, uplink_kbps=500, rtt_ms=600, loss_pct=2)  # 50 % share: 1000 kbps


def test_a_long_lossy_link_gets_its_video_twice_on_the_best_tier_that_fits_doubled():
    alloc = TierAllocation(CONFIG, SATELLITE, 0)
    assert names(alloc) == "360p" and not alloc.protected
    moved = alloc.on_receiver_report(0.02, 600.0, now=1)
    # 360p twice (1640) is over the link's 1000; 180p twice (540) fits
    assert moved is not None and moved.name == "180p" and alloc.protected
    assert alloc.cost_kbps(alloc.index) == 2 * 250 + 40
    assert alloc.cost_kbps(alloc.index, protected=False) == 290


def test_protection_needs_both_a_long_round_trip_and_loss():
    quiet = TierAllocation(CONFIG, SATELLITE, 0)
    assert quiet.on_receiver_report(0.0, 600.0, now=1) is None and not quiet.protected  # long, but nothing lost
    near = TierAllocation(CONFIG, SATELLITE, 0)
    assert near.on_receiver_report(0.05, 40.0, now=1) is None and not near.protected  # lossy, but a NACK is in time


def test_no_protection_when_the_link_has_no_room_for_the_lowest_tier_twice():
    alloc = TierAllocation(CONFIG, LinkInfo(downlink_kbps=800, uplink_kbps=500), 0)  # 400 kbps: 180p, not twice
    assert names(alloc) == "180p"
    assert alloc.on_receiver_report(0.02, 600.0, now=1) is None
    assert not alloc.protected and names(alloc) == "180p"


def test_protection_of_the_same_tier_is_a_change_the_room_must_act_on():
    alloc = TierAllocation(CONFIG, LinkInfo(downlink_kbps=20_000, uplink_kbps=5000), 0)  # 10 Mbps: 720p twice fits
    moved = alloc.on_receiver_report(0.02, 300.0, now=1)
    assert moved is not None and moved.name == "720p" and alloc.protected


def test_protection_outlives_quiet_reports_then_ends_and_ends_when_the_round_trip_shortens():
    alloc = TierAllocation(CONFIG, SATELLITE, 0)
    alloc.on_receiver_report(0.02, 600.0, now=0)
    # under protection a report counts only what both copies lost: mostly nothing
    for t in range(1, 120, 5):
        assert alloc.on_receiver_report(0.0, 600.0, now=t) is None and alloc.protected
    assert alloc.tick(now=121) is not None and not alloc.protected  # no loss for two minutes: the plain tier
    alloc.on_receiver_report(0.02, 600.0, now=130)
    assert alloc.protected
    alloc.on_receiver_report(0.0, 220.0, now=131)  # under the 250 ms threshold, above 80 % of it: stays
    assert alloc.protected
    assert alloc.on_receiver_report(0.0, 150.0, now=132) is not None and not alloc.protected


def test_a_protected_step_up_probes_for_the_next_tier_twice():
    alloc = TierAllocation(CONFIG, LinkInfo(downlink_kbps=4000, uplink_kbps=500), 0)  # 2000 kbps
    alloc.on_remb(600_000, now=0)
    assert names(alloc) == "180p"
    alloc.on_receiver_report(0.02, 600.0, now=1)
    assert alloc.protected and names(alloc) == "180p"
    alloc.on_estimate(3000, now=2)
    for t in range(3, 12):
        alloc.tick(now=t)
    assert alloc.probe is not None and alloc.probe.target_kbps == (2 * 800 + 40) * CONFIG.upgrade_headroom
    assert alloc.probe_result(True, now=12).name == "360p" and alloc.protected


def test_protection_ends_when_the_estimate_leaves_no_room_for_it():
    alloc = TierAllocation(CONFIG, SATELLITE, 0)
    alloc.on_receiver_report(0.02, 600.0, now=0)
    assert alloc.protected
    moved = alloc.on_estimate(400, now=1)  # 180p twice (540) no longer fits: 180p once (290) does
    assert moved is not None and moved.name == "180p" and not alloc.protected


def test_loss_before_repair_counts_where_the_receiver_reports_after_it():
    alloc = TierAllocation(CONFIG, SATELLITE, 0)
    alloc.on_link_loss(0.02, now=1)  # transport-cc: 2 % of the packets as sent never arrived
    moved = alloc.on_receiver_report(0.0, 600.0, now=2)  # its report counts the NACKed ones as received
    assert moved is not None and moved.name == "180p" and alloc.protected


def test_nacks_keep_protection_while_reports_count_only_what_both_copies_lost():
    alloc = TierAllocation(CONFIG, SATELLITE, 0)
    alloc.on_receiver_report(0.02, 600.0, now=0)
    for t in range(1, 300):
        alloc.on_receiver_report(0.0, 600.0, now=t)
        if t % 30 == 0:
            alloc.on_nack(now=t)  # the first copy lost, asked for before its copy came
        assert alloc.protected


def test_a_backed_off_step_is_scouted_and_a_passing_scout_brings_the_probe_at_once():
    alloc = TierAllocation(CONFIG, LinkInfo(downlink_kbps=200_000, uplink_kbps=50_000), 0)
    alloc.on_estimate(1000, now=0, sent_at=0)
    alloc.tick(now=8)
    target = alloc.probe.target_kbps
    assert alloc.probe_result(False, now=9, delivered_kbps=0.3 * target) is None  # far: backed off 15 s
    alloc.tick(now=14.5)
    assert alloc.probe is None  # a receiver whose feedback cannot time a burst is not scouted
    alloc.bursts_measured = True
    alloc.tick(now=13.9)
    assert alloc.probe is None  # the first scout comes 5 s after the failed probe
    alloc.tick(now=14.5)
    assert alloc.probe is not None and alloc.probe.scout and alloc.probe.target_kbps == target
    assert alloc.probe_result(False, now=14.7) is None  # the link still narrow
    alloc.tick(now=19.6)
    assert alloc.probe is None  # the next scout waits its turn
    alloc.tick(now=19.8)
    assert alloc.probe.scout
    assert alloc.probe_result(True, now=20) is None and names(alloc) == "360p"  # a scout alone steps nothing
    alloc.tick(now=20.1)
    assert alloc.probe is not None and not alloc.probe.scout  # the full probe at once, before the back-off's end (24)
    assert alloc.probe_result(True, now=20.5).name == "720p"
    assert alloc.scouts == 2 and alloc.failed_probes == 0


def test_a_scout_that_passes_when_the_probe_does_not_is_not_repeated_before_the_back_off_ends():
    alloc = TierAllocation(CONFIG, LinkInfo(downlink_kbps=200_000, uplink_kbps=50_000), 0)
    alloc.bursts_measured = True
    alloc.on_estimate(1000, now=0, sent_at=0)
    alloc.tick(now=8)
    alloc.probe_result(False, now=9, delivered_kbps=0.3 * alloc.probe.target_kbps)  # backed off until 24
    alloc.tick(now=14.1)
    assert alloc.probe.scout
    alloc.probe_result(True, now=14.3)
    alloc.tick(now=14.4)
    assert not alloc.probe.scout
    alloc.probe_result(False, now=15.5, delivered_kbps=0.3 * alloc.probe.target_kbps)  # second failure: 30 s
    for now in (21, 30, 40, 45.4):
        alloc.tick(now)
        assert alloc.probe is None
    alloc.tick(now=45.6)  # the back-off's end
    assert alloc.probe is not None and not alloc.probe.scout
