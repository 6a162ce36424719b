"""The national administrative map from the `vietnam-provinces` package (since 1 July 2025).

34 provinces and centrally-run cities; 3,321 communes (xã), wards (phường)
and special zones (đặc khu). Codes are the official ones, zero-padded:
provinces two digits, communes five.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from vietnam_provinces import Province as _Province
from vietnam_provinces import Ward as _Ward

__all__ = ["Commune", "Province", "communes", "province_code", "provinces"]


@dataclass(frozen=True)
class Province:
    code: str
    name: str
    division_type: str  # "tỉnh" or "thành phố trung ương"


@dataclass(frozen=True)
class Commune:
    code: str
    name: str
    division_type: str  # "xã", "phường" or "đặc khu"
    province_code: str


@cache
def provinces() -> tuple[Province, ...]:
    found = (Province(f"{p.code.value:02d}", p.name, p.division_type.value) for p in _Province.iter_all())
    return tuple(sorted(found, key=lambda p: p.code))


@cache
def communes() -> tuple[Commune, ...]:
    found = (
        Commune(f"{w.code.value:05d}", w.name, w.division_type.value, f"{w.province_code.value:02d}")
        for w in _Ward.iter_all()
    )
    return tuple(sorted(found, key=lambda c: c.code))


_CODE = re.compile(r"[0-9]{1,3}")  # ASCII digits only: str.isdigit() also takes "¹" and "٣", which int() refuses or reads


def province_code(raw: str | int) -> str | None:
    """The canonical two-digit code for "1", "01" or 1; None when it names no province."""
    text = str(raw).strip()
    if not _CODE.fullmatch(text):
        return None
    code = f"{int(text):02d}"
    return code if any(p.code == code for p in provinces()) else None
