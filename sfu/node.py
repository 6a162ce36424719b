"""An SFU node: rooms, WHIP/WHEP resources, registration and drain.

``SfuNode`` owns every peer connection it creates and every task it starts.
``start()`` registers the node through the router (``vcs.routing``) and starts the
heartbeat and the once-a-second room tick (sender reports, allocation
step-ups, idle encoders and rooms, peers that never connected, communes'
cameras forwarded by a relay that nobody watches any more); ``drain()``
stops taking new rooms while existing rooms continue; ``stop()`` drains (up
to ``drain_timeout_s``), closes every peer and leaves Redis. Both are safe to
call twice.

A node with the relay role takes its rooms' tiers from an origin
(``sfu.relay_tiers``): a room is opened by ``PUT /rooms/{room}`` naming the
origin, or by a subscriber's WHEP when Redis says which origin serves the
room. A relay never writes the room's placement: that is the origin's. On a
relay, ``start_uplink``/``stop_uplink`` forward a commune's own camera and
microphone to the origin (``sfu.uplink``); on the origin, such a WHIP publish
(a relay credential and ``?identity=X``) becomes publisher X.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from rtc.aiortc_adapter import ReusableCertificate, bytes_received, defer_bitrate_estimators
from rtc.consent import consent_counters, tolerate_load
from rtc.ice import parse_networks, restrict_host_addresses
from rtc.whip_client import MediaSession
from rtc.whip_client import subscribe as whep_subscribe
from vcs.media_tokens import MediaClaims, MediaTokenError, TokenForbidden, mint_media_token, verify_media_token
from vcs.recordings import RecordingLog
from vcs.routing import NodeInfo, NodeRouter, node_ttl

from .admission import Admission, Slot
from .allocator import LinkInfo, TierAllocation
from .certificates import NodeCertificate
from .config import SfuConfig
from .errors import BadRequest, Conflict, Forbidden, Gone, NotFound, TooManyRequests, Unauthorized, Unavailable
from .fanout import resolve as resolve_fanout
from .offer import Offer, check_offer
from .peer import add_transceiver, create_peer, negotiate
from .publisher import Publisher
from .recordings import Recordings
from .relay_tiers import Origin, RelayTiers
from .room import Room
from .traffic import Traffic
from .subscriber import Subscriber
from .test_room import TestPattern, stop_quietly
from .udp_mux import UdpMux, open_shared_socket
from .uplink import Uplink
from .upstream import HopTimes

__all__ = ["LinkLookup", "Resource", "SfuNode"]

logger = logging.getLogger(__name__)

LinkLookup = Callable[[str], Awaitable[LinkInfo | None]]
LINK_LOOKUP_TIMEOUT_S = 2.0
TICK_S = 1.0
RELAY_CREDENTIAL_TTL_S = 120  # minted afresh for every request to the origin
UPSTREAM_HTTP_TIMEOUT_S = 15.0
UPLINK_OUTCOMES = ("started", "refused", "closed_unwatched")
ENDED_ROOMS_KEPT = 1024  # rooms this node remembers ending: a relay asking for one is told it is gone


@dataclass
class Resource:
    id: str
    room: str
    kind: str  # "whip" or "whep"
    identity: str
    peer: Publisher | Subscriber
    slot: Slot | None = None  # its place among the handshakes (a subscriber's, until it connects)


async def _unknown_link(identity: str) -> LinkInfo | None:
    return None


class SfuNode:
    def __init__(
        self,
        config: SfuConfig,
        *,
        secret: str,
        redis: Any = None,
        link_lookup: LinkLookup | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config = config.with_changes(fanout=resolve_fanout(config.fanout))
        self._secret = secret
        self._router = NodeRouter(redis) if redis is not None else None
        self.recordings = Recordings(config, RecordingLog(redis) if redis is not None else None, clock=clock)
        self._link_lookup = link_lookup or _unknown_link
        self._clock = clock
        self._networks = parse_networks(config.ice_allowed_networks)
        self.rooms: dict[str, Room] = {}
        # rooms ended here, newest last: 410 to a relay (it ends its copy), where an unknown room is a 404 (it waits:
        # this origin may have restarted, and the room comes back when the host publishes again)
        self._ended: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._origins_started: dict[str, int] = {}  # a relay: when each live node last (re)started, as registered
        self.resources: dict[str, Resource] = {}
        self._tasks: set[asyncio.Task] = set()
        self._loops: list[asyncio.Task] = []
        self._inflight = 0
        self.joining = Admission(config.max_handshakes, config.admission_wait_s, clock)
        self.certificate: NodeCertificate | None = None  # made at start: one for every peer, rotated
        self._lag_seen: tuple[float, float] | None = None  # (loop lag total, clock) at the last tick
        self.started = False
        self.draining = False
        self.stopped = False
        self.started_at = time.time()
        self.counters: dict[str, int] = {}
        self.admission = self.joining.counts  # joins that waited for a handshake slot, joins turned away
        self._patterns: dict[str, TestPattern] = {}  # test rooms' programs, by room name
        self._publisher_marks: dict[str, tuple[int, float]] = {}  # resource id => (packets seen, monotonic time they last grew)
        self._unwatched_since: dict[str, float] = {}  # resource id of a relayed publisher => when it was last watched
        # uplinks started and refused (on a relay), closed for nobody watching (on an origin)
        self.uplink_outcomes = dict.fromkeys(UPLINK_OUTCOMES, 0)
        self.relay = config.role == "relay"
        self.hops = HopTimes()  # a relay's packets' time from upstream to fan-out
        self.traffic = Traffic()  # bitrate in and out, sampled at each heartbeat
        self._upstream_http: httpx.AsyncClient | None = None  # towards the origin (tiers, uplinks), made on first use
        self.udp: UdpMux | None = None  # the socket answered peers share (None: each has its own), opened on start

    async def __aenter__(self) -> SfuNode:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        if self.started:
            return
        self.started = True
        tolerate_load()  # a busy node keeps its peers: prompt STUN answers, consent not lost to its own lag
        defer_bitrate_estimators()  # a subscriber's (send-only) transceiver never needs its receiver's
        self.certificate = NodeCertificate(self.config.cert_rotate_s, self._clock)
        if self.config.ice_host_addresses:
            restrict_host_addresses(self.config.ice_host_addresses)
        self.udp = open_shared_socket(self.config.udp_port)
        await self._register()
        await self._follow_origins()  # a relay knows its origins' starts from the first, and sees a restart at the next beat
        self._loops = [asyncio.create_task(self._run_ticks(), name="sfu-tick")]
        if self._router is not None:
            self._loops.append(asyncio.create_task(self._run_heartbeat(), name="sfu-heartbeat"))

    async def drain(self, timeout: float | None = None) -> None:
        """Take no new rooms; wait up to ``timeout`` for the current ones to end."""
        if not self.draining:
            self.draining = True
            await self._register()
        deadline = self._clock() + (self.config.drain_timeout_s if timeout is None else timeout)
        while self.rooms and self._clock() < deadline:
            await asyncio.sleep(0.2)

    async def stop(self, drain_timeout: float | None = None) -> None:
        if self.stopped or not self.started:
            self.stopped = True
            return
        await self.drain(drain_timeout)
        self.stopped = True
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        for name in list(self.rooms):
            await self.end_room(name)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._upstream_http is not None:
            await self._upstream_http.aclose()
        if self.udp is not None:
            self.udp.close()
        await self._unregister()

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # authorization and limits ------------------------------------------------

    def authorize(self, authorization: str | None, room: str, role: str | tuple[str, ...]) -> MediaClaims:
        """The token's claims if it grants `role` (or one of several) in `room` on this node."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("a Bearer media token is required", headers={"WWW-Authenticate": "Bearer"})
        try:
            return verify_media_token(self._secret, token.strip(), room=room, role=role, node=self.config.node_id)
        except TokenForbidden as exc:
            raise Forbidden(str(exc)) from None
        except MediaTokenError as exc:
            raise Unauthorized(str(exc), headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None

    @contextlib.asynccontextmanager
    async def signaling_slot(self) -> AsyncIterator[None]:
        """Bound the signaling requests being worked on at once."""
        if self._inflight >= self.config.max_inflight_signaling:
            raise TooManyRequests("too many signaling requests in flight", headers={"Retry-After": "1"})
        self._inflight += 1
        try:
            yield
        finally:
            self._inflight -= 1

    @property
    def handshakes(self) -> int:
        """Peers still in their ICE/DTLS handshake: the CPU a join costs, on both sides."""
        return sum(1 for r in self.resources.values() if r.peer.pc.connectionState in ("new", "connecting"))

    @property
    def joins_connected(self) -> int:
        """Admitted joins that completed their ICE/DTLS handshake (`vcs_sfu_joins_total`)."""
        return self.joining.connected

    def _follow_loop_lag(self, now: float) -> None:
        """Fewer handshakes at once while this loop runs late (sfu.admission)."""
        total = consent_counters().loop_lag_s
        if self._lag_seen is not None and now > self._lag_seen[1]:
            self.joining.adapt((total - self._lag_seen[0]) / (now - self._lag_seen[1]))
        self._lag_seen = (total, now)

    @property
    def load(self) -> int:
        return sum(len(r.subscribers) for r in self.rooms.values())

    def count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    # rooms ---------------------------------------------------------------------

    def room(self, name: str) -> Room:
        room = self.rooms.get(name)
        if room is None:
            raise NotFound(f"no room {name!r} on this node")
        return room

    def _check_new_room(self) -> None:
        if self.draining or self.stopped:
            raise Unavailable("this node is draining: no new rooms", headers={"Retry-After": "5"})
        if len(self.rooms) >= self.config.max_rooms:
            raise Unavailable("this node hosts its maximum number of rooms")

    async def _open_room(self, name: str) -> Room:
        room = self.rooms.get(name)
        if room is not None:
            return room
        if self.relay:
            return await self._open_relay_room_from_registry(name)
        self._check_new_room()
        room = Room(name, self.config, clock=self._clock)
        self.rooms[name] = room
        self._ended.pop(name, None)
        if room.test:
            top = next((t for t in self.config.tiers if not t.audio_only), None)
            width, height = (top.width, top.height) if top else (320, 180)
            self._patterns[name] = pattern = TestPattern(room, width=width, height=height, fps=min(15, self.config.frame_rate))
            pattern.start()
        await self._route("set_node_for_room", name, self.config.node_id, node_ttl(self.config.heartbeat_interval_s))
        return room

    async def open_relay_room(self, name: str, origin: Origin) -> Room:
        """Open (or re-point) the relay room `name`, pulling its tiers from `origin`."""
        if not self.relay:
            raise BadRequest("this node is an origin: it relays no room")
        if origin.node_id == self.config.node_id:
            raise BadRequest("a relay cannot take a room from itself")
        room = self.rooms.get(name)
        if room is not None:
            assert isinstance(room.tiers, RelayTiers)
            if origin != room.tiers.origin:  # uplinks go to the old origin: the orchestrator brings them again
                for identity in list(room.uplinks):
                    await self.stop_uplink(name, identity)
            await room.tiers.repoint(origin)
            return room
        self._check_new_room()
        tiers = RelayTiers(name, self.config, origin, connect=self._connect_upstream, hops=self.hops, clock=self._clock)
        room = Room(name, self.config, clock=self._clock, tiers=tiers)
        tiers.start(room.audio)
        self.rooms[name] = room
        logger.info("relay room %s opened from %s (%s)", name, origin.url, origin.node_id)
        return room

    async def _open_relay_room_from_registry(self, name: str) -> Room:
        """A subscriber came first: the origin serving the room is in Redis."""
        if self._router is None:
            raise NotFound(f"no room {name!r} on this relay (open it with PUT /sfu/rooms/{name} naming its origin)")
        try:
            origin = await self._router.node_for_room(name)
        except Exception as exc:
            logger.warning("relay: looking up the origin of room %s failed: %s", name, exc)
            raise Unavailable("cannot look up the room's origin now", headers={"Retry-After": "5"}) from None
        if origin is None or origin.role != "origin" or origin.id == self.config.node_id:
            raise NotFound(f"no room {name!r} on this relay, and no origin serves it")
        return await self.open_relay_room(name, Origin(origin.url.rstrip("/"), origin.id))

    async def _connect_upstream(self, room: str, origin: Origin, tier: str, kind: str) -> MediaSession:
        """One upstream WHEP subscription of a relay room, with a fresh relay credential."""
        token = self._relay_credential(room, origin)
        return await whep_subscribe(self._upstream(), f"{origin.url}/sfu/whep/{room}", token, tier=tier, kinds=(kind,))

    def _upstream(self) -> httpx.AsyncClient:
        """The HTTP client towards origins (tiers, uplinks), made on first use."""
        if self._upstream_http is None:
            self._upstream_http = httpx.AsyncClient(timeout=UPSTREAM_HTTP_TIMEOUT_S)
        return self._upstream_http

    def _relay_credential(self, room: str, origin: Origin) -> str:
        """This relay's credential towards ``origin`` for ``room``."""
        return mint_media_token(self._secret, room=room, identity=self.config.node_id, role="relay",
                                node=origin.node_id, ttl=RELAY_CREDENTIAL_TTL_S)  # fmt: skip

    async def end_room(self, name: str) -> None:
        room = self.rooms.pop(name, None)
        if room is None:
            return
        room.closed = True
        self._ended[name] = None
        while len(self._ended) > ENDED_ROOMS_KEPT:
            self._ended.popitem(last=False)
        await stop_quietly(self._patterns.pop(name, None))
        for identity in list(room.uplinks):
            await self.stop_uplink(name, identity)
        for resource in [r for r in self.resources.values() if r.room == name]:
            await self._close_resource(resource, "room ended")
        await self.recordings.stop(name)
        await room.tiers.close()
        for stream in room.audio_streams:
            stream.close()
        if not self.relay:  # the room's placement is the origin's
            await self._route("clear_room", name)

    async def record(self, room_name: str, meeting_id: str, occurrence: str) -> None:
        """Record the room's program into the occurrence's file (``Recordings.start``)."""
        await self.recordings.start(self.room(room_name), meeting_id, occurrence)

    # WHIP / WHEP -------------------------------------------------------------

    async def publish(
        self, room_name: str, claims: MediaClaims, body: bytes, identity: str | None = None
    ) -> tuple[Resource, str]:
        """A WHIP publish; with a relay credential, ``identity`` is the commune the relay forwards (never the host).

        Admitted as a subscription is (``_admitted``)."""
        relay = None
        if claims.role == "relay":
            if not identity:
                raise BadRequest("a relay publishes a commune: ?identity=<endpoint id> is required")
            relay = claims.identity
        else:
            identity = claims.identity
        self.joining.check()  # a storm's excess is turned away before its offers are parsed
        offer = check_offer(body, max_bytes=self.config.max_sdp_bytes, publishing=True, networks=self._networks)
        return await self._admitted(lambda: self._publish(room_name, claims, offer, identity, relay))

    async def _publish(
        self, room_name: str, claims: MediaClaims, offer: Offer, identity: str, relay: str | None
    ) -> tuple[Resource, str]:
        room = await self._open_room(room_name)
        pc = create_peer(self._certificate())
        resource_id = secrets.token_urlsafe(12)
        publisher = room.new_publisher(resource_id, identity, pc)
        publisher.relay = relay
        try:
            for kind in offer.kinds:
                add_transceiver(pc, kind, "recvonly")
            answer = await negotiate(pc, offer, self._networks, self.udp)
            publisher.tap()
        except BaseException:
            await pc.close()
            raise
        resource = Resource(resource_id, room_name, "whip", identity, publisher)
        self._track(resource)
        replaced = room.add_publisher(publisher, host=claims.host and relay is None)
        if replaced is not None:
            old = self.resources.get(replaced.resource_id)
            if old is not None:
                self._spawn(self._close_resource(old, "replaced by a new publisher"))
        return resource, answer

    async def subscribe(
        self,
        room_name: str,
        claims: MediaClaims,
        body: bytes,
        source: str | None = None,
        max_tier: str | None = None,
        tier: str | None = None,
    ) -> tuple[Resource, str]:
        """A WHEP subscription. `tier`: a relay's upstream, pinned to that tier
        (no allocation; "audio" is the program audio only); a relay
        credential subscribes only to a room this node already serves.
        Admitted as a publish is (``_admitted``)."""
        names = {t.name for t in self.config.tiers}
        for asked in (max_tier, tier):
            if asked is not None and asked not in names:
                raise BadRequest(f"unknown tier {asked!r}; this node has {', '.join(t.name for t in self.config.tiers)}")
        if tier is not None and claims.role != "relay":
            raise Forbidden("only a relay's credential may pin a tier (?tier=)")
        self.joining.check()  # a storm's excess is turned away before its offers are parsed
        offer = check_offer(body, max_bytes=self.config.max_sdp_bytes, publishing=False, networks=self._networks)
        if self.load >= self.config.capacity:
            raise Unavailable("this node is at capacity", headers={"Retry-After": "5"})
        return await self._admitted(lambda: self._subscribe(room_name, claims, offer, source, max_tier, tier))

    async def _admitted(self, join: Callable[[], Awaitable[tuple[Resource, str]]]) -> tuple[Resource, str]:
        """Run `join` once it has a handshake slot (``sfu.admission``: it may wait its turn, or
        be refused with 503 and Retry-After); its peer holds the slot until it connects, fails or closes."""
        slot = await self.joining.enter()
        try:
            async with self.signaling_slot():  # taken once admitted: a queue of joins waits without holding one
                resource, answer = await join()
        except BaseException:
            slot.release()
            raise
        self._hold(resource, slot)
        return resource, answer

    async def _subscribe(
        self, room_name: str, claims: MediaClaims, offer: Offer,
        source: str | None, max_tier: str | None, tier: str | None,
    ) -> tuple[Resource, str]:  # fmt: skip
        relayed = claims.role == "relay"
        if relayed and room_name in self._ended and room_name not in self.rooms:
            raise Gone(f"room {room_name!r} ended on this node")
        room = self.room(room_name) if relayed else await self._open_room(room_name)
        room.check_source(claims.identity, source)
        link = None if relayed else await self._lookup_link(claims.identity)
        allocation = TierAllocation(self.config, link, self._clock(), tier or max_tier)
        pc = create_peer(self._certificate())
        resource_id = secrets.token_urlsafe(12)
        sub = Subscriber(
            resource_id,
            claims.identity,
            pc,
            allocation,
            source=source,
            on_ready=room.activate,
            on_tier=room.set_tier,
            pinned=tier is not None,
            srtp=self.config.srtp,
        )
        try:
            for kind in offer.kinds:
                add_transceiver(pc, kind, "sendonly")
            sub.adopt()
            answer = await negotiate(pc, offer, self._networks, self.udp)
        except BaseException:
            await sub.close()
            raise
        room.add_subscriber(sub)
        resource = Resource(resource_id, room_name, "whep", claims.identity, sub)
        self._track(resource)
        return resource, answer

    async def _lookup_link(self, identity: str) -> LinkInfo | None:
        try:
            return await asyncio.wait_for(self._link_lookup(identity), LINK_LOOKUP_TIMEOUT_S)
        except Exception:
            logger.warning("link lookup for %s failed; using the highest tier", identity, exc_info=True)
            return None

    def _certificate(self) -> ReusableCertificate:
        if self.certificate is None:  # a node used before start(): as started
            self.certificate = NodeCertificate(self.config.cert_rotate_s, self._clock)
        return self.certificate.for_new_peer()

    def _hold(self, resource: Resource, slot: Slot) -> None:
        """`resource` keeps its handshake slot until it connects, fails or closes."""
        state = resource.peer.pc.connectionState
        if state in ("new", "connecting") and resource.id in self.resources:
            resource.slot = slot
        else:
            slot.release(connected=state == "connected")

    def _track(self, resource: Resource) -> None:
        self.resources[resource.id] = resource
        pc = resource.peer.pc

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState not in ("new", "connecting") and resource.slot is not None:
                resource.slot.release(connected=pc.connectionState == "connected")
            if pc.connectionState in ("failed", "closed"):
                self._spawn(self._close_resource(resource, f"connection {pc.connectionState}"))

    def resource(self, room_name: str, resource_id: str, kind: str) -> Resource:
        resource = self.resources.get(resource_id)
        if resource is None or resource.room != room_name or resource.kind != kind:
            raise NotFound("no such resource")
        return resource

    def findings(self, resource: Resource, claims: MediaClaims) -> dict:
        """What this node saw of a tester's camera and microphone (test rooms only)."""
        if claims.identity != resource.identity and claims.role != "control":
            raise Forbidden("this resource belongs to another endpoint")
        room = self.rooms.get(resource.room)
        probe = room.probes.get(resource.id) if room is not None else None
        if probe is None:
            raise NotFound("findings are kept for publishers in test rooms only")
        return {"resource": resource.id, "identity": resource.identity, **probe.findings()}

    async def delete(self, resource: Resource, claims: MediaClaims) -> None:
        # a commune's camera forwarded by a relay belongs to that relay (a relay's identity is its node id)
        owner = getattr(resource.peer, "relay", None) or resource.identity
        if claims.identity != owner and claims.role != "control":
            raise Forbidden("this resource belongs to another endpoint")
        await self._close_resource(resource, "deleted")

    async def _close_resource(self, resource: Resource, why: str) -> None:
        if self.resources.pop(resource.id, None) is None:
            return
        logger.info("room %s: %s %s of %s closed: %s", resource.room, resource.kind.upper(), resource.id, resource.identity, why)
        if resource.slot is not None:
            resource.slot.release()
        self._publisher_marks.pop(resource.id, None)
        self._unwatched_since.pop(resource.id, None)
        room = self.rooms.get(resource.room)
        peer = resource.peer
        if room is not None:
            if isinstance(peer, Publisher):
                uplink = room.uplinks.get(peer.identity)
                if uplink is not None and uplink.publisher is peer:
                    await self.stop_uplink(resource.room, peer.identity)  # the commune left: nothing to forward
                room.remove_publisher(peer)
            else:
                room.remove_subscriber(peer)
        try:
            await peer.close()
        except Exception:
            logger.exception("closing %s %s failed", resource.kind, resource.id)

    # uplinks (on a relay) ------------------------------------------------------

    async def start_uplink(self, room_name: str, identity: str) -> Uplink:
        """Forward ``identity``'s camera and microphone to the room's origin; the running one if there is one."""
        room = self.room(room_name)
        if not isinstance(room.tiers, RelayTiers):
            raise Conflict(f"room {room_name} does not pull from an origin: there is nowhere to forward to")
        publisher = room.publishers.get(identity)
        if publisher is None:
            raise NotFound(f"{identity} is not publishing in room {room_name} on this node")
        uplink = room.uplinks.get(identity)
        if uplink is not None and not uplink.closed:
            return uplink
        origin = room.tiers.origin
        uplink = Uplink(room_name, publisher, origin.url, self.config)
        uplink.started = self._clock()
        room.uplinks[identity] = uplink
        try:
            await uplink.start(self._upstream(), self._relay_credential(room_name, origin), self._uplink_dropped)
        except BaseException:
            if room.uplinks.get(identity) is uplink:
                del room.uplinks[identity]
            await uplink.close()
            self.uplink_outcomes["refused"] += 1
            raise
        self.uplink_outcomes["started"] += 1
        logger.info("room %s: forwarding %s to the origin %s", room_name, identity, origin.url)
        return uplink

    async def stop_uplink(self, room_name: str, identity: str) -> None:
        """Stop forwarding ``identity`` (nothing to do when it is not forwarded)."""
        room = self.rooms.get(room_name)
        uplink = room.uplinks.pop(identity, None) if room is not None else None
        if uplink is not None:
            token = self._relay_credential(room_name, room.tiers.origin) if isinstance(room.tiers, RelayTiers) else None
            await uplink.close(token)

    def _uplink_dropped(self, uplink: Uplink) -> None:
        """The origin closed its side (nobody watched there) or the link failed: forget it."""
        room = self.rooms.get(uplink.room)
        if room is not None and room.uplinks.get(uplink.identity) is uplink:
            self._spawn(self.stop_uplink(uplink.room, uplink.identity))

    def _close_unwatched(self, now: float) -> None:
        """On an origin: a commune's camera forwarded by a relay that nobody has watched for a while is closed."""
        for resource in list(self.resources.values()):
            peer = resource.peer
            if not isinstance(peer, Publisher) or peer.relay is None:
                continue
            room = self.rooms.get(resource.room)
            if room is not None and room.watched(resource.identity):
                self._unwatched_since.pop(resource.id, None)
                continue
            since = self._unwatched_since.setdefault(resource.id, now)
            if now - since >= self.config.uplink_idle_s:
                logger.info("room %s: nobody watches %s, closing its uplink from %s", resource.room, resource.identity, peer.relay)
                self.uplink_outcomes["closed_unwatched"] += 1
                self._spawn(self._close_resource(resource, "nobody watches it"))

    # background loops ----------------------------------------------------------

    async def _run_ticks(self) -> None:
        try:
            while True:
                await asyncio.sleep(TICK_S)
                await self._tick(self._clock())
        except asyncio.CancelledError:
            pass
        except Exception:
            logger.exception("SFU tick loop failed")

    async def _tick(self, now: float) -> None:
        self._follow_loop_lag(now)
        if self.certificate is not None:
            self.certificate.rotate_if_due()
        self._close_unwatched(now)
        for name, room in list(self.rooms.items()):
            room.tick(now)
            await self.recordings.follow(name, room)
            for uplink in list(room.uplinks.values()):
                if not uplink.connected and now - uplink.started > self.config.connect_timeout_s:
                    await self.stop_uplink(name, uplink.identity)
                else:
                    uplink.tick(now)
            for encoder in room.take_retired():
                await encoder.close()
            if room.tiers.ended:
                logger.warning("relay room %s ended: its origin no longer has it", name)
                await self.end_room(name)
            elif room.empty and now - room.last_active > self.config.room_idle_timeout_s:
                await self.end_room(name)
        for resource in list(self.resources.values()):
            peer = resource.peer
            if peer.pc.connectionState != "connected" and now - peer.created > self.config.connect_timeout_s:
                self._spawn(self._close_resource(resource, "not connected in time"))
            if isinstance(peer, Publisher):
                packets = peer.audio_packets + peer.video_packets
                seen, _ = self._publisher_marks.get(resource.id, (0, 0.0))
                if packets > seen:
                    self._publisher_marks[resource.id] = (packets, time.monotonic())

    def media_heard(self) -> dict[str, dict[str, float]]:
        """Per room, when each connected identity's media was last seen (epoch seconds).

        A subscriber counts from its receiver's RTCP reports (aiortc sends one
        about every second while media arrives): a commune is there while it
        receives, whatever it still sends. An identity that only publishes (the
        host) counts from its RTP. A peer whose transport is not connected is
        left out, whatever it last said.
        """
        offset = time.time() - time.monotonic()
        receiving: dict[str, dict[str, float]] = {name: {} for name in self.rooms}
        sending: dict[str, dict[str, float]] = {name: {} for name in self.rooms}
        for resource in self.resources.values():
            peer = resource.peer
            if resource.room not in receiving or peer.pc.connectionState != "connected":
                continue
            if isinstance(peer, Publisher):
                at, into = self._publisher_marks.get(resource.id, (0, None))[1], sending
            else:
                at, into = peer.heard_at, receiving
            if at is not None:
                room = into[resource.room]
                room[resource.identity] = max(room.get(resource.identity, 0.0), round(at + offset, 1))
        return {name: {**sending[name], **receiving[name]} for name in self.rooms}

    async def _run_heartbeat(self) -> None:
        try:
            while True:
                await asyncio.sleep(self.config.heartbeat_interval_s)
                await self._register()
                await self._follow_origins()
        except asyncio.CancelledError:
            pass

    async def _follow_origins(self) -> None:
        """A relay: an origin registered anew (it restarted) lost its rooms' subscriptions: subscribe again now.

        Its connections would otherwise be seen dead only when ICE consent runs
        out, about 30 s later; the room comes back when its host publishes again."""
        if not self.relay or self._router is None:
            return
        try:
            started = {n.id: n.started for n in await self._router.nodes()}
        except Exception:
            logger.warning("relay: reading the origins' records failed", exc_info=True)
            return
        for name, room in list(self.rooms.items()):
            origin = room.tiers.origin.node_id
            seen = self._origins_started.get(origin)
            if seen is not None and started.get(origin, seen) != seen:
                logger.info("relay room %s: its origin %s restarted; subscribing again", name, origin)
                await room.tiers.resubscribe()
        self._origins_started |= started  # a node not seen now (dead, restarting) keeps its last start

    # registry (vcs.routing) ------------------------------------------------------

    def node_info(self) -> NodeInfo:
        return NodeInfo(
            id=self.config.node_id,
            url=self.config.public_url,
            role=self.config.role,
            capacity=self.config.capacity,
            load=self.load,
            draining=self.draining,
            rooms=len(self.rooms),
            started=int(self.started_at),
            heartbeat=time.time(),
            ttl=node_ttl(self.config.heartbeat_interval_s),
            provinces=self.config.provinces,
            upstream_streams=self.upstream_streams,
            bitrate_in_kbps=self.traffic.in_kbps,
            bitrate_out_kbps=self.traffic.out_kbps,
        )

    @property
    def upstream_streams(self) -> int:
        """A relay's subscriptions to its origins: one per tier in use and one for audio, per room."""
        return sum(len(r.tiers.upstreams) for r in self.rooms.values() if isinstance(r.tiers, RelayTiers))

    @property
    def uplinks(self) -> int:
        """Communes' cameras this relay forwards to origins."""
        return sum(len(r.uplinks) for r in self.rooms.values())

    @property
    def relayed_publishers(self) -> int:
        """Communes' cameras this origin receives from relays."""
        return sum(1 for r in self.rooms.values() for p in r.publishers.values() if p.relay is not None)

    def info(self) -> dict[str, Any]:
        """What `GET /sfu/node` answers: the registry record, uplinks, and a relay's upstream figures."""
        info = asdict(self.node_info())
        info.update(uplinks=self.uplinks, relayed_publishers=self.relayed_publishers, uplink_outcomes=dict(self.uplink_outcomes))
        if self.relay:
            info.update(hop_ms_p95=self.hops.p95_ms())
        udp = self.udp
        info.update(udp=None if udp is None else {"port": udp.port, "peers": udp.peers, "dropped": dict(udp.dropped),
                                                  "takeovers": udp.takeovers, "send_errors": udp.send_errors})  # fmt: skip
        return info

    def byte_counts(self) -> dict[int, tuple[int, int]]:
        """Each peer's (bytes in, bytes out) so far: publishers and upstreams bring media in, subscribers and uplinks send it."""
        counts: dict[int, tuple[int, int]] = {}
        for resource in self.resources.values():
            peer = resource.peer
            if isinstance(peer, Publisher):
                transceivers = peer.pc.getTransceivers()
                counts[id(peer)] = (bytes_received(transceivers[0].receiver.transport) if transceivers else 0, 0)
            else:
                counts[id(peer)] = (0, sum(d.octets_sent for d in peer.downtracks))
        for room in self.rooms.values():
            if isinstance(room.tiers, RelayTiers):
                counts.update((id(u), (u.bytes, 0)) for u in room.tiers.upstreams)
            for uplink in room.uplinks.values():
                if uplink.feed is not None:
                    counts[id(uplink)] = (0, sum(d.octets_sent for d in uplink.feed.downtracks))
        return counts

    async def _register(self) -> None:
        self.traffic.sample(self.byte_counts(), time.monotonic())
        # a room's placement is its origin's; each node, origin or relay, reports the media it sees itself
        rooms = [] if self.relay else list(self.rooms)
        await self._route("register_node", self.node_info(), rooms, self.media_heard())

    async def _unregister(self) -> None:
        await self._route("unregister_node", self.config.node_id)

    async def _route(self, method: str, *args: Any) -> None:
        """A registry write; a Redis outage never stops media, so it is logged and skipped."""
        if self._router is None:
            return
        try:
            await getattr(self._router, method)(*args)
        except Exception:
            logger.warning("SFU registry %s failed", method, exc_info=True)
