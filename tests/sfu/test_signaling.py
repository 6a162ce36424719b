"""WHIP/WHEP over real HTTP: tokens, hostile offers, limits, CORS."""

from __future__ import annotations

import asyncio

import jwt
import pytest

from rtc.synthetic_media import SyntheticAudioTrack
from rtc.whip_client import publish, subscribe
from tests.waiting import eventually
from vcs.media_tokens import mint_media_token

from .conftest import SECRET, ghost_whep, small_config

# a real offer of an aiortc publisher (sendonly audio + video), as a template
OFFER = """v=0
o=- 4004325378 4004325378 IN IP4 0.0.0.0
s=-
t=0 0
a=group:BUNDLE 0 1
a=msid-semantic:WMS *
m=audio 42371 UDP/TLS/RTP/SAVPF 96 0
c=IN IP4 127.0.0.1
a=sendonly
a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid
a=mid:0
a=msid:3ce5c186 1a132ec8
a=rtcp:9 IN IP4 0.0.0.0
a=rtcp-mux
a=ssrc:1543230953 cname:40480240
a=rtpmap:96 opus/48000/2
a=rtpmap:0 PCMU/8000
a=candidate:16572de6 1 udp 2130706431 127.0.0.1 42371 typ host
a=end-of-candidates
a=ice-ufrag:emKd
a=ice-pwd:8cJZSaYOhO5y9rTFYAxpH6
a=fingerprint:sha-256 D6:3A:E0:6C:8C:8E:14:45:4C:38:D6:94:90:C3:C5:00:A4:75:6C:F3:9B:2C:66:0C:AA:AE:BB:5A:86:43:A0:51
a=setup:actpass
m=video 45125 UDP/TLS/RTP/SAVPF 97 98
c=IN IP4 127.0.0.1
a=sendonly
a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid
a=mid:1
a=msid:3ce5c186 4c131331
a=rtcp:9 IN IP4 0.0.0.0
a=rtcp-mux
a=ssrc-group:FID 4275621851 664091753
a=ssrc:4275621851 cname:40480240
a=ssrc:664091753 cname:40480240
a=rtpmap:97 VP8/90000
a=rtcp-fb:97 nack
a=rtcp-fb:97 nack pli
a=rtpmap:98 rtx/90000
a=fmtp:98 apt=97
a=candidate:16572de6 1 udp 2130706431 127.0.0.1 45125 typ host
a=end-of-candidates
a=ice-ufrag:emKd
a=ice-pwd:8cJZSaYOhO5y9rTFYAxpH6
a=fingerprint:sha-256 D6:3A:E0:6C:8C:8E:14:45:4C:38:D6:94:90:C3:C5:00:A4:75:6C:F3:9B:2C:66:0C:AA:AE:BB:5A:86:43:A0:51
a=setup:actpass
""".replace("\n", "\r\n")

MALFORMED = {
    "empty": (b"", 400),
    "not sdp": (b"hello world", 400),
    "only version": (b"v=0\r\n", 400),
    "invalid utf-8": (b"v=0\r\n\xff\xfe\xfd", 400),
    "nul": (OFFER.replace("s=-", "s=\x00").encode(), 400),
    "truncated": (OFFER[: len(OFFER) // 3].encode(), 400),
    "bad port": (OFFER.replace("m=audio 42371", "m=audio abc").encode(), 400),
    "bad fmt": (OFFER.replace("SAVPF 97 98", "SAVPF x y").encode(), 400),
    "bad rtpmap": (OFFER.replace("a=rtpmap:97 VP8/90000", "a=rtpmap:zz VP8").encode(), 400),
    "bad ssrc": (OFFER.replace("a=ssrc:1543230953", "a=ssrc:notanumber").encode(), 400),
    "bad ssrc group": (OFFER.replace("FID 4275621851", "FID x").encode(), 400),
    "bad candidate": (OFFER.replace("udp 2130706431 127.0.0.1 42371", "udp").encode(), 400),
    "bad extmap": (OFFER.replace("a=extmap:1 urn", "a=extmap:x urn").encode(), 400),
    "bad fmtp apt": (OFFER.replace("apt=97", "apt=zz").encode(), 400),
    "no fingerprint": (OFFER.replace("a=fingerprint:sha-256", "a=x-fingerprint:sha-256").encode(), 400),
    "no ice credentials": (OFFER.replace("a=ice-pwd:", "a=x-ice-pwd:").encode(), 400),
    "no rtcp-mux": (OFFER.replace("a=rtcp-mux\r\n", "").encode(), 400),
    "no mid": (OFFER.replace("a=mid:1\r\n", "").encode(), 400),
    "receive-only publisher": (OFFER.replace("a=sendonly", "a=recvonly").encode(), 400),
    "two audio sections": (OFFER.replace("m=video 45125 UDP/TLS/RTP/SAVPF 97 98", "m=audio 45125 UDP/TLS/RTP/SAVPF 96").encode(), 400),
    "bad setup": (OFFER.replace("a=setup:actpass", "a=setup:sideways").encode(), 400),
    "bad bundle": (OFFER.replace("a=group:BUNDLE 0 1", "a=group:BUNDLE 7 8").encode(), 400),
    "rejected section": (OFFER.replace("m=video 45125", "m=video 0").encode(), 400),
    "data channel only": (
        OFFER.split("m=audio")[0].encode() + b"m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:0\r\n",
        406,
    ),
    "no vp8": (OFFER.replace("VP8/90000", "H264/90000").encode(), 406),
    "no opus": (OFFER.replace("opus/48000/2", "ISAC/16000").encode(), 406),
}


def whip_headers(sfu, room="r1", identity="studio", role="publish", content_type="application/sdp"):
    return {"Content-Type": content_type, **sfu.auth(room, identity, role)}


@pytest.mark.parametrize("name", sorted(MALFORMED))
async def test_malformed_offer_is_a_clear_4xx(sfu, name):
    body, status = MALFORMED[name]
    response = await sfu.http.post(f"{sfu.base}/whip/r1", content=body, headers=whip_headers(sfu))
    assert response.status_code == status, response.text
    assert response.text.strip()  # a reason
    assert not sfu.node.resources


async def test_node_survives_the_corpus_and_still_publishes(sfu):
    for body, _ in MALFORMED.values():
        response = await sfu.http.post(f"{sfu.base}/whip/r1", content=body, headers=whip_headers(sfu))
        assert 400 <= response.status_code < 500
        # as WHEP offers they are as bad, but for one (a receive-only offer)
        response = await sfu.http.post(f"{sfu.base}/whep/r1", content=body, headers=whip_headers(sfu, role="subscribe"))
        assert response.status_code < 500
    for resource in list(sfu.node.resources.values()):
        await sfu.node._close_resource(resource, "deleted")
    session = await publish(sfu.http, f"{sfu.base}/whip/r1", sfu.token("r1", "studio", "publish"), [SyntheticAudioTrack()])
    await session.close()


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    return ".".join([header, payload, signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")])


def _alg_none(token: str) -> str:
    claims = jwt.decode(token, options={"verify_signature": False})
    return jwt.encode(claims, key=None, algorithm="none")


@pytest.mark.parametrize(
    ("label", "make_auth", "status"),
    [
        ("no header", lambda t: None, 401),
        ("basic scheme", lambda t: "Basic dXNlcjpwYXNz", 401),
        ("empty bearer", lambda t: "Bearer", 401),
        ("garbage", lambda t: "Bearer not.a.jwt", 401),
        ("tampered", lambda t: "Bearer " + _tampered(t), 401),
        ("alg none", lambda t: "Bearer " + _alg_none(t), 401),
        ("wrong secret", lambda t: "Bearer " + mint_media_token("x" * 48, room="r1", identity="a", role="publish"), 401),
        ("wrong audience", lambda t: "Bearer " + mint_media_token(SECRET, room="r1", identity="a", role="publish", audience="web"), 401),
        ("expired", lambda t: "Bearer " + mint_media_token(SECRET, room="r1", identity="a", role="publish", ttl=10, now=1e9), 401),
        ("not yet valid", lambda t: "Bearer " + mint_media_token(SECRET, room="r1", identity="a", role="publish", now=4e9), 401),
        ("other room", lambda t: "Bearer " + mint_media_token(SECRET, room="r2", identity="a", role="publish"), 403),
        ("wrong role", lambda t: "Bearer " + mint_media_token(SECRET, room="r1", identity="a", role="subscribe"), 403),
        ("control role", lambda t: "Bearer " + mint_media_token(SECRET, room="*", identity="a", role="control"), 403),
    ],
)
async def test_token_matrix_on_whip(sfu, label, make_auth, status):
    token = sfu.token("r1", "studio", "publish")
    headers = {"Content-Type": "application/sdp"}
    auth = make_auth(token)
    if auth is not None:
        headers["Authorization"] = auth
    response = await sfu.http.post(f"{sfu.base}/whip/r1", content=OFFER.encode(), headers=headers)
    assert response.status_code == status, (label, response.text)
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_subscribe_token_cannot_publish_and_vice_versa(sfu):
    response = await sfu.http.post(f"{sfu.base}/whep/r1", content=OFFER.encode(), headers=whip_headers(sfu, role="publish"))
    assert response.status_code == 403


async def test_content_type_and_size(sfu):
    response = await sfu.http.post(f"{sfu.base}/whip/r1", content=OFFER.encode(), headers=whip_headers(sfu, content_type="text/plain"))
    assert response.status_code == 415
    big = OFFER + "a=x-pad:" + "y" * (sfu.node.config.max_sdp_bytes + 10) + "\r\n"
    response = await sfu.http.post(f"{sfu.base}/whip/r1", content=big.encode(), headers=whip_headers(sfu))
    assert response.status_code == 413


async def test_unsupported_methods_on_endpoint(sfu):
    response = await sfu.http.get(f"{sfu.base}/whip/r1", headers=sfu.auth("r1", "studio", "publish"))
    assert response.status_code == 405
    assert "POST" in response.headers["allow"]
    response = await sfu.http.options(f"{sfu.base}/whep/r1")
    assert response.status_code == 204


async def test_cors_preflight_and_exposed_location(sfu):
    origin = "http://127.0.0.1:9"
    response = await sfu.http.options(
        f"{sfu.base}/whip/r1",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] in ("*", origin)
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert "POST" in response.headers["access-control-allow-methods"]
    session = await publish(sfu.http, f"{sfu.base}/whip/r1", sfu.token("r1", "studio", "publish"), [SyntheticAudioTrack()])
    try:
        response = await sfu.http.options(
            session.resource_url, headers={"Origin": origin, "Access-Control-Request-Method": "DELETE"}
        )
        assert response.status_code == 200
        # a real POST from another origin sees Location
        response = await ghost_whep(sfu, "r1", "c1", "audio", headers={"Origin": origin, **whip_headers(sfu, identity="c1", role="subscribe")})
        assert response.status_code == 201
        assert "location" in response.headers["access-control-expose-headers"].lower()
        await sfu.http.delete(
            f"http://{response.url.host}:{response.url.port}{response.headers['location']}",
            headers=sfu.auth("r1", "c1", "subscribe"),
        )
    finally:
        await session.close()


async def test_only_the_owner_may_delete(sfu):
    session = await publish(sfu.http, f"{sfu.base}/whip/r1", sfu.token("r1", "studio", "publish"), [SyntheticAudioTrack()])
    try:
        response = await sfu.http.delete(session.resource_url, headers=sfu.auth("r1", "someone-else", "publish"))
        assert response.status_code == 403
        response = await sfu.http.delete(session.resource_url, headers=sfu.auth("r1", "studio", "subscribe"))
        assert response.status_code == 403
        response = await sfu.http.delete(session.resource_url)
        assert response.status_code == 401
    finally:
        await session.close()


async def test_signaling_flood_is_bounded(node_factory):
    sfu = await node_factory(small_config(max_inflight_signaling=2))
    release = asyncio.Event()

    async def slow_body():
        yield OFFER[:100].encode()
        await release.wait()
        yield OFFER[100:].encode()

    headers = whip_headers(sfu)
    slow = [asyncio.create_task(sfu.http.post(f"{sfu.base}/whip/r1", content=slow_body(), headers=headers)) for _ in range(2)]
    await eventually(lambda: sfu.node._inflight == 2, what="both slow uploads hold a signaling slot")
    response = await sfu.http.post(f"{sfu.base}/whip/r1", content=OFFER.encode(), headers=headers)
    assert response.status_code == 429
    assert response.headers["retry-after"]
    release.set()
    for task in slow:
        assert (await task).status_code < 500
    for resource in list(sfu.node.resources.values()):
        await sfu.node._close_resource(resource, "deleted")


async def test_draining_node_takes_no_new_rooms(sfu):
    session = await publish(sfu.http, f"{sfu.base}/whip/r1", sfu.token("r1", "studio", "publish"), [SyntheticAudioTrack()])
    try:
        await sfu.node.drain(timeout=0)
        response = await sfu.http.post(f"{sfu.base}/whip/r2", content=OFFER.encode(), headers=whip_headers(sfu, room="r2"))
        assert response.status_code == 503
        # the existing room continues and still takes subscribers
        sub = await subscribe(sfu.http, f"{sfu.base}/whep/r1", sfu.token("r1", "c1", "subscribe"), kinds=("audio",), decode=True)
        await sub.close()
    finally:
        await session.close()


async def test_room_names_are_checked(sfu):
    response = await sfu.http.post(f"{sfu.base}/whip/{'x' * 200}", content=OFFER.encode(), headers=whip_headers(sfu, room="x" * 200))
    assert response.status_code == 400
    response = await sfu.http.post(f"{sfu.base}/whip/a%20b", content=OFFER.encode(), headers=whip_headers(sfu, room="a b"))
    assert response.status_code == 400


# --- ICE candidates an offer names: the node checks only allowed, well-formed ones, and few


AUDIO_CANDIDATE = "a=candidate:16572de6 1 udp 2130706431 127.0.0.1 42371 typ host"
VIDEO_CANDIDATE = "a=candidate:16572de6 1 udp 2130706431 127.0.0.1 45125 typ host"


def offer_with_candidates(candidates: list[str]) -> bytes:
    """The template offer whose (bundled) audio section names `candidates` instead of its own."""
    text = OFFER.replace(VIDEO_CANDIDATE + "\r\n", "").replace(AUDIO_CANDIDATE, "\r\n".join(candidates))
    return text.encode()


def host_candidate(address: str, port: int, priority: int = 2130706431) -> str:
    return f"a=candidate:{port} 1 udp {priority} {address} {port} typ host"


@pytest.mark.parametrize(
    ("candidate", "reason"),
    [
        (host_candidate("127.0.0.1", -2147483649), "port"),
        (host_candidate("127.0.0.1", 0), "port"),
        (host_candidate("127.0.0.1", 65536), "port"),
        ("a=candidate:1 1 udp 2130706431 127.0.0.1 1x2 typ host", "port"),
        ("a=candidate:1 1 udp 2130706431 attacker.example.com 5000 typ host", "address"),
        ("a=candidate:1 1 udp 2130706431 999.1.1.1 5000 typ host", "address"),
        ("a=candidate:1 0 udp 2130706431 127.0.0.1 5000 typ host", "component"),
        ("a=candidate:1 1 udp -5 127.0.0.1 5000 typ host", "priority"),
        ("a=candidate:1 1 sctp 2130706431 127.0.0.1 5000 typ host", "transport"),
    ],
)
async def test_malformed_candidate_is_refused_with_a_reason(sfu, candidate, reason):
    response = await sfu.http.post(f"{sfu.base}/whip/r1", content=offer_with_candidates([candidate]), headers=whip_headers(sfu))
    assert response.status_code == 400, response.text
    assert reason in response.text
    assert not sfu.node.resources


async def test_an_offer_names_at_most_20_candidates(sfu):
    many = [host_candidate("127.0.0.1", 20000 + i) for i in range(200)]
    response = await sfu.http.post(f"{sfu.base}/whip/r1", content=offer_with_candidates(many), headers=whip_headers(sfu))
    assert response.status_code == 400
    assert "more than 20 ICE candidates" in response.text
    assert not sfu.node.resources
    response = await sfu.http.post(f"{sfu.base}/whip/r1", content=offer_with_candidates(many[:20]), headers=whip_headers(sfu))
    assert response.status_code == 201, response.text


class StunSink(asyncio.DatagramProtocol):
    """A UDP socket that counts the STUN binding requests it receives."""

    def __init__(self) -> None:
        self.requests = 0

    def datagram_received(self, data: bytes, addr) -> None:  # type: ignore[no-untyped-def]
        if data[:2] == b"\x00\x01":  # binding request
            self.requests += 1


async def stun_sinks(address: str, count: int) -> list[tuple[asyncio.DatagramTransport, StunSink, int]]:
    loop = asyncio.get_running_loop()
    sinks = []
    for _ in range(count):
        transport, sink = await loop.create_datagram_endpoint(StunSink, local_addr=(address, 0))
        sinks.append((transport, sink, transport.get_extra_info("sockname")[1]))
    return sinks


async def test_checks_go_only_to_the_allowed_networks(node_factory):
    sfu = await node_factory(small_config(ice_allowed_networks=("127.0.0.1/32", "127.0.0.2/32")))
    [(allowed_transport, allowed, allowed_port)] = await stun_sinks("127.0.0.2", 1)
    [(outside_transport, outside, outside_port)] = await stun_sinks("127.0.0.3", 1)
    try:
        # the outside candidate has the higher priority: it would be checked first
        offer = offer_with_candidates([host_candidate("127.0.0.3", outside_port, 2130706431), host_candidate("127.0.0.2", allowed_port, 2130706000)])
        response = await sfu.http.post(f"{sfu.base}/whip/r1", content=offer, headers=whip_headers(sfu))
        assert response.status_code == 201, response.text
        assert "127.0.0.3" not in (await _remote_candidates(sfu))
        # a retransmission to the allowed one comes after the first check of every pair
        await eventually(lambda: allowed.requests >= 2, timeout=15)
        assert outside.requests == 0
    finally:
        allowed_transport.close()
        outside_transport.close()


async def _remote_candidates(sfu) -> str:
    [resource] = sfu.node.resources.values()
    transport = resource.peer.pc.getTransceivers()[0].receiver.transport.transport
    return " ".join(c.ip for c in transport.getRemoteCandidates())


async def test_checks_to_one_peer_are_paced(sfu):
    from rtc.ice import CHECK_BURST, CHECKS_PER_S

    sinks = await stun_sinks("127.0.0.1", 20)
    loop = asyncio.get_running_loop()
    try:
        start = loop.time()
        offer = offer_with_candidates([host_candidate("127.0.0.1", port) for _, _, port in sinks])
        response = await sfu.http.post(f"{sfu.base}/whip/r1", content=offer, headers=whip_headers(sfu))
        assert response.status_code == 201, response.text
        # unpaced, aioice sends 60 requests in 2 s here (20 checks, each sent again after 0.5 s and 1.5 s)
        while (elapsed := loop.time() - start) < 2.5:
            sent = sum(sink.requests for _, sink, _ in sinks)
            assert sent <= CHECK_BURST + CHECKS_PER_S * elapsed + 1, f"{sent} requests in {elapsed:.2f} s"
            await asyncio.sleep(0.05)
        assert sum(sink.requests for _, sink, _ in sinks) > 0
    finally:
        for transport, _, _ in sinks:
            transport.close()
