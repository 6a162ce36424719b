"""Admission: a busy node slows new joins down (wait, then 503 + Retry-After) instead of dropping connected peers."""

from __future__ import annotations

import asyncio
from urllib.parse import urljoin

from rtc.whip_client import subscribe
from tests.waiting import eventually

from .conftest import ghost_whep, small_config


async def ghost_offer(sfu, room: str, identity: str) -> str:
    """A subscriber that offers and then never answers ICE: the node keeps it in its handshake; its resource URL."""
    response = await ghost_whep(sfu, room, identity)
    assert response.status_code == 201, response.text
    return urljoin(f"{sfu.base}/whep/{room}", response.headers["location"])


async def whep(sfu, room: str, identity: str):
    return await ghost_whep(sfu, room, identity, "audio")


async def test_a_join_beyond_the_handshake_bound_is_deferred_with_retry_after(node_factory):
    sfu = await node_factory(small_config(max_handshakes=1, admission_wait_s=0.2, connect_timeout_s=120))
    ghost = await ghost_offer(sfu, "r1", "c1")
    assert sfu.node.handshakes == 1

    refused = await whep(sfu, "r1", "c2")
    assert refused.status_code == 503
    assert int(refused.headers["retry-after"]) > 0
    assert "busy connecting" in refused.text
    metrics = (await sfu.http.get(f"{sfu.base}/metrics")).text
    assert 'vcs_sfu_admission_total{outcome="refused"} 1' in metrics
    assert 'vcs_sfu_handshakes{node="sfu-test"} 1' in metrics

    # the slot frees when the stuck peer goes: the next join is admitted
    assert (await sfu.http.delete(ghost, headers=sfu.auth("r1", "c1", "subscribe"))).status_code in (200, 204)
    assert (await whep(sfu, "r1", "c2")).status_code == 201


async def test_a_join_waits_its_turn_while_a_handshake_finishes(node_factory):
    sfu = await node_factory(small_config(max_handshakes=1, admission_wait_s=30, connect_timeout_s=120))
    ghost = await ghost_offer(sfu, "r1", "c1")
    waiting = asyncio.create_task(whep(sfu, "r1", "c2"))
    await eventually(lambda: sfu.node.admission["waited"] == 1, what="the second join waits for a handshake slot")
    assert not waiting.done()
    await sfu.http.delete(ghost, headers=sfu.auth("r1", "c1", "subscribe"))
    assert (await waiting).status_code == 201
    assert sfu.node.admission == {"waited": 1, "refused": 0}


async def test_connected_peers_do_not_count_against_admission(node_factory):
    sfu = await node_factory(small_config(max_handshakes=1, admission_wait_s=0.2))
    first = await subscribe(sfu.http, f"{sfu.base}/whep/r1", sfu.token("r1", "c1", "subscribe"), kinds=("audio",))
    second = None
    try:
        await eventually(lambda: first.pc.connectionState == "connected" and sfu.node.handshakes == 0, what="the first peer connects")
        second = await subscribe(sfu.http, f"{sfu.base}/whep/r1", sfu.token("r1", "c2", "subscribe"), kinds=("audio",))
        assert sfu.node.admission["refused"] == 0
    finally:
        await first.close()
        if second is not None:
            await second.close()
