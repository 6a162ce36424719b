"""The orchestrator's calls to an SFU node's control API: open a room (on a relay: pull it), hand the floor,
end it, and on a relay forward a commune's camera to the origin (an uplink).

Each call carries a short-lived control token for that room, signed with the
deployment secret, so only the orchestrator steers rooms.
"""

from __future__ import annotations

import logging

import httpx

from scheduler.rooms import RoomAssignment
from vcs.errors import SfuUnavailable
from vcs.media_tokens import mint_media_token

__all__ = ["SfuControl", "SfuUnavailable"]

log = logging.getLogger(__name__)

CONTROL_TTL = 60
ORCHESTRATOR = "orchestrator"


class SfuControl:
    def __init__(self, secret_key: str, timeout: float = 5.0) -> None:
        self.secret_key = secret_key
        self.timeout = timeout

    async def _call(self, method: str, room: RoomAssignment, path: str, body: dict | None = None) -> httpx.Response:
        token = mint_media_token(self.secret_key, room=room.room, identity=ORCHESTRATOR, role="control", ttl=CONTROL_TTL)
        url = f"{room.node_url}/sfu/rooms/{room.room}{path}"
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.request(method, url, json=body, headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:
            raise SfuUnavailable(f"SFU node {room.node_url} unreachable: {exc}") from None
        if response.status_code >= 400 and response.status_code != 404:
            raise SfuUnavailable(f"SFU node refused {method} {path or '/'}: {response.status_code} {response.text[:200]}")
        return response

    async def open_room(self, room: RoomAssignment, host: str, record: dict | None = None) -> None:
        """Open the room for its host; `record` ({"meeting_id", "occurrence"}): the origin records its program."""
        await self._call("PUT", room, "", {"host": host, **({"record": record} if record else {})})

    async def open_relay_room(self, relay_url: str, room: str, origin_url: str, origin_node: str | None) -> None:
        """Tell a relay to serve `room` by pulling it from its origin (or to pull from another origin)."""
        await self._call("PUT", RoomAssignment(room, relay_url.rstrip("/")), "", {"origin": origin_url, "origin_node": origin_node})

    async def give_floor(self, room: RoomAssignment, endpoint_id: str | None) -> None:
        if endpoint_id is None:
            await self._call("DELETE", room, "/floor")
        else:
            response = await self._call("POST", room, "/floor", {"identity": endpoint_id})
            if response.status_code == 404:
                raise SfuUnavailable("the room is not open on its SFU node yet")

    async def end_room(self, room: RoomAssignment) -> None:
        await self._call("DELETE", room, "")

    async def publishers(self, room: RoomAssignment) -> set[str]:
        """The identities publishing in the room on its node (none when the room is not open)."""
        response = await self._call("GET", room, "")
        if response.status_code == 404:
            return set()
        return {p["identity"] for p in response.json().get("publishers", [])}

    async def start_uplink(self, relay_url: str, room: str, identity: str) -> None:
        """Ask the relay to forward ``identity``'s camera and microphone to the room's origin (idempotent)."""
        response = await self._call("POST", RoomAssignment(room, relay_url.rstrip("/")), "/uplinks", {"identity": identity})
        if response.status_code == 404:
            raise SfuUnavailable(f"{identity} is not publishing in room {room} on its relay {relay_url}")

    async def stop_uplink(self, relay_url: str, room: str, identity: str) -> None:
        await self._call("DELETE", RoomAssignment(room, relay_url.rstrip("/")), f"/uplinks/{identity}")
