"""The 34 provinces as a tile map of Vietnam: one grid cell each, roughly where they lie.

Rows run north to south, columns west to east, so the country's S shows:
the wide north (Lai Châu to Quảng Ninh), the central strip bending east to
Quảng Ngãi and Khánh Hòa, the south-east around Hồ Chí Minh City and the
Mekong delta down to Cà Mau. The stylesheet places a tile with its `r<row>`
and `c<col>` classes (no inline styles: the CSP forbids them).
"""

from __future__ import annotations

from dataclasses import dataclass

from vcs.divisions import provinces

__all__ = ["COLUMNS", "ROWS", "Tile", "share_class", "short_name", "tiles"]

# province code => (row, column), 1-based
POSITIONS: dict[str, tuple[int, int]] = {
    "12": (1, 2), "15": (1, 3), "08": (1, 4), "04": (1, 5),  # Lai Châu, Lào Cai, Tuyên Quang, Cao Bằng
    "11": (2, 1), "14": (2, 2), "25": (2, 3), "19": (2, 4), "20": (2, 5),  # Điện Biên, Sơn La, Phú Thọ, Thái Nguyên, Lạng Sơn
    "01": (3, 3), "24": (3, 4), "22": (3, 5),  # Hà Nội, Bắc Ninh, Quảng Ninh
    "37": (4, 3), "33": (4, 4), "31": (4, 5),  # Ninh Bình, Hưng Yên, Hải Phòng
    "38": (5, 3),  # Thanh Hóa
    "40": (6, 3), "42": (6, 4),  # Nghệ An, Hà Tĩnh
    "44": (7, 4), "46": (7, 5),  # Quảng Trị, Huế
    "48": (8, 5), "51": (8, 6),  # Đà Nẵng, Quảng Ngãi
    "52": (9, 5), "66": (9, 6),  # Gia Lai, Đắk Lắk
    "68": (10, 5), "56": (10, 6),  # Lâm Đồng, Khánh Hòa
    "80": (11, 3), "75": (11, 4),  # Tây Ninh, Đồng Nai
    "91": (12, 2), "82": (12, 3), "79": (12, 4),  # An Giang, Đồng Tháp, Hồ Chí Minh City
    "92": (13, 3), "86": (13, 4),  # Cần Thơ, Vĩnh Long
    "96": (14, 3),  # Cà Mau
}
ROWS = max(r for r, _ in POSITIONS.values())
COLUMNS = max(c for _, c in POSITIONS.values())
_SHORT = {"79": "TP HCM"}


@dataclass(frozen=True)
class Tile:
    code: str
    name: str  # the full name, for the tooltip
    short: str  # the label on the tile
    row: int
    col: int


def short_name(code: str, name: str) -> str:
    return _SHORT.get(code) or name.removeprefix("Thành phố ").removeprefix("Tỉnh ")


def tiles() -> list[Tile]:
    return [Tile(p.code, p.name, short_name(p.code, p.name), *POSITIONS[p.code]) for p in provinces()]


def share_class(joined: int, expected: int) -> str:
    """The colour class of a share joined (live.js has the same thresholds)."""
    if expected <= 0:
        return "share-none"
    share = joined / expected
    if share >= 0.95:
        return "share-4"
    if share >= 0.8:
        return "share-3"
    if share >= 0.5:
        return "share-2"
    if share > 0:
        return "share-1"
    return "share-0"
