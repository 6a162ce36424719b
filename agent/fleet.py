"""Many simulated agents in one process: for demos, tests and load tests.

Each member is a real `Agent` with a registry identity (the first N communes,
or of one province) and real WebRTC (ICE, DTLS, SRTP), but nothing is ever
decoded and everything published comes from one `PatternMedia`: one encoder
per tier in use for the whole fleet. Members share one HTTP client and one
event loop, start spread over a few seconds, and receive the lowest video
tier (`?max_tier=180p`) unless picked for `full_tier_share`, which receive
the tier their link profile carries.

Secrets come from a CSV (`endpoint_id,secret`, as `vcs endpoint rotate-secret
-o` writes). `provision_secrets` fills in the missing ones from Redis and
keeps them in a mode-600 file so later runs reuse them; `secrets_to_rotate`
says beforehand which endpoints' real secrets that replaces.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import logging
import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
import redis.asyncio as aioredis

from agent.control import Agent, AgentConfig
from agent.media import BlackCameraMedia, PatternMedia
from agent.room import RoomOptions
from vcs.credentials import EndpointCredentials
from vcs.endpoints import CENTRAL_ID, Endpoint, EndpointKind
from vcs.link_profiles import LinkProfile
from vcs.tiers import DEFAULT_LADDER, Ladder

__all__ = [
    "Fleet",
    "FleetConfig",
    "FleetMember",
    "choose_members",
    "link_tier",
    "provision_secrets",
    "read_secrets",
    "secrets_to_rotate",
    "write_secrets",
]

log = logging.getLogger(__name__)

def link_tier(link: LinkProfile, ladder: Ladder = DEFAULT_LADDER) -> str:
    """What the link starts on by the deployment's fit; the lowest tier when not even that fits."""
    tier = ladder.start(link.down_kbps).tier
    return (tier or ladder.tiers[-1]).name


@dataclass(frozen=True)
class FleetMember:
    endpoint_id: str
    secret: str = field(repr=False)
    receive_tier: str  # the WHEP hint
    host: bool = False
    full_tier: bool = False  # receives what its link carries, not the fleet's low tier
    link_cap_kbps: float | None = None  # an emulated narrow downlink (RoomOptions.link_cap_kbps)
    black_camera: bool = False  # publishes a black picture (BlackCameraMedia)


@dataclass(frozen=True)
class FleetConfig:
    server_url: str
    count: int
    province: str | None = None
    with_host: bool = False
    full_tier_share: float = 0.0
    low_tier: str = "180p"  # what most members receive: "180p" or "audio"
    publish_tier: str | None = "180p"  # cap on what members publish
    host_tier: str = "720p"
    state_root: Path | None = None  # one schedule cache per member under it
    start_spread: float | None = None  # seconds over which members start (default 20 ms each, at most 10 s)
    status_interval: float = 5.0
    seed: int = 0


def choose_members(endpoints: Iterable[Endpoint], secrets: dict[str, str], config: FleetConfig) -> list[FleetMember]:
    """The first `count` communes (of the province) that have a secret, plus the central studio with --with-host."""
    by_id = {e.id: e for e in endpoints}
    communes = [
        e for e in by_id.values()
        if e.kind == EndpointKind.COMMUNE and e.id in secrets and (config.province is None or e.province_code == config.province)
    ][: config.count]  # fmt: skip
    rng = random.Random(config.seed)
    full = set(rng.sample([e.id for e in communes], round(max(0.0, min(1.0, config.full_tier_share)) * len(communes))))
    members = [
        FleetMember(e.id, secrets[e.id], link_tier(e.link), full_tier=True) if e.id in full else FleetMember(e.id, secrets[e.id], config.low_tier)
        for e in communes
    ]
    if config.with_host:
        if CENTRAL_ID not in secrets:
            raise ValueError(f"--with-host needs a secret for {CENTRAL_ID!r}")
        members.insert(0, FleetMember(CENTRAL_ID, secrets[CENTRAL_ID], config.host_tier, host=True))
    return members


def read_secrets(path: Path) -> dict[str, str]:
    """`endpoint_id,secret` rows (a header line is optional)."""
    secrets = {}
    for row in csv.reader(io.StringIO(path.read_text(encoding="utf-8"))):
        if len(row) >= 2 and row[0].strip() and row[0].strip() != "endpoint_id":
            secrets[row[0].strip()] = row[1].strip()
    return secrets


def write_secrets(path: Path, secrets: dict[str, str]) -> None:
    """Replace `path` atomically with a mode-600 CSV of `secrets`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("endpoint_id,secret\n" + "".join(f"{e},{s}\n" for e, s in secrets.items()))
    os.replace(tmp, path)


async def secrets_to_rotate(redis: aioredis.Redis, endpoint_ids: Sequence[str], path: Path) -> tuple[dict[str, str], list[str]]:
    """The file's secrets that still verify, and the endpoints that need a new one."""
    known = read_secrets(path) if path.exists() else {}
    credentials = EndpointCredentials(redis)
    missing = [e for e in endpoint_ids if e not in known or not await credentials.verify(e, known[e])]
    return {e: s for e, s in known.items() if e not in missing}, missing


async def provision_secrets(redis: aioredis.Redis, endpoint_ids: Sequence[str], path: Path) -> dict[str, str]:
    """Secrets for `endpoint_ids`: the file's where they still verify, new ones (rotated in Redis) for the rest.

    Rotating replaces an endpoint's real secret: the caller says so and asks
    first when an agent of it is online (`vcs fleet`).
    """
    known, missing = await secrets_to_rotate(redis, endpoint_ids, path)
    if missing:
        known.update(await EndpointCredentials(redis).rotate(missing))
        write_secrets(path, known)
        log.info("provisioned %d endpoint secret(s) into %s", len(missing), path)
    return {e: known[e] for e in endpoint_ids}


class Fleet:
    def __init__(self, config: FleetConfig, members: Sequence[FleetMember], *, http: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self.members = list(members)
        self.agents: list[Agent] = []
        self.media = PatternMedia()
        self.black_media = BlackCameraMedia()
        self._http = http
        self._own_http = http is None
        self._starter: asyncio.Task | None = None
        self._rand = random.Random(config.seed)

    async def start(self) -> None:
        if self._starter is not None:
            return
        if self._http is None:
            limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
            self._http = httpx.AsyncClient(timeout=httpx.Timeout(20.0, connect=10.0), limits=limits)
        await self.media.start()
        base = RoomOptions(publish_tier=self.config.publish_tier, host_tier=self.config.host_tier)
        for member in self.members:
            state_dir = self.config.state_root / member.endpoint_id if self.config.state_root else None
            options = replace(base, receive_tier=None if member.host else member.receive_tier, link_cap_kbps=member.link_cap_kbps)
            config = AgentConfig(self.config.server_url, member.endpoint_id, member.secret, state_dir=state_dir, room=options)
            self.agents.append(Agent(config, self._http, self.black_media if member.black_camera else self.media))
        self._starter = asyncio.create_task(self._start_all(), name="fleet-starter")

    async def _start_all(self) -> None:
        spread = self.config.start_spread
        if spread is None:
            spread = min(10.0, 0.02 * len(self.agents))
        step = spread / max(1, len(self.agents))
        try:
            for agent in self.agents:
                await agent.start()
                await asyncio.sleep(step * (0.5 + self._rand.random()))  # jittered, so logins never land at once
        except asyncio.CancelledError:
            pass

    async def stop(self) -> None:
        """Stop every member (their peer connections closed and media rooms left), then the shared parts. Safe twice."""
        starter, self._starter = self._starter, None
        if starter is not None:
            starter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starter
        agents, self.agents = self.agents, []
        await asyncio.gather(*(agent.stop() for agent in agents), return_exceptions=True)
        await self.media.stop()
        await self.black_media.stop()
        if self._own_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    def counts(self) -> dict[str, int]:
        agents = self.agents
        return {
            "agents": len(agents),
            "connected": sum(a.connected for a in agents),
            "joined": sum(a.room.status == "in_meeting" for a in agents),
            "failed": sum(a.room.last_error is not None or a.login_failures > 0 for a in agents),
        }

    def status_line(self) -> str:
        c = self.counts()
        return f"fleet: {c['agents']} agents, {c['connected']} connected, {c['joined']} joined, {c['failed']} failed"

    async def run(self, stop: asyncio.Event, out=print) -> None:  # type: ignore[no-untyped-def]
        """Start, print the status every few seconds until `stop` is set, then stop."""
        await self.start()
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.config.status_interval):
                        await stop.wait()
                out(self.status_line())
        finally:
            await self.stop()
