"""Receiver reports that cover a probe judge the probe, not the tier."""

from types import SimpleNamespace

from sfu.subscriber import Subscriber


def covers(window, since, now, rtt_ms=None):
    return Subscriber._covers_probe(SimpleNamespace(_probe_window=window, rtt_ms=rtt_ms), since, now)


def test_a_report_about_the_probes_packets_does_not_move_the_tier():
    window = (10.0, 10.8)
    assert covers(window, since=9.5, now=10.5)  # the padding was on the link during the interval
    assert covers(window, since=10.5, now=11.5)
    assert covers(window, since=11.0, now=12.0, rtt_ms=600)  # a long link: the padding arrived late
    assert not covers(window, since=11.0, now=12.0, rtt_ms=40)  # after the padding: the tier's own loss
    assert not covers(window, since=8.0, now=9.9)  # before the probe
    assert not covers(None, since=8.0, now=9.0)  # no probe yet
