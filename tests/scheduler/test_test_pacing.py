"""Pacing of media tests on a node: K at once, the rest in order, a slot freed by a result or its lease."""

from scheduler.test_pacing import TestPacer

NODE = "http://127.0.0.1:9000"


async def test_k_rooms_test_at_once_and_the_rest_wait_in_order(redis):
    pacer = TestPacer(redis, concurrency=3, lease_seconds=600)
    await pacer.enqueue(NODE, "drill:a", [f"{i:05}" for i in range(7)])
    assert await pacer.take(NODE) == [("drill:a", "00000"), ("drill:a", "00001"), ("drill:a", "00002")]
    assert await pacer.take(NODE) == []  # the node is full
    assert await pacer.waiting(NODE, "drill:a") == 4
    await pacer.enqueue(NODE, "drill:a", ["00004"])  # asked again while waiting: keeps its place
    await pacer.done(NODE, "drill:a", "00001")
    assert await pacer.take(NODE) == [("drill:a", "00003")]
    assert await pacer.waiting_nodes() == [NODE]


async def test_a_slot_whose_lease_ran_out_goes_to_the_next_room(redis):
    pacer = TestPacer(redis, concurrency=2, lease_seconds=0)  # an agent that never answers holds its slot no longer than this
    await pacer.enqueue(NODE, "drill:b", ["00001", "00002", "00003"])
    assert len(await pacer.take(NODE)) == 2
    assert await pacer.take(NODE) == [("drill:b", "00003")]
    assert await pacer.waiting_nodes() == []  # nothing left waiting anywhere


async def test_nodes_are_paced_apart(redis):
    pacer = TestPacer(redis, concurrency=1, lease_seconds=600)
    await pacer.enqueue(NODE, "drill:c", ["00001", "00002"])
    await pacer.enqueue(NODE + "1", "drill:c", ["00003"])
    assert await pacer.take(NODE) == [("drill:c", "00001")]
    assert await pacer.take(NODE + "1") == [("drill:c", "00003")]
