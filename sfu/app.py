"""The node's HTTP surface: WHIP/WHEP signaling, floor API and metrics.

Routes are relative; the web app (and ``vcs sfu``) mount this app at
``/sfu``, and ``Location`` headers include the mount path (``root_path``).

======================================  ===============================  =========
path                                    methods                          token role
======================================  ===============================  =========
/whip/{room}                            POST (offer), OPTIONS            publish
/whip/{room}?identity=ID                POST (offer): an uplink          relay
/whip/{room}/{resource}                 DELETE, OPTIONS (PATCH: 405)     publish, relay
                                        GET (test rooms: what the node saw)
/whep/{room}[?source=ID&max_tier=T]     POST (offer), OPTIONS            subscribe
/whep/{room}?tier=T                     POST (offer): a relay's upstream relay
/whep/{room}/{resource}                 DELETE, OPTIONS (PATCH: 405)     subscribe, relay
/node                                   GET                              control
/rooms                                  GET                              control
/rooms/{room}                           GET, PUT {"host": ID[, "record": {"meeting_id", "occurrence"}]}, DELETE    control
                                        (a relay: PUT {"origin": URL, "origin_node": ID})
/rooms/{room}/floor                     POST {"identity": ID}, DELETE    control
/rooms/{room}/uplinks                   POST {"identity": ID}            control
/rooms/{room}/uplinks/{identity}        DELETE                           control
/metrics                                GET (Prometheus text)            none (rooms: control)
======================================  ===============================  =========

Errors are ``sfu.errors.SfuError``; ``_on_error`` is the one place that turns
them into responses (``text/plain`` reason, status from the class).
"""

from __future__ import annotations

import json
import logging
import re
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .errors import BadRequest, MethodNotAllowed, PayloadTooLarge, SfuError
from .metrics import render_metrics
from .node import SfuNode
from .relay_tiers import Origin
from .offer import check_content_type
from .test_room import is_test_room

__all__ = ["create_sfu_app"]

logger = logging.getLogger(__name__)

ENDPOINT_METHODS = "POST, OPTIONS"
RESOURCE_METHODS = "DELETE, OPTIONS"
EXPOSED_HEADERS = ["Location", "ETag", "Link", "Accept-Patch", "Allow", "Retry-After"]
MAX_JSON_BYTES = 4096
# token roles per signaling kind; a relay's credential subscribes to its origin's tiers,
# and publishes a commune's camera there only as an uplink (``?identity=``)
ROLES = {"whip": "publish", "whep": ("subscribe", "relay")}
RESOURCE_ROLES = {"whip": ("publish", "relay"), "whep": ("subscribe", "relay")}
_ROOM = re.compile(r"^[A-Za-z0-9._:@-]{1,128}$")
_IDENTITY = re.compile(r"^[A-Za-z0-9._:@-]{1,128}$")


def _room_name(request: Request) -> str:
    room = request.path_params["room"]
    if not _ROOM.match(room):
        raise BadRequest("a room name is 1-128 letters, digits or . _ : @ -")
    return room


def create_sfu_app(node: SfuNode) -> Starlette:
    async def signal(request: Request, kind: str) -> Response:
        room = _room_name(request)
        if request.method == "OPTIONS":
            return Response(status_code=204, headers={"Allow": ENDPOINT_METHODS})
        if request.method != "POST":
            raise MethodNotAllowed(f"{request.method} is not supported here", headers={"Allow": ENDPOINT_METHODS})
        node.count(f"{kind}_requests")
        identity = request.query_params.get("identity") if kind == "whip" else None
        if identity is not None:  # a relay forwards a commune's camera: only a relay credential may
            _check_identity(identity)
        claims = node.authorize(request.headers.get("authorization"), room, "relay" if identity is not None else ROLES[kind])
        check_content_type(request.headers.get("content-type"))
        async with node.signaling_slot():  # a slow upload holds a slot; the wait for a handshake slot does not
            body = await _read_body(request, node.config.max_sdp_bytes)
        if kind == "whip":
            resource, answer = await node.publish(room, claims, body, identity)
        else:
            source = request.query_params.get("source") or None
            max_tier = request.query_params.get("max_tier") or None
            tier = request.query_params.get("tier") or None
            resource, answer = await node.subscribe(room, claims, body, source, max_tier, tier)
        location = f"{request.scope.get('root_path', '')}/{kind}/{room}/{resource.id}"
        return Response(
            answer,
            status_code=201,
            media_type="application/sdp",
            headers={"Location": location, "ETag": f'"{resource.id}"'},
        )

    async def whip(request: Request) -> Response:
        return await signal(request, "whip")

    async def whep(request: Request) -> Response:
        return await signal(request, "whep")

    async def resource(request: Request) -> Response:
        kind = request.url.path.rstrip("/").split("/")[-3]
        room = _room_name(request)
        if request.method == "OPTIONS":
            return Response(status_code=204, headers={"Allow": RESOURCE_METHODS})
        if request.method == "GET" and kind == "whip" and is_test_room(room):
            claims = node.authorize(request.headers.get("authorization"), room, "publish")
            return JSONResponse(node.findings(node.resource(room, request.path_params["resource"], kind), claims))
        if request.method != "DELETE":
            # trickle ICE and ICE restarts (PATCH) are not implemented
            raise MethodNotAllowed(f"{request.method} is not supported here", headers={"Allow": RESOURCE_METHODS})
        claims = node.authorize(request.headers.get("authorization"), room, RESOURCE_ROLES[kind])
        found = node.resource(room, request.path_params["resource"], kind)
        await node.delete(found, claims)
        return Response(status_code=200)

    def control(request: Request, room: str = "*") -> None:
        node.authorize(request.headers.get("authorization"), room, "control")

    async def node_info(request: Request) -> Response:
        control(request)
        return JSONResponse(node.info())

    async def rooms(request: Request) -> Response:
        control(request)
        return JSONResponse({"rooms": [r.stats() for r in node.rooms.values()]})

    async def room(request: Request) -> Response:
        name = _room_name(request)
        control(request, name)
        if request.method == "GET":
            return JSONResponse(node.room(name).stats())
        if request.method == "DELETE":
            node.room(name)
            await node.end_room(name)
            return Response(status_code=204)
        data = await _read_json(request)
        if node.relay:
            origin = _origin(data)
            async with node.signaling_slot():
                target = await node.open_relay_room(name, origin)
            return JSONResponse(target.stats())
        if "origin" in data:
            raise BadRequest("this node is an origin: it relays no room")
        host = data.get("host")
        if not isinstance(host, str) or not host:
            raise BadRequest('expected {"host": "<identity>"}')
        async with node.signaling_slot():
            target = await node._open_room(name)
        target.set_host(host)
        record = data.get("record")
        if record is not None:
            if not isinstance(record, dict) or not all(isinstance(record.get(k), str) for k in ("meeting_id", "occurrence")):
                raise BadRequest('expected "record": {"meeting_id": ..., "occurrence": ...}')
            await node.record(name, record["meeting_id"], record["occurrence"])
        return JSONResponse(target.stats())

    async def floor(request: Request) -> Response:
        name = _room_name(request)
        control(request, name)
        target = node.room(name)
        if request.method == "DELETE":
            target.take_floor()
        else:
            data = await _read_json(request)
            identity = data.get("identity")
            if not isinstance(identity, str) or not identity:
                raise BadRequest('expected {"identity": "<identity>"}')
            target.give_floor(identity)
        return JSONResponse({"room": name, "floor": target.floor, "program": target.program_identity})

    async def uplinks(request: Request) -> Response:
        name = _room_name(request)
        control(request, name)
        if request.method == "DELETE":
            identity = request.path_params["identity"]
            _check_identity(identity)
            node.room(name)
            await node.stop_uplink(name, identity)
            return Response(status_code=204)
        identity = (await _read_json(request)).get("identity")
        if not isinstance(identity, str) or not identity:
            raise BadRequest('expected {"identity": "<endpoint id>"}')
        _check_identity(identity)
        async with node.signaling_slot():
            uplink = await node.start_uplink(name, identity)
        return JSONResponse({"room": name, **uplink.stats()})

    async def metrics(request: Request) -> Response:
        try:
            control(request)
            rooms = True
        except SfuError:  # no or a bad token: the node's totals, no room or endpoint names
            rooms = False
        return PlainTextResponse(render_metrics(node, rooms=rooms), media_type="text/plain; version=0.0.4")

    any_method = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    routes = [
        Route("/whip/{room}", whip, methods=any_method),
        Route("/whep/{room}", whep, methods=any_method),
        Route("/whip/{room}/{resource}", resource, methods=any_method),
        Route("/whep/{room}/{resource}", resource, methods=any_method),
        Route("/node", node_info, methods=["GET"]),
        Route("/rooms", rooms, methods=["GET"]),
        Route("/rooms/{room}", room, methods=["GET", "PUT", "DELETE"]),
        Route("/rooms/{room}/floor", floor, methods=["POST", "DELETE"]),
        Route("/rooms/{room}/uplinks", uplinks, methods=["POST"]),
        Route("/rooms/{room}/uplinks/{identity}", uplinks, methods=["DELETE"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    middleware = [
        Middleware(
            CORSMiddleware,
            allow_origins=list(node.config.cors_origins),
            allow_methods=["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "If-Match"],
            expose_headers=EXPOSED_HEADERS,
            max_age=600,
        )
    ]
    return Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={SfuError: _on_error},
    )


def _check_identity(identity: str) -> None:
    if not _IDENTITY.match(identity):
        raise BadRequest("an identity is 1-128 letters, digits or . _ : @ -")


def _origin(data: dict) -> Origin:
    """A relay room's origin from `{"origin": "<base URL>", "origin_node": "<node id>"}`."""
    url, node_id = data.get("origin"), data.get("origin_node")
    expected = 'expected {"origin": "<origin base URL, http(s)://host:port>", "origin_node": "<origin node id>"}'
    if not isinstance(url, str) or not isinstance(node_id, str) or not node_id or len(node_id) > 128:
        raise BadRequest(expected)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment or parts.username:
        raise BadRequest(f"origin must be an http(s) base URL; {expected}")
    return Origin(url.rstrip("/"), node_id)


async def _on_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SfuError)
    if exc.status_code >= 500:
        logger.warning("%s %s: %s", request.method, request.url.path, exc.reason)
    return PlainTextResponse(exc.reason + "\n", status_code=exc.status_code, headers=exc.headers)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "0")
    if not declared.isdigit():
        raise BadRequest("bad Content-Length")
    too_large = PayloadTooLarge(f"the body is larger than {limit} bytes")
    if int(declared) > limit:
        raise too_large
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_json(request: Request) -> dict:
    body = await _read_body(request, MAX_JSON_BYTES)
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        raise BadRequest("the body is not JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return data
