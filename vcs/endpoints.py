"""Endpoints (điểm cầu): the meeting rooms the centre connects.

One per commune (its id is the five-digit commune code), one hall per province
(`hall-<province code>`), and the central studio (`central`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from enum import StrEnum

from vcs.divisions import communes, provinces
from vcs.link_profiles import LinkProfile, seed_profile, studio_profile
from vcs.names import fold

__all__ = ["CENTRAL_ID", "Endpoint", "EndpointKind", "hall_id", "national_endpoints"]

CENTRAL_ID = "central"


class EndpointKind(StrEnum):
    CENTRAL = "central"
    HALL = "hall"
    COMMUNE = "commune"


def hall_id(province_code: str) -> str:
    return f"hall-{province_code}"


@dataclass(frozen=True)
class Endpoint:
    id: str
    kind: EndpointKind
    name: str
    province_code: str | None
    division_type: str
    link: LinkProfile
    folded_name: str = field(default="", compare=False, repr=False)
    contact_name: str = ""  # the on-duty IT officer of the room (readiness board)
    contact_phone: str = ""

    def __post_init__(self) -> None:
        if not self.folded_name:
            object.__setattr__(self, "folded_name", fold(self.name))

    def with_link(self, link: LinkProfile) -> Endpoint:
        return replace(self, link=link)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "name": self.name,
            "province_code": self.province_code,
            "division_type": self.division_type,
            "link": self.link.to_dict(),
            **({"contact_name": self.contact_name, "contact_phone": self.contact_phone} if self.contact_name or self.contact_phone else {}),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str) -> Endpoint:
        data = json.loads(raw)
        return cls(
            id=data["id"],
            kind=EndpointKind(data["kind"]),
            name=data["name"],
            province_code=data["province_code"],
            division_type=data["division_type"],
            link=LinkProfile.from_dict(data["link"]),
            contact_name=data.get("contact_name", ""),
            contact_phone=data.get("contact_phone", ""),
        )


def national_endpoints() -> list[Endpoint]:
    """The seeded registry: central studio, 34 province halls, 3,321 communes."""
    studio = studio_profile()
    found = [Endpoint(CENTRAL_ID, EndpointKind.CENTRAL, "Điểm cầu Trung ương", None, "trung ương", studio)]
    found += [
        Endpoint(hall_id(p.code), EndpointKind.HALL, f"Điểm cầu {p.name}", p.code, p.division_type, studio)
        for p in provinces()
    ]
    found += [
        Endpoint(c.code, EndpointKind.COMMUNE, c.name, c.province_code, c.division_type, seed_profile(c.code))
        for c in communes()
    ]
    return found
