"""The navigation bar: one entry per section, shown only to the roles that may open it.

To add a section: add a `NavItem` here, give its page the same roles
(`@page(*item.roles)`), render with `section=<key>`, and add the Vietnamese
for its label to `web/locale/vi/LC_MESSAGES/messages.po`.
"""

from __future__ import annotations

from dataclasses import dataclass

from vcs.roles import Role
from web.ui.i18n import N_

__all__ = ["ADMINS", "AUDITORS", "BOOKERS", "EVERYONE", "LINK_EDITORS", "NAV", "NavItem", "visible"]

# who may open what; pages and nav entries use the same tuples
EVERYONE: tuple[Role, ...] = ()  # every signed-in role
ADMINS = (Role.ADMIN,)
LINK_EDITORS = (Role.ADMIN, Role.OPS)  # link profiles, CSV import, secrets (as in the API)
AUDITORS = (Role.ADMIN, Role.OPS)
BOOKERS = (Role.ADMIN, Role.ORGANIZER)  # meetings: booking, changing, cancelling, the floor, the host console


@dataclass(frozen=True)
class NavItem:
    key: str  # the `section` a page passes to render(); marks the entry as current
    path: str
    label: str  # English msgid, translated at render time
    roles: tuple[Role, ...] = EVERYONE

    def allows(self, role: Role) -> bool:
        return not self.roles or role in self.roles


NAV: tuple[NavItem, ...] = (
    NavItem("today", "/", N_("Today")),
    NavItem("meetings", "/meetings", N_("Meetings")),
    NavItem("endpoints", "/endpoints", N_("Endpoints")),
    NavItem("drills", "/drills", N_("Drills")),
    NavItem("users", "/users", N_("Users"), ADMINS),
    NavItem("audit", "/audit", N_("Audit log"), AUDITORS),
)


def visible(role: Role) -> list[NavItem]:
    return [item for item in NAV if item.allows(role)]
