"""Cheap joins: one DTLS certificate per node (reused, rotated), admission in order, a join storm without drops."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys

from rtc.consent import consent_counters
from rtc.synthetic_media import SyntheticAudioTrack
from rtc.whip_client import publish, subscribe
from tests.waiting import eventually, scaled

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
    # one handshake at a time, a join may wait 10 s: ten can wait (at one handshake a second, as assumed before one is measured)
    sfu = await node_factory(small_config(max_handshakes=1, admission_wait_s=10, connect_timeout_s=120, max_inflight_signaling=64))
    joining = sfu.node.joining
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
