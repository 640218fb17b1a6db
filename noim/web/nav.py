"""The navigation bar: one entry per area, shown to the roles that may use it."""

from __future__ import annotations

from dataclasses import dataclass

from noim.domain.roles import Actor, Capability, Role


@dataclass(frozen=True)
class NavItem:
    label: str
    url: str
    capability: Capability | None = None
    roles: frozenset[Role] | None = None

    def shown_to(self, actor: Actor) -> bool:
        if self.roles is not None and actor.role not in self.roles:
            return False
        return self.capability is None or actor.can(self.capability)


C = Capability
R = Role

#: in display order; each area adds its entries here (one line each)
NAV: list[NavItem] = [
    NavItem("Home", "/"),
    NavItem("Families", "/families", C.READ_TRIAL_DATA),
    NavItem("Screening", "/screening", C.WRITE_TRIAL_DATA),
    NavItem("Register a family", "/families/new", C.WRITE_TRIAL_DATA),
    NavItem("Queries", "/queries", C.READ_TRIAL_DATA),
    NavItem("Check", "/check", C.MANAGE_QUERIES, frozenset({R.DATA_MANAGER, R.ADMINISTRATOR})),
    NavItem(
        "Imports",
        "/imports",
        None,
        frozenset({R.COORDINATOR, R.RESEARCHER, R.DATA_MANAGER, R.ADMINISTRATOR}),
    ),
    NavItem("Freezes", "/freezes", None, frozenset(R) - {R.COORDINATOR, R.RESEARCHER}),
    NavItem("Audit", "/audit", C.READ_AUDIT),
    NavItem("Reports", "/reports", C.READ_OPEN_REPORT),
    NavItem("Datasets", "/datasets", C.ANALYSE),
    NavItem("Users", "/admin/users", C.MANAGE_USERS),
]


def nav_for(actor: Actor) -> list[NavItem]:
    return [item for item in NAV if item.shown_to(actor)]
