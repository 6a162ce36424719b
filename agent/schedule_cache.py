"""What an agent keeps between messages: its schedule (also on disk), the server's clock, its backoff.

Everything here is small and pure, or touches only the one file it owns, so
the timing rules can be tested with plain numbers:

- `ScheduleEntry`: one occurrence the endpoint takes part in, parsed from the
  protocol's entry (docs/agent-protocol.md); `due_entry` says which one the
  room should be in at a given server time, `next_boundary` when that changes.
- `ScheduleCache`: `<state dir>/schedule.json`, written atomically (mode 600:
  the entries carry media tokens), read back when the orchestrator is away.
- `ClockOffset`: server time = local clock + offset, from the `server_time`
  in every server message (median of recent samples, so one slow message
  does not move it).
- `Backoff`: 1 s, 2 s, 4 s ... capped at 30 s, each +-50 % at random.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import statistics
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

__all__ = ["Backoff", "ClockOffset", "ScheduleCache", "ScheduleEntry", "due_entry", "next_boundary", "parse_entries", "parse_time", "server_time_of"]

log = logging.getLogger(__name__)

_TEXT_FIELDS = ("meeting_id", "occurrence", "room", "whep_url", "whip_url", "subscribe_token", "publish_token")


def parse_time(value: Any, name: str) -> float:
    """Epoch seconds of an ISO 8601 time with a zone (ValueError otherwise)."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be an ISO 8601 string")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"{name} must carry a time zone")
    return moment.timestamp()


@dataclass(frozen=True)
class ScheduleEntry:
    meeting_id: str
    occurrence: str
    role: str
    warmup: float  # epoch seconds, server clock
    start: float
    end: float
    room: str
    whep_url: str
    whip_url: str
    subscribe_token: str = field(repr=False)
    publish_token: str = field(repr=False)
    max_tier: str
    publish_tier: str
    title: str = ""
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def key(self) -> tuple[str, str]:
        return self.meeting_id, self.occurrence

    @classmethod
    def from_dict(cls, data: Any) -> ScheduleEntry:
        """Parse one protocol entry; ValueError says what is wrong with it."""
        if not isinstance(data, dict):
            raise ValueError("an entry must be an object")
        text = {}
        for name in _TEXT_FIELDS:
            value = data.get(name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty string")
            text[name] = value
        role = data.get("role", "participant")
        if role not in ("participant", "host"):
            raise ValueError(f"unknown role {role!r}")
        warmup, start, end = (parse_time(data.get(n), n) for n in ("warmup", "start", "end"))
        if not warmup <= start < end:
            raise ValueError("times must satisfy warmup <= start < end")
        return cls(
            role=role,
            warmup=warmup,
            start=start,
            end=end,
            max_tier=str(data.get("max_tier") or "720p"),
            publish_tier=str(data.get("publish_tier") or "180p"),
            title=str(data.get("title") or ""),
            raw=dict(data),
            **text,
        )


def parse_entries(items: Any) -> list[ScheduleEntry]:
    """The valid entries of a `schedule` list; a malformed one is logged and skipped."""
    if not isinstance(items, list):
        raise ValueError("schedule must be a list")
    entries = []
    for item in items:
        try:
            entries.append(ScheduleEntry.from_dict(item))
        except ValueError as exc:
            log.warning("skipping a malformed schedule entry: %s", exc)
    return entries


def server_time_of(message: Any) -> float | None:
    """The message's `server_time` when it is a usable number."""
    value = message.get("server_time") if isinstance(message, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def due_entry(entries: Iterable[ScheduleEntry], now: float, skip: frozenset | set = frozenset()) -> ScheduleEntry | None:
    """The occurrence the room should be in at server time `now` (warm-up to end), earliest start first."""
    due = [e for e in entries if e.warmup <= now < e.end and e.key not in skip]
    return min(due, key=lambda e: (e.start, e.meeting_id), default=None)


def next_boundary(entries: Iterable[ScheduleEntry], now: float) -> float | None:
    """The next warm-up or end after `now`, when `due_entry` may change."""
    return min((t for e in entries for t in (e.warmup, e.end) if t > now), default=None)


class ScheduleCache:
    """The last `state` the agent received, kept in one JSON file replaced atomically."""

    FILE_NAME = "schedule.json"

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / self.FILE_NAME

    def save(self, endpoint_id: str, entries: Iterable[ScheduleEntry], server_time: float | None) -> None:
        document = {"endpoint_id": endpoint_id, "server_time": server_time, "schedule": [e.raw for e in entries]}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".schedule-", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:  # mkstemp creates it with mode 600
                json.dump(document, handle, ensure_ascii=False, separators=(",", ":"))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load(self, endpoint_id: str) -> list[ScheduleEntry]:
        """The cached entries, or none when the file is missing, unreadable or another endpoint's."""
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable schedule cache %s: %s", self.path, exc)
            return []
        if not isinstance(document, dict) or document.get("endpoint_id") != endpoint_id:
            log.warning("ignoring schedule cache %s: it belongs to another endpoint", self.path)
            return []
        try:
            return parse_entries(document.get("schedule"))
        except ValueError as exc:
            log.warning("ignoring schedule cache %s: %s", self.path, exc)
            return []


class ClockOffset:
    """Server time as `local clock + offset`, the offset being the median of the last samples."""

    def __init__(self, clock: Callable[[], float] = time.time, samples: int = 5) -> None:
        self.clock = clock
        self._samples: deque[float] = deque(maxlen=samples)
        self.offset = 0.0

    def observe(self, server_time: float, local_time: float | None = None) -> None:
        local = self.clock() if local_time is None else local_time
        self._samples.append(server_time - local)
        self.offset = statistics.median(self._samples)

    @property
    def known(self) -> bool:
        return bool(self._samples)

    def now(self) -> float:
        return self.clock() + self.offset


class Backoff:
    """Exponential delays with jitter: base * 2**attempt, capped, then scaled by 1 +- jitter."""

    def __init__(self, base: float = 1.0, cap: float = 30.0, jitter: float = 0.5, rand: Callable[[], float] = random.random) -> None:
        self.base, self.cap, self.jitter, self._rand = base, cap, jitter, rand
        self.attempt = 0

    def next(self) -> float:
        delay = min(self.cap, self.base * 2 ** min(self.attempt, 32))
        self.attempt += 1
        return delay * (1 - self.jitter + 2 * self.jitter * self._rand())

    def reset(self) -> None:
        self.attempt = 0
