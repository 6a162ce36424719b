"""The orchestrator's calls to an SFU node's control API: open a room, hand the floor, end it.

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

    async def give_floor(self, room: RoomAssignment, endpoint_id: str | None) -> None:
        if endpoint_id is None:
            await self._call("DELETE", room, "/floor")
        else:
            response = await self._call("POST", room, "/floor", {"identity": endpoint_id})
            if response.status_code == 404:
                raise SfuUnavailable("the room is not open on its SFU node yet")

    async def end_room(self, room: RoomAssignment) -> None:
        await self._call("DELETE", room, "")
