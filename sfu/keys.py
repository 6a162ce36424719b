"""Every Redis key the SFU uses (prefix ``vcs:sfu:``).

The node receives an already-connected ``redis.asyncio.Redis`` with
``decode_responses=True``. Keys, their types and meaning:

``vcs:sfu:nodes``
    sorted set: member node id => score last heartbeat (unix seconds). The
    orchestrator lists live nodes with ``ZRANGEBYSCORE now-ttl +inf``; a node
    removes itself on shutdown.

``vcs:sfu:node:{node_id}``
    hash: one node. Fields ``id``, ``url`` (public base URL, WHIP/WHEP live
    under ``{url}/sfu``), ``role`` (origin|relay), ``capacity`` (subscribers),
    ``load`` (current subscribers), ``rooms`` (rooms hosted), ``draining``
    ("1" once it takes no new rooms), ``started`` and ``heartbeat`` (unix
    seconds). Expires after three heartbeat intervals, so a crashed node
    disappears by itself.

``vcs:sfu:room:{room}``
    string: node id => where room ``room`` lives (set when the room opens,
    refreshed with each heartbeat, deleted when it ends; same expiry as the
    node hash).
"""

from __future__ import annotations

__all__ = ["NODES", "node_key", "room_key"]

PREFIX = "vcs:sfu:"
NODES = PREFIX + "nodes"


def node_key(node_id: str) -> str:
    return f"{PREFIX}node:{node_id}"


def room_key(room: str) -> str:
    return f"{PREFIX}room:{room}"
