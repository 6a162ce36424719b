"""Which endpoint each agent-speaking load user is: one commune identity per user, never two users per identity.

The identities are the communes of the national registry (`vcs.divisions.communes()`)
with the secrets `vcs endpoint rotate-secret --all -o FILE` wrote. With
`--processes N` every Locust process holds its own pool and takes every Nth
identity from its worker index on, so processes never share one.
"""

from __future__ import annotations

import csv
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from vcs.divisions import communes

__all__ = ["Identity", "IdentityPool", "across_provinces", "read_secrets"]


@dataclass(frozen=True)
class Identity:
    endpoint_id: str
    secret: str


def read_secrets(path: Path) -> dict[str, str]:
    """endpoint_id => secret from a CSV with an `endpoint_id,secret` header (or none)."""
    found: dict[str, str] = {}
    with path.open(newline="") as handle:
        for row in csv.reader(handle):
            if len(row) < 2 or row[0] == "endpoint_id":
                continue
            found[row[0].strip()] = row[1].strip()
    return found


def across_provinces(codes: list[str]) -> list[str]:
    """Commune codes taking one province's next commune in turn: the first N span as many provinces as they can.

    The media users of a meeting use this order, so that the placement spreads them over the relays.
    """
    province_of = {c.code: c.province_code for c in communes()}
    by_province: dict[str, deque[str]] = {}
    for code in codes:
        by_province.setdefault(province_of.get(code, ""), deque()).append(code)
    queues = list(by_province.values())
    ordered: list[str] = []
    while queues:
        ordered += [queue.popleft() for queue in queues]
        queues = [queue for queue in queues if queue]
    return ordered


class IdentityPool:
    """Commune identities in registry order (or `across_provinces`), handed out one per user and returned when it stops."""

    def __init__(self, secrets: dict[str, str], *, index: int = 0, stride: int = 1, spread: bool = False) -> None:
        self.secrets = secrets
        self.communes = [c.code for c in communes() if c.code in secrets]
        if spread:
            self.communes = across_provinces(self.communes)
        self._next = index
        self._stride = max(1, stride)
        self._returned: deque[Identity] = deque()

    def __len__(self) -> int:
        return len(self.communes)

    def take(self) -> Identity | None:
        """The next free commune identity, or None when this process has used its share."""
        if self._returned:
            return self._returned.popleft()
        if self._next >= len(self.communes):
            return None
        endpoint_id = self.communes[self._next]
        self._next += self._stride
        return Identity(endpoint_id, self.secrets[endpoint_id])

    def give_back(self, identity: Identity) -> None:
        self._returned.append(identity)

    def named(self, endpoint_id: str) -> Identity | None:
        """A non-commune identity such as the central studio ("central"), if the secrets file has it."""
        secret = self.secrets.get(endpoint_id)
        return Identity(endpoint_id, secret) if secret else None
