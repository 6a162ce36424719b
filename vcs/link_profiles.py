"""What each meeting room's network link carries, and the seeded national mix.

Seeding is a pure function of the commune code (a SHA-256 of it picks the
access type and the spread within it), so every deployment starts from the same
registry and a re-seed never changes a profile nobody edited.

The seeded mix, close to the 2025 field situation:

| access      | share | down / up (kbps)          | RTT        | loss       |
|-------------|-------|---------------------------|------------|------------|
| gov_fiber   | 88 %  | 200,000 / 200,000         | 8-30 ms    | 0-0.1 %    |
| 4g          |  9 %  | 8,000-12,000 / 2,000-4,000| 40-90 ms   | 0.5-2 %    |
| satellite   |  3 %  | 1,500-2,500 / 400-600     | 550-700 ms | 1-3 %      |

`internet_fiber` (a commercial line) is a valid access type for edits and
imports but not seeded. Province halls and the central studio are on 1 Gbps
government fibre.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from enum import StrEnum

from vcs.errors import FieldError

__all__ = ["AccessType", "LinkProfile", "seed_profile", "studio_profile", "validate_profile"]


class AccessType(StrEnum):
    GOV_FIBER = "gov_fiber"
    INTERNET_FIBER = "internet_fiber"
    LTE = "4g"
    SATELLITE = "satellite"


@dataclass(frozen=True)
class LinkProfile:
    access: AccessType
    down_kbps: int
    up_kbps: int
    rtt_ms: int
    loss_pct: float

    def to_dict(self) -> dict:
        data = asdict(self)
        data["access"] = self.access.value
        return data

    @classmethod
    def from_dict(cls, data: dict) -> LinkProfile:
        return cls(
            access=AccessType(data["access"]),
            down_kbps=int(data["down_kbps"]),
            up_kbps=int(data["up_kbps"]),
            rtt_ms=int(data["rtt_ms"]),
            loss_pct=float(data["loss_pct"]),
        )


GOV_FIBER_SHARE = 0.88
LTE_SHARE = 0.09  # the remaining 3 % is satellite


def _unit_values(code: str, count: int) -> list[float]:
    """`count` independent values in [0, 1) derived from the code."""
    digest = hashlib.sha256(f"vcs-link:{code}".encode()).digest()
    return [int.from_bytes(digest[i * 4 : i * 4 + 4], "big") / 2**32 for i in range(count)]


def _spread(low: float, high: float, unit: float) -> float:
    return low + (high - low) * unit


def seed_profile(commune_code: str) -> LinkProfile:
    pick, a, b, c, d = _unit_values(commune_code, 5)
    if pick < GOV_FIBER_SHARE:
        return LinkProfile(AccessType.GOV_FIBER, 200_000, 200_000, round(_spread(8, 30, a)), round(_spread(0, 0.1, b), 2))
    if pick < GOV_FIBER_SHARE + LTE_SHARE:
        return LinkProfile(
            AccessType.LTE,
            round(_spread(8_000, 12_000, a), -2),
            round(_spread(2_000, 4_000, b), -2),
            round(_spread(40, 90, c)),
            round(_spread(0.5, 2.0, d), 2),
        )
    return LinkProfile(
        AccessType.SATELLITE,
        round(_spread(1_500, 2_500, a), -2),
        round(_spread(400, 600, b), -1),
        round(_spread(550, 700, c)),
        round(_spread(1.0, 3.0, d), 2),
    )


def studio_profile() -> LinkProfile:
    return LinkProfile(AccessType.GOV_FIBER, 1_000_000, 1_000_000, 5, 0.0)


# bounds that catch typos (kbps entered as Mbps, loss as a fraction) without judging real links
MAX_KBPS = 10_000_000
MAX_RTT_MS = 5_000


def validate_profile(data: dict) -> tuple[LinkProfile | None, list[FieldError]]:
    """Parse a profile from untrusted input; return it or the reasons it is wrong."""
    errors: list[FieldError] = []
    access = data.get("access")
    try:
        access_type = AccessType(access)
    except ValueError:
        errors.append(FieldError.of("access", "one_of", choices=", ".join(a.value for a in AccessType)))
        access_type = None
    values: dict[str, float] = {}
    for field, low, high, kind in (
        ("down_kbps", 1, MAX_KBPS, int),
        ("up_kbps", 1, MAX_KBPS, int),
        ("rtt_ms", 0, MAX_RTT_MS, int),
        ("loss_pct", 0.0, 100.0, float),
    ):
        raw = data.get(field)
        try:
            if isinstance(raw, bool) or raw is None or raw == "":
                raise ValueError
            value = kind(float(raw)) if kind is int and float(raw).is_integer() else kind(raw)
        except (TypeError, ValueError):
            errors.append(FieldError.of(field, "number" if kind is float else "whole_number"))
            continue
        if not low <= value <= high:
            errors.append(FieldError.of(field, "between", low=low, high=high))
            continue
        values[field] = value
    if errors or access_type is None:
        return None, errors
    return LinkProfile(access_type, int(values["down_kbps"]), int(values["up_kbps"]), int(values["rtt_ms"]), float(values["loss_pct"])), []
