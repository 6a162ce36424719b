"""/metrics: every label from a fixed set, whatever the requests made up."""

import asyncio
import re
import secrets

SERIES = re.compile(r'^vcs_http_requests_total\{method="([^"]*)",route="([^"]*)",status="(\d+)"\}', re.M)


def _series(text: str) -> set[tuple[str, str, str]]:
    return set(SERIES.findall(text))


async def test_made_up_methods_and_paths_add_no_series(http, mint_token):
    headers = await mint_token("viewer")
    assert (await http.get("/api/v1/meetings/m-1", headers=headers)).status_code == 404
    await http.request("BREW", "/api/v1/endpoints")
    await http.request("BREW", "/api/v1/x")
    await http.get(f"/no/such/{secrets.token_hex(4)}")
    before = _series((await http.get("/metrics")).text)

    async def junk(i: int) -> None:
        await http.request(f"X{secrets.token_hex(6).upper()}", f"/api/v1/x{i}-{secrets.token_hex(4)}")
        await http.get(f"/no/such/{secrets.token_hex(8)}")
        await http.get(f"/api/v1/meetings/{secrets.token_hex(6)}", headers=headers)

    for start in range(0, 300, 50):
        await asyncio.gather(*(junk(i) for i in range(start, start + 50)))
    after = _series((await http.get("/metrics")).text)
    assert after - before <= {("GET", "/metrics", "200")}
    assert ("GET", "/api/v1/meetings/{meeting_id}", "404") in after  # the template, not the id
    assert {m for m, _, _ in after} <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER"}
    assert ("GET", "unmatched", "404") in after


async def test_each_live_sfu_node_has_its_gauges(http, redis):
    import time

    from vcs.routing import NodeInfo, NodeRouter

    router = NodeRouter(redis)
    await router.register_node(NodeInfo("relay-hn", "http://r", "relay", 500, 42, heartbeat=time.time(), upstream_streams=3,
                                        bitrate_in_kbps=3500, bitrate_out_kbps=90_000, provinces=("01",)))  # fmt: skip
    text = (await http.get("/metrics")).text
    assert 'vcs_sfu_node_subscribers{node="relay-hn",role="relay"} 42.0' in text
    assert 'vcs_sfu_node_upstream_streams{node="relay-hn",role="relay"} 3.0' in text
    assert 'vcs_sfu_node_bitrate_out_kbps{node="relay-hn",role="relay"} 90000.0' in text
    await router.unregister_node("relay-hn")
    assert "relay-hn" not in (await http.get("/metrics")).text  # a node gone leaves no series behind
