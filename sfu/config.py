"""SFU node configuration: built once at the edge, frozen, passed down.

``SfuConfig.from_environ`` reads ``VCS_SFU_*`` variables (see the table in
docs/sfu.md); nothing below this module reads the environment. The ladder,
the VCS share and the audio budget are the deployment's (`vcs.tiers.Ladder`,
`Settings.ladder`): `vcs serve` passes them in, so the SFU fits links exactly
as the booking preview and the agents' schedules do.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from vcs.routing import ROLES, parse_provinces
from vcs.tiers import DEFAULT_AUDIO_KBPS, DEFAULT_TIERS, DEFAULT_VCS_SHARE, Ladder, TierSpec

__all__ = ["FANOUTS", "SRTPS", "SfuConfig", "parse_udp_port"]

# Where a peer's ICE candidates may be when VCS_SFU_ICE_ALLOW is unset: the
# private ranges (RFC 1918) and carrier-grade NAT (RFC 6598). `vcs serve` on
# loopback narrows it to 127.0.0.0/8; "0.0.0.0/0,::/0" allows any address.
PRIVATE_NETWORKS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
FANOUTS = ("compiled", "python")  # VCS_SFU_FANOUT: how a stream sends to its subscribers (sfu.fanout)
SRTPS = ("compiled", "libsrtp")  # VCS_SFU_SRTP: what seals the RTP a node sends on AES-GCM sessions (sfu.srtp_out)
MAX_CERT_ROTATE_S = 14 * 24 * 3600.0  # half of a certificate's validity: a peer's call never outlives it


@dataclass(frozen=True)
class SfuConfig:
    public_url: str
    node_id: str = field(default_factory=lambda: "sfu-" + secrets.token_hex(4))
    role: str = "origin"
    provinces: tuple[str, ...] = ()  # province codes this node sits near (placement prefers it for them)
    tiers: tuple[TierSpec, ...] = DEFAULT_TIERS
    frame_rate: int = 30
    audio_kbps: int = DEFAULT_AUDIO_KBPS  # budget reserved for Opus in the fit
    vcs_share: float = DEFAULT_VCS_SHARE  # share of a commune's downlink reserved for VCS
    capacity: int = 1000  # subscribers on this node
    max_rooms: int = 200
    # the forwarding loop: "compiled" (sfu/_fanout.c, sendmmsg across subscribers) or "python" (for comparison)
    fanout: str = "compiled"
    # what seals the RTP sent on AES-GCM sessions: "compiled" (sfu/_srtp_out.c) or "libsrtp" (for comparison)
    srtp: str = "compiled"
    # keyframes
    keyframe_min_interval_s: float = 0.5  # rate limit of PLI/FIR to one encoder
    keyframe_interval_s: float = 10.0  # periodic keyframe of the tier encoders
    encoder_speed: int = 16  # libvpx cpu-used: 16 is the fastest realtime setting
    # bandwidth adaptation
    downgrade_loss: float = 0.10
    upgrade_loss: float = 0.02
    upgrade_hold_s: float = 8.0
    upgrade_headroom: float = 1.25
    red_rtt_ms: float = 250.0  # audio goes as RED (RFC 2198) to receivers that offer it above this RTT
    # node lifecycle
    heartbeat_interval_s: float = 5.0
    drain_timeout_s: float = 30.0
    room_idle_timeout_s: float = 300.0
    connect_timeout_s: float = 30.0  # a peer not connected by then is closed
    # an origin closes a commune's camera forwarded by a relay once nobody has
    # watched it (no floor, no host's source= view) for this long
    uplink_idle_s: float = 10.0
    # a relay's upstream to its origin: retries back off 1, 2, 4 ... up to this
    relay_retry_max_s: float = 30.0
    # an origin that keeps refusing the room (404: it does not have it, say it restarted) this long in a row ends the relay room
    relay_give_up_s: float = 60.0
    # signaling limits
    max_inflight_signaling: int = 32
    # peers in their ICE/DTLS handshake at once; a join beyond waits its turn (first come, first
    # admitted) up to admission_wait_s, or gets 503 + Retry-After at once when the queue ahead is
    # longer than the node can admit in that time (sfu.admission). A handshake mostly waits on the
    # peer's round trips (seconds on a satellite link), so the bound is set well above what the CPU
    # handles at once; the loop-lag rule narrows it when the CPU is the limit.
    max_handshakes: int = 64
    admission_wait_s: float = 8.0  # within an agent's 20 s request timeout
    # the node's one DTLS certificate is replaced this often (new peers get the new one);
    # aiortc's certificates are valid 30 days, so at most MAX_CERT_ROTATE_S
    cert_rotate_s: float = 24 * 3600.0
    max_sdp_bytes: int = 64 * 1024
    cors_origins: tuple[str, ...] = ("*",)
    # ICE: local addresses to gather on (empty: every interface) and the
    # remote networks a peer's candidates must belong to (the node checks no other)
    ice_host_addresses: tuple[str, ...] = ()
    ice_allowed_networks: tuple[str, ...] = PRIVATE_NETWORKS
    # the one UDP socket every answered peer shares (sfu.udp_mux): 0 an ephemeral port, None one socket per peer ("off")
    udp_port: int | None = 0
    # where this node writes recordings (vcs.recordings.recording_path under it); None: it does not record
    recording_dir: Path | None = None
    recording_keep_s: int = 365 * 24 * 3600  # how long a recording's state record is kept in Redis
    ladder: Ladder = field(init=False, repr=False, compare=False)  # tiers, vcs_share and audio_kbps as one

    def __post_init__(self) -> None:
        object.__setattr__(self, "ladder", Ladder(self.tiers, self.vcs_share, self.audio_kbps))
        object.__setattr__(self, "tiers", self.ladder.tiers)
        if self.capacity < 1 or self.max_rooms < 1:
            raise ValueError("capacity and max_rooms must be positive")
        if self.max_handshakes < 1 or self.admission_wait_s < 0:
            raise ValueError("VCS_SFU_MAX_HANDSHAKES must be positive and VCS_SFU_ADMISSION_WAIT not negative")
        if not 0 < self.cert_rotate_s <= MAX_CERT_ROTATE_S:
            raise ValueError(f"the DTLS certificate's life (VCS_SFU_CERT_ROTATE) must be over 0 and at most {MAX_CERT_ROTATE_S:.0f} s (14 days)")
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        object.__setattr__(self, "provinces", parse_provinces(",".join(self.provinces)))
        if self.fanout not in FANOUTS:
            raise ValueError(f"fanout must be one of {', '.join(FANOUTS)}")
        if self.srtp not in SRTPS:
            raise ValueError(f"srtp (VCS_SFU_SRTP) must be one of {', '.join(SRTPS)}")
        if not self.ice_allowed_networks:
            raise ValueError("ice_allowed_networks is empty: name the networks peers may be in")
        for net in self.ice_allowed_networks:
            ipaddress.ip_network(net, strict=False)
        for addr in self.ice_host_addresses:
            ipaddress.ip_address(addr)
        if self.udp_port is not None and not 0 <= self.udp_port <= 65535:
            raise ValueError("udp_port must be 0-65535 (0: an ephemeral port) or None (one socket per peer)")

    @property
    def video_tiers(self) -> tuple[TierSpec, ...]:
        return tuple(t for t in self.tiers if not t.audio_only)

    def tier(self, name: str) -> TierSpec:
        return self.ladder.tier(name)

    def with_changes(self, **changes: object) -> SfuConfig:
        return replace(self, **changes)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], *, public_url: str, ladder: Ladder | None = None) -> SfuConfig:
        """Build from ``VCS_SFU_*`` variables; unknown values raise ValueError.

        `ladder`: the deployment's (`Settings.ladder`); without it, read from the same variables.
        """
        ladder = ladder or Ladder.from_environ(environ)
        kwargs: dict[str, object] = {
            "public_url": environ.get("VCS_SFU_PUBLIC_URL", public_url),
            "tiers": ladder.tiers,
            "vcs_share": ladder.vcs_share,
            "audio_kbps": ladder.audio_kbps,
        }
        text = {
            "VCS_SFU_NODE_ID": "node_id",
            "VCS_SFU_ROLE": "role",
            "VCS_SFU_FANOUT": "fanout",
            "VCS_SFU_SRTP": "srtp",
        }
        ints = {
            "VCS_SFU_CAPACITY": "capacity",
            "VCS_SFU_MAX_ROOMS": "max_rooms",
            "VCS_SFU_FRAME_RATE": "frame_rate",
            "VCS_SFU_ENCODER_SPEED": "encoder_speed",
            "VCS_SFU_MAX_INFLIGHT": "max_inflight_signaling",
            "VCS_SFU_MAX_HANDSHAKES": "max_handshakes",
            "VCS_SFU_MAX_SDP_BYTES": "max_sdp_bytes",
        }
        floats = {
            "VCS_SFU_KEYFRAME_MIN_INTERVAL": "keyframe_min_interval_s",
            "VCS_SFU_KEYFRAME_INTERVAL": "keyframe_interval_s",
            "VCS_SFU_DOWNGRADE_LOSS": "downgrade_loss",
            "VCS_SFU_UPGRADE_LOSS": "upgrade_loss",
            "VCS_SFU_UPGRADE_HOLD": "upgrade_hold_s",
            "VCS_SFU_UPGRADE_HEADROOM": "upgrade_headroom",
            "VCS_SFU_RED_RTT": "red_rtt_ms",
            "VCS_SFU_HEARTBEAT_INTERVAL": "heartbeat_interval_s",
            "VCS_SFU_DRAIN_TIMEOUT": "drain_timeout_s",
            "VCS_SFU_ROOM_IDLE_TIMEOUT": "room_idle_timeout_s",
            "VCS_SFU_CONNECT_TIMEOUT": "connect_timeout_s",
            "VCS_SFU_UPLINK_IDLE": "uplink_idle_s",
            "VCS_SFU_RELAY_RETRY_MAX": "relay_retry_max_s",
            "VCS_SFU_RELAY_GIVE_UP": "relay_give_up_s",
            "VCS_SFU_ADMISSION_WAIT": "admission_wait_s",
            "VCS_SFU_CERT_ROTATE": "cert_rotate_s",
        }
        lists = {
            "VCS_SFU_CORS_ORIGINS": "cors_origins",
            "VCS_SFU_ICE_HOSTS": "ice_host_addresses",
            "VCS_SFU_ICE_ALLOW": "ice_allowed_networks",
            "VCS_SFU_PROVINCES": "provinces",
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
        if "VCS_SFU_UDP_PORT" in environ:
            try:
                kwargs["udp_port"] = parse_udp_port(environ["VCS_SFU_UDP_PORT"])
            except ValueError as exc:
                raise ValueError(f"VCS_SFU_UDP_PORT: {exc}") from None
        for env, name in lists.items():
            values = tuple(x.strip() for x in environ.get(env, "").split(",") if x.strip())
            if values or (env in environ and name != "ice_allowed_networks"):  # no allowed network: the default ones
                kwargs[name] = values
        return cls(**kwargs)  # type: ignore[arg-type]


def parse_udp_port(value: str) -> int | None:
    """``VCS_SFU_UDP_PORT`` / ``--udp-port``: "auto" (or empty) 0, an ephemeral port; "off" None; else 0-65535."""
    text = value.strip().lower()
    if text in ("", "auto"):
        return 0
    if text == "off":
        return None
    if text.isascii() and text.isdigit() and len(text) <= 5 and int(text) <= 65535:
        return int(text)
    raise ValueError(f"the UDP port must be auto, off or a port number 0-65535, not {value.strip()[:40]!r}")


def _number(env: str, value: str, kind: type) -> int | float:
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"{env} must be a number, not {value!r}") from None
