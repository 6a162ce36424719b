"""The audit log: who did what, to what, and when.

One capped Redis stream (`keys.AUDIT`): appending is one XADD that also trims
the oldest entries, so the log never outgrows the store; reading walks it from
the newest entry back.

Actions are the `Action` enum, dotted names, a noun then a verb; the API and
the UI record the same action for the same deed (`via` tells them apart), and
the UI has a label for each (`web.ui.i18n.ACTION_LABELS`):

| action                  | actor               | target        | details                                         |
|-------------------------|---------------------|---------------|-------------------------------------------------|
| auth.login              | username            |               | client, via                                     |
| auth.login_failed       | the name typed      |               | client, via                                     |
| auth.logout             | username            |               | client or via                                   |
| endpoint.link_edit      | username / token    | endpoint id   | via, changes {field: [old, new]}                |
| endpoint.csv_import     | username / token    |               | via, rows, filename                             |
| endpoint.secret_rotate  | username / token    | endpoint id   | via (cli: endpoints, command)                   |
| token.create            | cli:<os user>       | token name    | via, role, province                             |
| user.add                | admin               | username      | role, province                                  |
| user.disable            | admin               | username      | sessions (revoked)                              |
| user.enable             | admin               | username      |                                                 |
| user.password           | cli:<os user>       | username      | via                                             |
| meeting.book            | username / token    | meeting id    | via, title, participants                        |
| meeting.change          | username / token    | meeting id    | via, title, changes (UI)                        |
| meeting.cancel          | username / token    | meeting id    | via, title, scope (series, occurrence), occurrence |
| meeting.floor           | username / token    | meeting id    | via, occurrence, endpoint_id, action (give, take) |
| meeting.host            | username            | meeting id    | via, occurrence, room, identity                 |
| readiness.run           | username / token    | meeting id or drill id | via, occurrence, scope (all, province, room), province, endpoint_id, asked |
| drill.start             | username / token    | drill id      | via, province (none: the whole country), expected |

The `vcs` command writes as "cli:<os user>" with via "cli".

Entries written under other names by earlier versions are still read and
shown by their name.
"""

from __future__ import annotations

import getpass
import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

import redis.asyncio as aioredis

from vcs import keys

__all__ = ["MAX_ENTRIES", "Action", "AuditEntry", "cli_actor", "record", "recent"]

MAX_ENTRIES = 100_000  # about; Redis trims whole macro-nodes ("~") so the count floats a little above
_BATCH = 500


class Action(StrEnum):
    AUTH_LOGIN = "auth.login"
    AUTH_LOGIN_FAILED = "auth.login_failed"
    AUTH_LOGOUT = "auth.logout"
    ENDPOINT_LINK_EDIT = "endpoint.link_edit"
    ENDPOINT_CSV_IMPORT = "endpoint.csv_import"
    ENDPOINT_CONTACT_EDIT = "endpoint.contact_edit"
    ENDPOINT_CONTACTS_IMPORT = "endpoint.contacts_import"
    ENDPOINT_SECRET_ROTATE = "endpoint.secret_rotate"
    TOKEN_CREATE = "token.create"
    USER_ADD = "user.add"
    USER_DISABLE = "user.disable"
    USER_ENABLE = "user.enable"
    USER_PASSWORD = "user.password"
    MEETING_BOOK = "meeting.book"
    MEETING_CHANGE = "meeting.change"
    MEETING_CANCEL = "meeting.cancel"
    MEETING_FLOOR = "meeting.floor"
    MEETING_HOST = "meeting.host"
    READINESS_RUN = "readiness.run"
    DRILL_START = "drill.start"


@dataclass(frozen=True)
class AuditEntry:
    id: str  # the stream id, unique and ordered
    at: float  # epoch seconds
    actor: str
    action: str
    target: str = ""
    details: dict = field(default_factory=dict)

    @property
    def when(self) -> datetime:
        return datetime.fromtimestamp(self.at, UTC)

    @classmethod
    def from_stream(cls, entry_id: str, fields: dict[str, str]) -> AuditEntry:
        try:
            details = json.loads(fields.get("details") or "{}")
        except json.JSONDecodeError:
            details = {"raw": fields.get("details")}
        return cls(
            id=entry_id,
            at=float(fields.get("at") or 0),
            actor=fields.get("actor", ""),
            action=fields.get("action", ""),
            target=fields.get("target", ""),
            details=details if isinstance(details, dict) else {"value": details},
        )


def cli_actor() -> str:
    """The actor of a `vcs` command's change: "cli:<os user>"."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (a container): the uid says enough
        return f"cli:uid-{os.getuid()}"


async def record(
    redis: aioredis.Redis,
    actor: str,
    action: Action,
    target: str = "",
    details: dict | None = None,
    now: float | None = None,
) -> str:
    """Append one entry and return its id; `details` must be JSON-serialisable. ValueError for an unknown action."""
    action = Action(action)
    fields = {
        "at": repr(time.time() if now is None else float(now)),
        "actor": actor,
        "action": action.value,
        "target": target,
        "details": json.dumps(details or {}, ensure_ascii=False, separators=(",", ":"), default=str),
    }
    return await redis.xadd(keys.AUDIT, fields, maxlen=MAX_ENTRIES, approximate=True)


async def recent(
    redis: aioredis.Redis,
    limit: int = 200,
    action: str | None = None,
    actor: str | None = None,
) -> list[AuditEntry]:
    """Up to `limit` entries, newest first, optionally only one action and/or one actor (exact match)."""
    found: list[AuditEntry] = []
    upper = "+"
    while len(found) < limit:
        batch = await redis.xrevrange(keys.AUDIT, max=upper, min="-", count=_BATCH)
        for entry_id, fields in batch:
            entry = AuditEntry.from_stream(entry_id, fields)
            if (action is None or entry.action == action) and (actor is None or entry.actor == actor):
                found.append(entry)
                if len(found) == limit:
                    break
        if len(batch) < _BATCH:
            break
        upper = "(" + batch[-1][0]  # exclusive: continue below the oldest entry read
    return found
