"""SFU node configuration: built once at the edge, frozen, passed down.

``SfuConfig.from_environ`` reads ``VCS_SFU_*`` variables (see the table in
docs/sfu.md); nothing below this module reads the environment.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

__all__ = ["DEFAULT_TIERS", "SfuConfig", "TierSpec", "parse_tiers"]

_TIER_RE = re.compile(r"^(?P<name>[A-Za-z0-9_-]+):(?P<w>\d+)x(?P<h>\d+)@(?P<kbps>\d+)$")


@dataclass(frozen=True)
class TierSpec:
    """One rung of the ladder: a resolution and a video bitrate.

    ``width == 0`` marks the audio-only tier.
    """

    name: str
    width: int
    height: int
    video_kbps: int

    @property
    def audio_only(self) -> bool:
        return self.width == 0

    def __str__(self) -> str:
        if self.audio_only:
            return self.name
        return f"{self.name}:{self.width}x{self.height}@{self.video_kbps}"


DEFAULT_TIERS: tuple[TierSpec, ...] = (
    TierSpec("720p", 1280, 720, 2500),
    TierSpec("360p", 640, 360, 800),
    TierSpec("180p", 320, 180, 250),
    TierSpec("audio", 0, 0, 0),
)


def parse_tiers(text: str) -> tuple[TierSpec, ...]:
    """Parse ``"720p:1280x720@2500,360p:640x360@800,audio"``.

    The result is sorted from the highest bitrate down; names are unique.
    """
    tiers: list[TierSpec] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if item == "audio":
            tiers.append(TierSpec("audio", 0, 0, 0))
            continue
        match = _TIER_RE.match(item)
        if not match:
            raise ValueError(f"bad tier {item!r}: expected NAME:WIDTHxHEIGHT@KBPS or 'audio'")
        width, height, kbps = int(match["w"]), int(match["h"]), int(match["kbps"])
        if width % 2 or height % 2 or not (16 <= width <= 3840 and 16 <= height <= 2160):
            raise ValueError(f"bad tier {item!r}: even sizes between 16x16 and 3840x2160")
        if not 50 <= kbps <= 20000:
            raise ValueError(f"bad tier {item!r}: bitrate must be 50..20000 kbps")
        tiers.append(TierSpec(match["name"], width, height, kbps))
    if not tiers:
        raise ValueError("the tier ladder is empty")
    names = [t.name for t in tiers]
    if len(set(names)) != len(names):
        raise ValueError("tier names must be unique")
    return tuple(sorted(tiers, key=lambda t: t.video_kbps, reverse=True))


@dataclass(frozen=True)
class SfuConfig:
    public_url: str
    node_id: str = field(default_factory=lambda: "sfu-" + secrets.token_hex(4))
    role: str = "origin"
    tiers: tuple[TierSpec, ...] = DEFAULT_TIERS
    frame_rate: int = 30
    audio_kbps: int = 40  # budget reserved for Opus in the fit
    vcs_share: float = 0.5  # share of a commune's downlink reserved for VCS
    capacity: int = 1000  # subscribers on this node
    max_rooms: int = 200
    # keyframes
    keyframe_min_interval_s: float = 0.5  # rate limit of PLI/FIR to one encoder
    keyframe_interval_s: float = 10.0  # periodic keyframe of the tier encoders
    encoder_speed: int = 16  # libvpx cpu-used: 16 is the fastest realtime setting
    # bandwidth adaptation
    downgrade_loss: float = 0.10
    upgrade_loss: float = 0.02
    upgrade_hold_s: float = 8.0
    upgrade_headroom: float = 1.25
    # node lifecycle
    heartbeat_interval_s: float = 5.0
    drain_timeout_s: float = 30.0
    room_idle_timeout_s: float = 300.0
    connect_timeout_s: float = 30.0  # a peer not connected by then is closed
    # signaling limits
    max_inflight_signaling: int = 32
    # peers still in their ICE/DTLS handshake; a join beyond waits, then gets 503 + Retry-After
    max_handshakes: int = 12
    admission_wait_s: float = 2.0
    max_sdp_bytes: int = 64 * 1024
    cors_origins: tuple[str, ...] = ("*",)
    # ICE: local addresses to gather on (empty: every interface) and the
    # remote networks a peer's candidates must belong to (empty: any)
    ice_host_addresses: tuple[str, ...] = ()
    ice_allowed_networks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0 < self.vcs_share <= 1:
            raise ValueError("vcs_share must be in (0, 1]")
        if self.capacity < 1 or self.max_rooms < 1:
            raise ValueError("capacity and max_rooms must be positive")
        if self.role not in ("origin", "relay"):
            raise ValueError("role must be 'origin' or 'relay'")
        if not self.tiers:
            raise ValueError("the tier ladder is empty")
        for net in self.ice_allowed_networks:
            ipaddress.ip_network(net, strict=False)
        for addr in self.ice_host_addresses:
            ipaddress.ip_address(addr)

    @property
    def video_tiers(self) -> tuple[TierSpec, ...]:
        return tuple(t for t in self.tiers if not t.audio_only)

    def tier(self, name: str) -> TierSpec:
        for tier in self.tiers:
            if tier.name == name:
                return tier
        raise KeyError(name)

    def with_changes(self, **changes: object) -> SfuConfig:
        return replace(self, **changes)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], *, public_url: str) -> SfuConfig:
        """Build from ``VCS_SFU_*`` variables; unknown values raise ValueError."""
        kwargs: dict[str, object] = {"public_url": environ.get("VCS_SFU_PUBLIC_URL", public_url)}
        text = {
            "VCS_SFU_NODE_ID": "node_id",
            "VCS_SFU_ROLE": "role",
        }
        ints = {
            "VCS_SFU_CAPACITY": "capacity",
            "VCS_SFU_MAX_ROOMS": "max_rooms",
            "VCS_SFU_FRAME_RATE": "frame_rate",
            "VCS_SFU_AUDIO_KBPS": "audio_kbps",
            "VCS_SFU_ENCODER_SPEED": "encoder_speed",
            "VCS_SFU_MAX_INFLIGHT": "max_inflight_signaling",
            "VCS_SFU_MAX_HANDSHAKES": "max_handshakes",
            "VCS_SFU_MAX_SDP_BYTES": "max_sdp_bytes",
        }
        floats = {
            "VCS_SFU_SHARE": "vcs_share",
            "VCS_SFU_KEYFRAME_MIN_INTERVAL": "keyframe_min_interval_s",
            "VCS_SFU_KEYFRAME_INTERVAL": "keyframe_interval_s",
            "VCS_SFU_DOWNGRADE_LOSS": "downgrade_loss",
            "VCS_SFU_UPGRADE_LOSS": "upgrade_loss",
            "VCS_SFU_UPGRADE_HOLD": "upgrade_hold_s",
            "VCS_SFU_UPGRADE_HEADROOM": "upgrade_headroom",
            "VCS_SFU_HEARTBEAT_INTERVAL": "heartbeat_interval_s",
            "VCS_SFU_DRAIN_TIMEOUT": "drain_timeout_s",
            "VCS_SFU_ROOM_IDLE_TIMEOUT": "room_idle_timeout_s",
            "VCS_SFU_CONNECT_TIMEOUT": "connect_timeout_s",
        }
        lists = {
            "VCS_SFU_CORS_ORIGINS": "cors_origins",
            "VCS_SFU_ICE_HOSTS": "ice_host_addresses",
            "VCS_SFU_ICE_ALLOW": "ice_allowed_networks",
        }
        for env, name in text.items():
            if environ.get(env):
                kwargs[name] = environ[env].strip()
        for env, name in ints.items():
            if environ.get(env):
                kwargs[name] = _number(env, environ[env], int)
        for env, name in floats.items():
            if environ.get(env):
                kwargs[name] = _number(env, environ[env], float)
        for env, name in lists.items():
            if env in environ:
                kwargs[name] = tuple(x.strip() for x in environ[env].split(",") if x.strip())
        if environ.get("VCS_SFU_TIERS"):
            kwargs["tiers"] = parse_tiers(environ["VCS_SFU_TIERS"])
        return cls(**kwargs)  # type: ignore[arg-type]


def _number(env: str, value: str, kind: type) -> int | float:
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"{env} must be a number, not {value!r}") from None
