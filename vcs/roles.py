"""Who may do what: roles and the province scope of organizers.

| role      | reads                 | writes                                        |
|-----------|-----------------------|-----------------------------------------------|
| admin     | everything            | everything                                    |
| organizer | all, or its province  | meetings (for its province when scoped)       |
| ops       | everything            | link profiles, secrets, CSV import            |
| viewer    | everything            | nothing                                       |
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from vcs.errors import Forbidden

__all__ = ["Principal", "Role"]


class Role(StrEnum):
    ADMIN = "admin"
    ORGANIZER = "organizer"
    OPS = "ops"
    VIEWER = "viewer"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: an API token or a signed-in user."""

    name: str
    role: Role
    province_code: str | None = None  # only organizers are scoped

    @property
    def scoped(self) -> bool:
        return self.province_code is not None

    def require(self, *roles: Role) -> None:
        if self.role not in roles:
            raise Forbidden(f"role {self.role.value} may not do this")

    def require_province(self, province_code: str | None) -> None:
        """A province-scoped caller reaches only its own province."""
        if self.scoped and province_code != self.province_code:
            raise Forbidden(f"scoped to province {self.province_code}")

    def can_write_links(self) -> bool:
        return self.role in (Role.ADMIN, Role.OPS)
