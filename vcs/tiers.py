"""The tier ladder and its fit: what tier a link of N kbps starts on.

One ladder for the whole deployment, read once into `Settings.ladder`: the
booking preview's bandwidth plan, the tier in an agent's schedule entry and
the SFU allocator's starting tier all come from `Ladder.start`, so they agree.

A tier costs its video bitrate plus the audio budget (`audio_kbps`, 64 by
default: Opus at about 40 kbps plus RTP, SRTP and UDP overhead at 50 packets
a second); the audio-only tier costs the audio budget alone. A link starts on
the best tier (no better than a meeting's `max_tier`) whose cost fits the VCS
share of the link; when none fits the share, on the lowest tier if that fits
the whole link (given beyond the share), else on no tier at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "DEFAULT_AUDIO_KBPS",
    "DEFAULT_LADDER",
    "DEFAULT_TIERS",
    "DEFAULT_VCS_SHARE",
    "NO_TIER",
    "PUBLISH_TIERS",
    "Ladder",
    "Start",
    "TierSpec",
    "parse_tiers",
]

NO_TIER = "none"
DEFAULT_VCS_SHARE = 0.5  # share of a commune's link reserved for VCS
DEFAULT_AUDIO_KBPS = 64

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


AUDIO_TIER = TierSpec("audio", 0, 0, 0)
DEFAULT_TIERS: tuple[TierSpec, ...] = (
    TierSpec("720p", 1280, 720, 2500),
    TierSpec("360p", 640, 360, 800),
    TierSpec("180p", 320, 180, 250),
    AUDIO_TIER,
)
# what a publisher may be asked to send, best first: the default ladder plus 1080p for a studio
PUBLISH_TIERS: tuple[TierSpec, ...] = (TierSpec("1080p", 1920, 1080, 4500), *DEFAULT_TIERS)


def parse_tiers(text: str) -> tuple[TierSpec, ...]:
    """Parse ``"720p:1280x720@2500,360p:640x360@800,audio"``.

    The result is sorted from the highest bitrate down; names are unique.
    """
    tiers: list[TierSpec] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if item == "audio":
            tiers.append(AUDIO_TIER)
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
    return _ordered(tiers)


def _ordered(tiers: list[TierSpec] | tuple[TierSpec, ...]) -> tuple[TierSpec, ...]:
    if not tiers:
        raise ValueError("the tier ladder is empty")
    names = [t.name for t in tiers]
    if len(set(names)) != len(names):
        raise ValueError("tier names must be unique")
    return tuple(sorted(tiers, key=lambda t: t.video_kbps, reverse=True))


@dataclass(frozen=True)
class Start:
    """Where a link starts: a tier (None: not even the lowest fits) and whether it fits the VCS share."""

    tier: TierSpec | None
    within_share: bool

    @property
    def name(self) -> str:
        return self.tier.name if self.tier else NO_TIER


@dataclass(frozen=True)
class Ladder:
    """The tiers, best first, with the share of a link VCS may use and the audio budget."""

    tiers: tuple[TierSpec, ...] = DEFAULT_TIERS
    vcs_share: float = DEFAULT_VCS_SHARE
    audio_kbps: int = DEFAULT_AUDIO_KBPS

    def __post_init__(self) -> None:
        object.__setattr__(self, "tiers", _ordered(tuple(self.tiers)))
        if not 0 < self.vcs_share <= 1:
            raise ValueError("vcs_share must be in (0, 1]")
        if not 0 <= self.audio_kbps <= 1000:
            raise ValueError("audio_kbps must be 0..1000")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Ladder:
        """`VCS_SFU_TIERS`, `VCS_SFU_SHARE`, `VCS_SFU_AUDIO_KBPS`; a bad value raises ValueError naming it."""
        tiers = parse_tiers(environ["VCS_SFU_TIERS"]) if environ.get("VCS_SFU_TIERS") else DEFAULT_TIERS
        share = _number(environ, "VCS_SFU_SHARE", float, DEFAULT_VCS_SHARE)
        audio = _number(environ, "VCS_SFU_AUDIO_KBPS", int, DEFAULT_AUDIO_KBPS)
        return cls(tiers, share, audio)  # type: ignore[arg-type]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tiers)

    def tier(self, name: str) -> TierSpec:
        for tier in self.tiers:
            if tier.name == name:
                return tier
        raise KeyError(name)

    def index(self, max_tier: str | None) -> int:
        """Position of `max_tier` (None: the top); ValueError when the ladder lacks it."""
        if max_tier is None:
            return 0
        if max_tier not in self.names:
            raise ValueError(f"max_tier {max_tier!r} is not in the ladder ({', '.join(self.names)})")
        return self.names.index(max_tier)

    def cost_kbps(self, tier: TierSpec) -> int:
        """What a subscriber of `tier` receives: its video plus the audio."""
        return tier.video_kbps + self.audio_kbps

    def best_within(self, budget_kbps: float, *, top: int = 0) -> int | None:
        """Index of the best tier at or below `top` whose cost fits `budget_kbps`, or None."""
        for index in range(top, len(self.tiers)):
            if self.cost_kbps(self.tiers[index]) <= budget_kbps:
                return index
        return None

    def start(self, link_kbps: float, *, max_tier: str | None = None) -> Start:
        """The tier a link of `link_kbps` starts on (see the module docstring)."""
        index = self.best_within(link_kbps * self.vcs_share, top=self.index(max_tier))
        if index is not None:
            return Start(self.tiers[index], True)
        lowest = self.tiers[-1]
        return Start(lowest if self.cost_kbps(lowest) <= link_kbps else None, False)

    def choose(self, link_kbps: float, *, max_tier: str | None = None) -> str:
        """The tier name a link starts on, or NO_TIER."""
        return self.start(link_kbps, max_tier=max_tier).name


DEFAULT_LADDER = Ladder()


def _number(environ: Mapping[str, str], name: str, kind: type, default: float) -> float:
    raw = environ.get(name)
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {raw!r}") from None
