"""Cheap joins: one DTLS certificate per node (reused, rotated), admission in order, a join storm without drops."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time

import pytest

from rtc.consent import consent_counters
from rtc.synthetic_media import SyntheticAudioTrack
from rtc.whip_client import publish, subscribe
from tests.waiting import eventually, scaled

from sfu.admission import Admission
from sfu.errors import Unavailable

from .conftest import SECRET, ghost_whep, publish_scene, recv_frames, small_config, track_of

STORM = 200  # subscribers
STORM_PROCESSES = 2


def fingerprint(sdp: str) -> str:
    return re.search(r"a=fingerprint:sha-256 (\S+)", sdp).group(1)


async def test_every_peer_gets_the_nodes_one_certificate(node_factory):
    sfu = await node_factory()
    first = await subscribe(sfu.http, f"{sfu.base}/whep/r1", sfu.token("r1", "c1", "subscribe"), kinds=("audio",))
    second = await subscribe(sfu.http, f"{sfu.base}/whep/r1", sfu.token("r1", "c2", "subscribe"), kinds=("audio",))
    try:
        answers = [s.pc.remoteDescription.sdp for s in (first, second)]
        assert fingerprint(answers[0]) == fingerprint(answers[1]) == sfu.node.certificate.current.fingerprint
        # both handshakes complete with it
        await eventually(lambda: first.pc.connectionState == second.pc.connectionState == "connected", what="both peers connect")
    finally:
        await first.close()
        await second.close()


async def test_a_rotated_certificate_goes_to_new_peers_while_the_older_peer_keeps_receiving(node_factory):
    sfu = await node_factory(small_config(cert_rotate_s=1.0))
    host = await publish_scene(sfu)
    older = await subscribe(sfu.http, f"{sfu.base}/whep/r1", sfu.token("r1", "c1", "subscribe"), decode=True)
    newer = None
    try:
        rotations = sfu.node.certificate.rotations
        await eventually(lambda: sfu.node.certificate.rotations > rotations, what="the node rotates its certificate")
        newer = await subscribe(sfu.http, f"{sfu.base}/whep/r1", sfu.token("r1", "c2", "subscribe"), decode=True)
        assert fingerprint(newer.pc.remoteDescription.sdp) != fingerprint(older.pc.remoteDescription.sdp)
        # each peer's DTLS runs with the certificate its answer named: both receive pictures after the rotation
        assert len(await recv_frames(track_of(older, "video"), 5)) == 5
        assert len(await recv_frames(track_of(newer, "video"), 5)) == 5
        assert older.pc.connectionState == "connected"
    finally:
        for session in (older, newer, host):
            if session is not None:
                await session.close()


async def test_a_join_beyond_the_queue_is_refused_at_once_with_retry_after(node_factory):
    # one handshake at a time, a join may wait 10 s: at one handshake a second, ten can wait
    sfu = await node_factory(small_config(max_handshakes=1, admission_wait_s=10, connect_timeout_s=120, max_inflight_signaling=64))
    joining = sfu.node.joining
    joining.handshake_s = 1.0
    holder = await ghost_whep(sfu, "r1", "c0")
    assert holder.status_code == 201
    waiting = [asyncio.create_task(ghost_whep(sfu, "r1", f"c{i}")) for i in range(1, 1 + joining.queue_bound)]
    await eventually(lambda: joining.queued == joining.queue_bound, what="the queue fills")

    refused = await ghost_whep(sfu, "r1", "late")
    assert refused.status_code == 503
    assert int(refused.headers["retry-after"]) >= 1
    assert "queue of joins is full" in refused.text
    # it did not wait its turn: the joins ahead of it are all still waiting
    assert joining.queued == joining.queue_bound and not any(t.done() for t in waiting)
    again = await ghost_whep(sfu, "r1", "later")
    assert again.status_code == 503
    assert int(again.headers["retry-after"]) >= int(refused.headers["retry-after"])  # told to come back after the first
    assert sfu.node.admission["refused"] == 2

    # the holder goes: the first in the queue is admitted, and the rest keep their places
    await sfu.http.delete(f"{sfu.base}/whep/r1/{holder.headers['location'].rsplit('/', 1)[1]}", headers=sfu.auth("r1", "c0", "subscribe"))
    first = await waiting[0]
    assert first.status_code == 201
    assert not any(t.done() for t in waiting[1:])
    for task in waiting:
        task.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)


async def test_joins_are_admitted_in_the_order_they_came():
    admission = Admission(limit=1, wait_s=30)
    holder = await admission.enter()
    turns = [asyncio.create_task(admission.enter()) for _ in range(3)]
    await eventually(lambda: admission.queued == 3, what="three joins wait")
    turns[1].cancel()  # its client went away: it takes no slot
    await asyncio.gather(turns[1], return_exceptions=True)
    holder.release(connected=True)
    first = await turns[0]
    assert not turns[2].done()
    first.release(connected=True)
    (await turns[2]).release()
    assert admission.held == 0 and admission.queued == 0 and admission.connected == 2


async def test_a_lagging_loop_admits_fewer_handshakes_until_it_keeps_time_again():
    admission = Admission(limit=8, wait_s=30)
    admission.adapt(lag_per_s=0.5)
    admission.adapt(lag_per_s=0.5)
    assert admission.allowed == 2
    slots = [await admission.enter(), await admission.enter()]
    third = asyncio.create_task(admission.enter())
    await eventually(lambda: admission.queued == 1, what="the third join waits, though fewer than 8 are connecting")
    admission.adapt(lag_per_s=0.0)  # the loop keeps time: one more at once, and the waiting join goes in
    slots.append(await third)
    assert admission.allowed == 3
    for _ in range(10):
        admission.adapt(lag_per_s=0.0)
    assert admission.allowed == 8  # never beyond the configured bound
    for slot in slots:
        slot.release()


async def test_refusals_are_paced_at_the_measured_handshake_rate():
    now = [0.0]
    admission = Admission(limit=2, wait_s=1, clock=lambda: now[0])
    slots = [await admission.enter(), await admission.enter()]
    now[0] = 0.5
    for slot in slots:
        slot.release(connected=True)  # handshakes of 0.5 s: four a second at two at once
    assert admission.handshake_s < 1.0
    slots = [await admission.enter(), await admission.enter()]
    waiting = [asyncio.create_task(admission.enter()) for _ in range(admission.queue_bound)]
    await eventually(lambda: admission.queued == len(waiting), what="the queue fills")
    retry_after = []
    for _ in range(12):
        with pytest.raises(Unavailable) as refused:
            await admission.enter()
        retry_after.append(int(refused.value.headers["Retry-After"]))
    assert retry_after == sorted(retry_after) and retry_after[-1] > retry_after[0]  # spread, not all back at once
    for task in waiting:
        task.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)
    for slot in slots:
        slot.release()


async def test_a_node_whose_loop_lags_delays_joins_and_keeps_its_peers(node_factory):
    sfu = await node_factory(small_config(max_handshakes=8))
    peer = await subscribe(sfu.http, f"{sfu.base}/whep/r1", sfu.token("r1", "c1", "subscribe"), kinds=("audio",))
    try:
        await eventually(lambda: peer.pc.connectionState == "connected", what="the peer connects")
        stop = asyncio.Event()

        async def hog() -> None:  # CPU saturation: the loop gets a turn only every 0.2 s
            while not stop.is_set():
                time.sleep(0.2)
                await asyncio.sleep(0)

        hogging = asyncio.create_task(hog())
        try:
            await eventually(lambda: sfu.node.joining.allowed < 8, timeout=20, what="the node admits fewer handshakes")
        finally:
            stop.set()
            await hogging
        await eventually(lambda: sfu.node.joining.allowed == 8, timeout=20, what="the bound grows back once the loop keeps time")
        assert peer.pc.connectionState == "connected" and not peer.dropped.is_set()
        metrics = (await sfu.http.get(f"{sfu.base}/metrics")).text
        assert 'vcs_sfu_admission_allowed{node="sfu-test"} 8' in metrics
        assert 'vcs_sfu_joins_total{node="sfu-test"} 1' in metrics
    finally:
        await peer.close()


async def _start_storm(base: str, prefix: str, count: int) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.sfu.storm_subscribers", "--base", base, "--room", "storm", "--count", str(count), "--prefix", prefix,
        env={**os.environ, "VCS_STORM_SECRET": SECRET},
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def _report(procs: list[asyncio.subprocess.Process]) -> dict[str, list]:
    report: dict[str, list] = {}
    for proc in procs:
        proc.stdin.write(b"REPORT\n")
        await proc.stdin.drain()
        report.update(json.loads(await proc.stdout.readline()))
    return report


async def test_a_storm_of_200_joins_completes_with_none_dropped(node_factory):
    sfu = await node_factory(small_config(connect_timeout_s=120, max_inflight_signaling=64))
    host = await publish(sfu.http, f"{sfu.base}/whip/storm", sfu.token("storm", "studio", "publish", host=True), [SyntheticAudioTrack()])
    expired = consent_counters().expired
    per_process = STORM // STORM_PROCESSES
    procs = [await _start_storm(sfu.base, f"p{i}", per_process) for i in range(STORM_PROCESSES)]
    try:
        outcomes = [json.loads(await asyncio.wait_for(p.stdout.readline(), scaled(300))) for p in procs]
        assert all(not o["failed"] for o in outcomes), [o["failed"] for o in outcomes]
        assert sum(len(o["joined"]) for o in outcomes) == STORM
        first_in = {o["joined"][i] for o in outcomes for i in range(10)}  # each process's first ten to connect

        before = await _report(procs)
        await eventually(lambda: sfu.node.joins_connected >= STORM, what="the node counts every join")
        after = before
        async def all_received_more() -> bool:
            nonlocal after
            after = await _report(procs)
            return all(after[i][0] > before[i][0] for i in after)

        await eventually(all_received_more, timeout=30, what="every subscriber receives", interval=0.5)
        assert len(after) == STORM
        assert not [i for i, (_, dropped) in after.items() if dropped], "a connected subscriber was dropped"
        assert all(after[i][0] > 0 for i in first_in)
        assert consent_counters().expired == expired, "the node closed a peer for lost consent"
        assert sum(1 for r in sfu.node.resources.values() if r.kind == "whep") == STORM
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.stdin.write(b"EXIT\n")
                await proc.stdin.drain()
        for proc in procs:
            await asyncio.wait_for(proc.wait(), scaled(60))
        await host.close()
