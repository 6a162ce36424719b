"""Every Redis key the project uses, with its type and meaning.

All keys start with `vcs:` so a shared Redis can hold other data too.
Functions build per-item keys; constants are singletons.
"""

from __future__ import annotations

PREFIX = "vcs:"

# --- registry -------------------------------------------------------------

# hash of endpoint id => JSON of the endpoint (name, kind, province, link profile); no secrets
ENDPOINTS = PREFIX + "endpoints"
# string counter, incremented on every registry write; readers cache the registry by it
REGISTRY_VERSION = PREFIX + "registry:version"
# hash of endpoint id => "sha256$<hex>" of the endpoint's secret
ENDPOINT_SECRETS = PREFIX + "endpoint-secrets"
# sorted set of endpoint id scored by the epoch seconds of its last heartbeat
PRESENCE = PREFIX + "presence"

# --- authentication -------------------------------------------------------

# hash: "role", "province", "name", "created" of one API token, keyed by the sha256 of the token
def api_token(token_hash: str) -> str:
    return f"{PREFIX}api-token:{token_hash}"


# hash of username => JSON of the user (role, province, argon2 hash, disabled)
USERS = PREFIX + "users"


# string counter of failed logins (vcs.login_throttle) within the current window (expires); kind "agent"
# or "user", scope "pair" (value "client|account"), "client" (an address) or "account" (endpoint id, username);
# scope "in-flight" (an address) counts that address's credential checks in progress instead
def login_failures(kind: str, scope: str, value: str) -> str:
    return f"{PREFIX}login-failures:{kind}:{scope}:{value}"


# --- meetings and their lifecycle ------------------------------------------

# hash of meeting id => JSON of the meeting (scheduler.meeting.Meeting.to_json); a write is a
# check-and-set on the meeting's own field (scheduler.store), so writes to different meetings never conflict
MEETINGS = PREFIX + "meetings"
# string counter, incremented on every meeting or group write; caches of resolved schedules key on it
MEETINGS_VERSION = PREFIX + "meetings:version"
# hash of group name => JSON list of endpoint ids (saved participant groups)
GROUPS = PREFIX + "groups"


# hash of endpoint id => JSON of its state in one occurrence (joined/failed/left, tier, loss, rtt, at)
def live_state(meeting_id: str, occurrence: str) -> str:
    return f"{PREFIX}live:{meeting_id}:{occurrence}"


# string: the fencing token of the scheduler that ran this lifecycle step (set once, NX, after its effects)
def phase_done(meeting_id: str, occurrence: str, phase: str) -> str:
    return f"{PREFIX}phase:{meeting_id}:{occurrence}:{phase}"


# hash of a lifecycle step claimed but not yet done: "fence" of the claimer, and one field per effect
# already made ("room", "notified"), so the next leader completes the step without repeating them
def phase_claim(meeting_id: str, occurrence: str, phase: str) -> str:
    return f"{PREFIX}phase-claim:{meeting_id}:{occurrence}:{phase}"


# hash: "node", "room", "whip", "whep" of the SFU room serving one occurrence (set at warm-up)
def occurrence_room(meeting_id: str, occurrence: str) -> str:
    return f"{PREFIX}room:{meeting_id}:{occurrence}"


# hash of endpoint id => JSON of its attendance tally in one occurrence (scheduler.reports: present
# seconds, seconds per tier, drops, rejoins, worst loss and RTT, floor seconds), plus field REPORT_SAMPLED
# (epoch seconds of the last sample); written by the scheduler leader's sampler while the occurrence runs
def report_tally(meeting_id: str, occurrence: str) -> str:
    return f"{PREFIX}report-tally:{meeting_id}:{occurrence}"


REPORT_SAMPLED = "_sampled"


# string: JSON of the finished attendance and quality report of one occurrence (written once, at its end)
def report(meeting_id: str, occurrence: str) -> str:
    return f"{PREFIX}report:{meeting_id}:{occurrence}"


# sorted set of "<meeting id>/<occurrence>" scored by the occurrence's end (epoch seconds): the reports
# kept, for the retention job
REPORTS = PREFIX + "reports"


# hash of the recording of one occurrence, written by the origin node that records it: "state"
# (recording|done|failed), "file" (path under the recording directory), "bytes", "reason" (why it failed),
# "node", "started", "updated" (epoch seconds)
def recording(meeting_id: str, occurrence: str) -> str:
    return f"{PREFIX}recording:{meeting_id}:{occurrence}"


# sorted set of "<meeting id>/<occurrence>" scored by the epoch seconds its recording started
RECORDINGS = PREFIX + "recordings"
# string: JSON of the occurrence's placement (scheduler.placement.Placement): its origin and, per province,
# the nodes serving its communes; written when first asked, changed only when a relay fails or drains
def occurrence_placement(meeting_id: str, occurrence: str) -> str:
    return f"{PREFIX}placement:{meeting_id}:{occurrence}"


# list of JSON {meeting, occurrence, phase, fence, at}: lifecycle steps as run, newest first (capped)
LIFECYCLE_LOG = PREFIX + "lifecycle-log"

# string "<holder id>:<fencing token>" with a TTL: the scheduler leader's lease
SCHEDULER_LEASE = PREFIX + "scheduler:lease"
# string counter: the last fencing token handed out with the lease
SCHEDULER_FENCE = PREFIX + "scheduler:fence"

# pub/sub channel: JSON {"endpoints": [...] | "*", "event": {...}} for agents' control sockets
AGENT_NOTIFY = PREFIX + "notify:agents"
# pub/sub channel: JSON {"meeting": id} when a meeting is written (booked, edited, cancelled, a status);
# JSON without "meeting" ({"group": name} when a saved group changes): any meeting's participants may differ
MEETINGS_CHANGED = PREFIX + "notify:meetings"
# pub/sub channel: JSON {"meeting", "occurrence"} when an occurrence's live state changes
LIVE_CHANGED = PREFIX + "notify:live"


# --- readiness and drills (scheduler.readiness) -----------------------------

# hash of endpoint id => JSON of its last media test result (fields, status, reasons, at) for one
# subject: "occ:<meeting id>:<occurrence>" or "drill:<drill id>"; expires with the subject's record
def readiness_results(subject: str) -> str:
    return f"{PREFIX}readiness:{subject}"


# string: JSON of one drill (id, province or null, started_at, started_by, node_url, expected endpoint ids)
def drill(drill_id: str) -> str:
    return f"{PREFIX}drill:{drill_id}"


# sorted set of drill id scored by its start (epoch seconds): the drill records, newest last
DRILLS = PREFIX + "drills"


# sorted set of "<subject> <endpoint id>" scored by arrival: rooms waiting to test on a node (scheduler.test_pacing)
def test_queue(node_url: str) -> str:
    return f"{PREFIX}testq:{node_url}"


# sorted set of "<subject> <endpoint id>" scored by the lease's end (epoch seconds): rooms testing on a node now
def test_slots(node_url: str) -> str:
    return f"{PREFIX}tests:{node_url}"


# set of node URLs with rooms waiting to test
TEST_QUEUED_NODES = PREFIX + "testq-nodes"

__all__ = [
    "DRILLS",
    "drill",
    "readiness_results",
    "TEST_QUEUED_NODES",
    "test_queue",
    "test_slots",
    "AGENT_NOTIFY",
    "GROUPS",
    "LIFECYCLE_LOG",
    "LIVE_CHANGED",
    "MEETINGS",
    "MEETINGS_CHANGED",
    "MEETINGS_VERSION",
    "SCHEDULER_FENCE",
    "SCHEDULER_LEASE",
    "live_state",
    "recording",
    "RECORDINGS",
    "report",
    "REPORTS",
    "REPORT_SAMPLED",
    "report_tally",
    "occurrence_placement",
    "occurrence_room",
    "phase_claim",
    "phase_done",
    "ENDPOINTS",
    "ENDPOINT_SECRETS",
    "PRESENCE",
    "PREFIX",
    "REGISTRY_VERSION",
    "USERS",
    "login_failures",
    "api_token",
]

# --- SFU nodes ---------------------------------------------------------------

# sorted set of SFU node id scored by its last heartbeat (epoch seconds); a node removes itself on shutdown,
# and the ids of nodes dead for scheduler.nodes.NODE_TTL are removed by whoever reads the set
SFU_NODES = PREFIX + "sfu:nodes"


# hash of one SFU node: "id", "url" (public base URL; WHIP/WHEP under {url}/sfu), "role" (origin|relay),
# "capacity" and "load" (subscribers), "rooms", "draining" ("1" once it takes no new rooms),
# "started", "heartbeat", "ttl" (seconds it counts as alive after a heartbeat: three intervals);
# expires after that ttl, so a crashed node disappears (vcs.routing)
def sfu_node(node_id: str) -> str:
    return f"{PREFIX}sfu:node:{node_id}"


# string: the id of the SFU node a room lives on; refreshed with each heartbeat, deleted when the room ends;
# read by vcs.routing.NodeRouter.node_for_room, so an occurrence is placed where its room already lives
def sfu_room(room: str) -> str:
    return f"{PREFIX}sfu:room:{room}"


# hash of the peers whose media flows in one room through one node (the origin, or a relay its communes use):
# identity => epoch seconds that node last saw it (its subscriber's RTCP reports arriving; for one that only
# publishes, its RTP), only while its transport is connected; field SFU_MEDIA_NODE names the node. Each node
# rewrites only its own with each heartbeat (vcs.routing.NodeRouter.room_media merges them, newest wins); kept
# an hour after the last one, so the room of a crashed node reads as stale (dropped) rather than unknown.
def sfu_room_media(room: str, node_id: str) -> str:
    return f"{PREFIX}sfu:room-media:{room}:{node_id}"


# set: the ids of the nodes that have written a sfu_room_media record for the room; kept as long as those
def sfu_room_media_nodes(room: str) -> str:
    return f"{PREFIX}sfu:room-media-nodes:{room}"


SFU_MEDIA_NODE = "_node"

__all__ += ["SFU_MEDIA_NODE", "SFU_NODES", "sfu_node", "sfu_room", "sfu_room_media", "sfu_room_media_nodes"]

# --- web UI: browser sessions, sign-in throttling, audit log ----------------
# (web/ui/sessions.py, web/ui/throttle.py, vcs/audit.py)


# hash: "username", "csrf", "created", "client", "flash" of one signed-in browser session, keyed by
# the sha256 of its opaque cookie value; expires after the idle timeout, refreshed on use
def ui_session(session_hash: str) -> str:
    return f"{PREFIX}ui-session:{session_hash}"


# set of ui_session hashes held by one user, so that disabling the user revokes them all at once
def ui_user_sessions(username: str) -> str:
    return f"{PREFIX}ui-user-sessions:{username}"


# stream of audit entries, newest last; fields "at" (epoch seconds), "actor", "action",
# "target", "details" (JSON object); trimmed to about vcs.audit.MAX_ENTRIES
AUDIT = PREFIX + "audit"

__all__ += ["AUDIT", "ui_session", "ui_user_sessions"]
