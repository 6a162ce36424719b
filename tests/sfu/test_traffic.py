"""A node's bitrate from byte counters: growth over time, peers that come, go and restart."""

from sfu.traffic import Traffic


def test_the_bitrate_is_the_counters_growth_over_the_time_between_samples():
    traffic = Traffic()
    traffic.sample({"pub": (1000, 0), "sub": (0, 5000)}, now=10.0)
    assert (traffic.in_kbps, traffic.out_kbps) == (0, 0)  # one sample: no rate yet
    traffic.sample({"pub": (126_000, 0), "sub": (0, 255_000)}, now=12.0)
    assert (traffic.in_kbps, traffic.out_kbps) == (500, 1000)


def test_a_new_peer_counts_from_zero_a_closed_one_drops_out_and_a_restarted_counter_counts_from_its_new_value():
    traffic = Traffic()
    traffic.sample({"a": (100_000, 0), "b": (50_000, 0)}, now=0.0)
    # b closed, c is new, a's counter went back (re-subscribed): 10_000 + 25_000 bytes in one second
    traffic.sample({"a": (10_000, 0), "c": (25_000, 0)}, now=1.0)
    assert traffic.in_kbps == 280
