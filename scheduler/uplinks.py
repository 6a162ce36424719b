"""Bringing a commune's own camera to the origin, for the floor or the host's view.

A commune served by a relay publishes its camera there; the origin has it only
while something asks. ``bring`` asks the commune's relay for an uplink and
waits (bounded) until the origin's room lists the commune as a publisher, so
the floor or a ``source=`` view can be given at once. A commune served by the
origin itself needs nothing. ``release`` stops the uplink; the origin also
closes one nobody watches (``uplink_idle_s`` on the node), so a forgotten
release costs a few seconds of upstream, not a meeting's worth.

Which node serves a commune is the placement's answer (``RelayOf``), injected;
without one every commune is on the origin.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from scheduler.rooms import RoomAssignment
from scheduler.sfu_control import SfuControl
from vcs.errors import SfuUnavailable

__all__ = ["RelayOf", "Uplinks", "on_the_origin"]

log = logging.getLogger(__name__)

# (meeting id, occurrence, endpoint id) -> the base URL of the relay serving it, or None: the origin
RelayOf = Callable[[str, datetime, str], Awaitable[str | None]]
ARRIVAL_TIMEOUT_S = 10.0
POLL_S = 0.25


async def on_the_origin(meeting_id: str, occurrence: datetime, endpoint_id: str) -> str | None:
    return None


class Uplinks:
    def __init__(self, sfu_control: SfuControl, relay_of: RelayOf | None = None, *, timeout: float = ARRIVAL_TIMEOUT_S) -> None:
        self.sfu_control = sfu_control
        self.relay_of = relay_of or on_the_origin
        self.timeout = timeout

    async def bring(self, room: RoomAssignment, meeting_id: str, occurrence: datetime, endpoint_id: str) -> str | None:
        """Make sure ``endpoint_id``'s camera reaches the origin; the relay it comes from (None: none needed).

        Raises SfuUnavailable when the relay refuses (the commune does not
        publish there) or the origin has not got it within the timeout.
        """
        relay = await self.relay_of(meeting_id, occurrence, endpoint_id)
        if relay is None or relay.rstrip("/") == room.node_url:
            return None
        await self.sfu_control.start_uplink(relay, room.room, endpoint_id)
        deadline = time.monotonic() + self.timeout
        while endpoint_id not in await self.sfu_control.publishers(room):
            if time.monotonic() > deadline:
                raise SfuUnavailable(f"{endpoint_id}'s camera did not reach the origin from {relay} within {self.timeout:g} s")
            await asyncio.sleep(POLL_S)
        return relay

    async def release(self, room: RoomAssignment, meeting_id: str, occurrence: datetime, endpoint_id: str) -> None:
        """Stop forwarding ``endpoint_id`` from its relay; best effort (the origin closes it anyway when unwatched)."""
        relay = await self.relay_of(meeting_id, occurrence, endpoint_id)
        if relay is None or relay.rstrip("/") == room.node_url:
            return
        try:
            await self.sfu_control.stop_uplink(relay, room.room, endpoint_id)
        except SfuUnavailable as exc:
            log.warning("could not stop %s's uplink on %s: %s", endpoint_id, relay, exc)
