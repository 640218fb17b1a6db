"""Roles, what each may do, and the acting user (``Actor``).

Permissions are pure rules here; services call ``actor.require(...)`` and
``actor.require_site(...)`` before reading or writing, so the CLI, imports and
any later web interface share one set of checks.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from noim.domain.exceptions import PermissionDenied


class Role(enum.StrEnum):
    ADMINISTRATOR = "administrator"
    COORDINATOR = "coordinator"
    RESEARCHER = "researcher"
    DATA_MANAGER = "data_manager"
    STATISTICIAN = "statistician"
    UNBLINDED_STATISTICIAN = "unblinded_statistician"
    DMC_MEMBER = "dmc_member"


class Capability(enum.StrEnum):
    ADMINISTER = "administer"  # schema upgrades, trial set-up
    MANAGE_USERS = "manage_users"
    READ_TRIAL_DATA = "read_trial_data"
    WRITE_TRIAL_DATA = "write_trial_data"
    WRITE_ASSESSMENTS = "write_assessments"
    RANDOMISE = "randomise"
    SEE_ARM = "see_arm"
    READ_IDENTIFIABLE = "read_identifiable"
    WRITE_IDENTIFIABLE = "write_identifiable"
    MANAGE_QUERIES = "manage_queries"
    MANAGE_REFERENCE_DATA = "manage_reference_data"  # unit costs for the economic evaluation
    FREEZE_DATA = "freeze_data"
    READ_AUDIT = "read_audit"
    ANALYSE = "analyse"
    READ_OPEN_REPORT = "read_open_report"
    READ_CLOSED_REPORT = "read_closed_report"
    #: run CSV imports of every kind that does not reveal the arm, at every site (the data
    #: manager), besides the kinds a role's own write capability allows
    IMPORT_DATA = "import_data"


@dataclass(frozen=True)
class RoleSpec:
    role: Role
    label: str
    description: str
    site_scoped: bool
    blinded: bool
    capabilities: frozenset[Capability]


C = Capability
_READ = {C.READ_TRIAL_DATA}

ROLE_SPECS: dict[Role, RoleSpec] = {
    spec.role: spec
    for spec in (
        RoleSpec(
            Role.ADMINISTRATOR,
            "Administrator",
            "Trial manager: users, trial set-up, every site; unblinded; reads identifiable details",
            site_scoped=False,
            blinded=False,
            capabilities=frozenset(Capability),
        ),
        RoleSpec(
            Role.COORDINATOR,
            "Trial coordinator",
            "Screens, consents, registers and randomises families and enters data at their sites; "
            "told the arm at randomisation; reads identifiable details of their sites' families",
            site_scoped=True,
            blinded=False,
            capabilities=frozenset(
                {
                    C.READ_TRIAL_DATA,
                    C.WRITE_TRIAL_DATA,
                    C.WRITE_ASSESSMENTS,
                    C.RANDOMISE,
                    C.SEE_ARM,
                    C.READ_IDENTIFIABLE,
                    C.WRITE_IDENTIFIABLE,
                    C.MANAGE_QUERIES,
                }
            ),
        ),
        RoleSpec(
            Role.RESEARCHER,
            "Outcome researcher",
            "Collects outcome assessments at their sites, masked to arm",
            site_scoped=True,
            blinded=True,
            capabilities=frozenset({C.READ_TRIAL_DATA, C.WRITE_ASSESSMENTS}),
        ),
        RoleSpec(
            Role.DATA_MANAGER,
            "Data manager",
            "Raises and resolves data queries, freezes data, reads the audit trail; every site; "
            "masked to arm",
            site_scoped=False,
            blinded=True,
            capabilities=frozenset(
                {
                    C.READ_TRIAL_DATA,
                    C.MANAGE_QUERIES,
                    C.MANAGE_REFERENCE_DATA,
                    C.FREEZE_DATA,
                    C.READ_AUDIT,
                    C.READ_OPEN_REPORT,
                    C.IMPORT_DATA,
                }
            ),
        ),
        RoleSpec(
            Role.STATISTICIAN,
            "Trial statistician (blinded)",
            "Runs the analysis plan on masked arms; every site; read only",
            site_scoped=False,
            blinded=True,
            capabilities=frozenset({*_READ, C.ANALYSE, C.READ_OPEN_REPORT}),
        ),
        RoleSpec(
            Role.UNBLINDED_STATISTICIAN,
            "Unblinded statistician",
            "Prepares closed reports for the DMC; sees arms; every site; read only",
            site_scoped=False,
            blinded=False,
            capabilities=frozenset(
                {
                    *_READ,
                    C.SEE_ARM,
                    C.ANALYSE,
                    C.READ_OPEN_REPORT,
                    C.READ_CLOSED_REPORT,
                    C.FREEZE_DATA,
                }
            ),
        ),
        RoleSpec(
            Role.DMC_MEMBER,
            "Data Monitoring Committee member",
            "Reads open and closed interim reports",
            site_scoped=False,
            blinded=False,
            capabilities=frozenset({C.READ_OPEN_REPORT, C.READ_CLOSED_REPORT, C.SEE_ARM}),
        ),
    )
}


def parse_role(text: str) -> Role:
    try:
        return Role(text.strip().lower())
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise ValueError(f"role {text!r}: expected one of {allowed}") from None


@dataclass(frozen=True)
class Actor:
    """The user on whose behalf a service runs: every service call takes one."""

    name: str
    role: Role
    user_id: int | None = None
    site_ids: frozenset[int] = field(default_factory=frozenset)
    site_codes: frozenset[str] = field(default_factory=frozenset)
    #: the role the audit trail names instead of ``role`` (the anonymous web visitor)
    audit_role: str | None = None

    @property
    def spec(self) -> RoleSpec:
        return ROLE_SPECS[self.role]

    @property
    def blinded(self) -> bool:
        return self.spec.blinded

    @property
    def all_sites(self) -> bool:
        return not self.spec.site_scoped

    def can(self, capability: Capability) -> bool:
        return capability in self.spec.capabilities

    def describe(self) -> str:
        where = "" if self.all_sites else f" at {', '.join(sorted(self.site_codes)) or 'no site'}"
        return f"user {self.name!r} ({self.role.value}{where})"

    def require(self, capability: Capability, action: str) -> None:
        """Raise ``PermissionDenied`` unless the role has ``capability``."""
        if not self.can(capability):
            raise PermissionDenied(
                f"{self.describe()} may not {action}: the {self.role.value} role lacks "
                f"'{capability.value}'"
            )

    def can_see_site(self, site_id: int) -> bool:
        return self.all_sites or site_id in self.site_ids

    def require_site(self, site_id: int, site_code: str, action: str) -> None:
        """Raise ``PermissionDenied`` unless the actor works at ``site_id``."""
        if not self.can_see_site(site_id):
            raise PermissionDenied(
                f"{self.describe()} may not {action} at site {site_code!r}: "
                "coordinators and researchers work only with their own sites' families"
            )


#: whom the audit trail credits with what an unauthenticated web visitor caused (a failed
#: login under an unknown user name): no user, the role "anonymous" in the trail, a blinded
#: read-only role's rights (it is only ever used to write an authentication event)
ANONYMOUS = Actor(name="(anonymous)", role=Role.STATISTICIAN, audit_role="anonymous")
