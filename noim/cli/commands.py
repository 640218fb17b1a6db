"""Every ``noim`` command and group: where it lives and its one-line help.

``noim --help`` is printed from this table, and a command's module is imported only
when the command runs (``noim.cli.lazy``).  A new command goes here, with the first
sentence of its docstring; ``tests/test_cli_startup.py`` fails when an entry does not
match the command it names.
"""

from __future__ import annotations

from noim.cli.lazy import Lazy

ROOT: dict[str, Lazy] = {
    "assessment": Lazy(
        "noim.cli.assessments:assessment_group",
        "Assessments: item responses and the scores derived from them.",
    ),
    "audit": Lazy(
        "noim.cli.admin:audit_group",
        "The audit trail: verify it, anchor it, read a record's history.",
    ),
    "carer": Lazy(
        "noim.cli.people:carer_group",
        "Carers (foster, kinship, adoptive, residential) and the children they care for.",
    ),
    "check": Lazy(
        "noim.cli.rules:check",
        "Run every set rule over the whole database (data managers, administrators).",
    ),
    "child": Lazy("noim.cli.records:child_group", "Children: the trial's participants."),
    "consent": Lazy("noim.cli.consent:consent_group", "Consent for children to take part."),
    "db": Lazy("noim.cli.admin:db", "Schema migrations and database status."),
    "demo": Lazy(
        "noim.cli.demo:demo_command",
        "Build a synthetic NIM trial through the real services and print a summary.",
    ),
    "deviation": Lazy("noim.cli.safety:deviation_group", "Protocol deviations."),
    "family": Lazy("noim.cli.records:family_group", "Families: the randomised clusters."),
    "followups": Lazy(
        "noim.cli.visits:followups_group", "Follow-up visits scheduled from the trial definition."
    ),
    "freeze": Lazy(
        "noim.cli.freezes:freeze_group",
        "Data freezes: consistent, hashed snapshots of every dataset the analyses and the "
        "interim reports read (see docs/data-freezes.md).",
    ),
    "import": Lazy(
        "noim.cli.imports:import_command",
        "Import FILE (UTF-8 CSV) as KIND; formats in docs/import-formats.md.",
    ),
    "init": Lazy(
        "noim.cli.admin:init",
        "Create a noim database: schema, trial definition and the first administrator.",
    ),
    "intervention": Lazy(
        "noim.cli.intervention:intervention_group",
        "Receipt of the allocated intervention (one current record per randomised family).",
    ),
    "legal": Lazy(
        "noim.cli.care:legal_group",
        "Legal proceedings, events and court / hearing decisions; permanence.",
    ),
    "parent": Lazy(
        "noim.cli.people:parent_group",
        "Birth parents of a family and their links to its children.",
    ),
    "placement": Lazy(
        "noim.cli.care:placement_group", "Placements: where each child lives, and its moves."
    ),
    "queries": Lazy(
        "noim.cli.queries:queries_group",
        "Data queries: raised by rules or by hand, answered by sites, resolved by data managers.",
    ),
    "randomisation": Lazy(
        "noim.cli.randomisation:randomisation_group",
        "Randomisation set-up, allocations, balance, the sealed list and simulations.",
    ),
    "randomise": Lazy(
        "noim.cli.randomisation:randomise_command",
        "Randomise FAMILY_ID (all its children), or every family of --batch FILE.",
    ),
    "report": Lazy(
        "noim.cli.reports:report_group",
        "Reports for the trial team and the Data Monitoring Committee.",
    ),
    "rules": Lazy("noim.cli.rules:rules_group", "The validation rules noim applies."),
    "sae": Lazy("noim.cli.safety:sae_group", "Serious adverse events (listed without arms)."),
    "screening": Lazy(
        "noim.cli.screening:screening_group",
        "The screening log: families screened, eligible, declined and enrolled.",
    ),
    "serve": Lazy(
        "noim.cli.serve:serve",
        "Serve the web application: coordinators, data manager, statisticians and DMC log in.",
    ),
    "service-use": Lazy(
        "noim.cli.economics:service_use_group",
        "Services a child used, costed from the unit costs.",
    ),
    "trial": Lazy("noim.cli.admin:trial_group", "The trial definition."),
    "unit-cost": Lazy(
        "noim.cli.economics:unit_cost_group",
        "Unit costs: the price of one unit of each service (data manager, administrators).",
    ),
    "users": Lazy(
        "noim.cli.admin:users_group", "Users, roles and site memberships (administrators)."
    ),
    "visit": Lazy(
        "noim.cli.visits:visit_group",
        "One child's follow-up visits: list them and record what happened.",
    ),
    "void": Lazy(
        "noim.cli.voiding:void", "Void record RECORD_ID of TABLE, a record entered in error."
    ),
}
"""The top-level commands and groups (``noim NAME``)."""

# Commands of a group that live in another module than the group (so that the group's
# module need not import their services): the group declares them with ``lazy=``.

FAMILY: dict[str, Lazy] = {
    "exclude": Lazy(
        "noim.cli.visits:family_exclude",
        "Record that randomised FAMILY_ID was found ineligible (kept, never deleted).",
    ),
}

CHILD: dict[str, Lazy] = {
    "carers": Lazy(
        "noim.cli.people:child_carers",
        "List who cared for CHILD_ID on which dates, and the child's birth parents.",
    ),
    "eligibility": Lazy(
        "noim.cli.consent:child_eligibility", "Record whether CHILD_ID is eligible."
    ),
    "exclude": Lazy(
        "noim.cli.visits:child_exclude",
        "Record that randomised CHILD_ID was found ineligible (kept, never deleted).",
    ),
    "lost": Lazy(
        "noim.cli.safety:child_lost", "Record that CHILD_ID (randomised) is lost to follow-up."
    ),
    "withdraw": Lazy(
        "noim.cli.consent:child_withdraw",
        "Record CHILD_ID's withdrawal; unfinished visits become not required when follow-up ends.",
    ),
}

DB: dict[str, Lazy] = {
    "roles": Lazy(
        "noim.cli.integrity:db_roles",
        "Print the SQL that sets up PostgreSQL roles limiting what a leaked application "
        "credential can do: an owner, an application role that cannot delete, truncate, alter "
        "history or run DDL, and a read-only role (see docs/operations.md and docs/security.md).",
    ),
}

AUDIT: dict[str, Lazy] = {
    "anchor": Lazy(
        "noim.cli.integrity:audit_anchor",
        "Write the audit chain's head (row, hash, time) as JSON, to keep outside the database.",
    ),
}

USERS: dict[str, Lazy] = {
    "logout": Lazy("noim.cli.logins:users_logout", "End every web session of user NAME now."),
    "password": Lazy(
        "noim.cli.logins:users_password",
        "Give user NAME a new one-time password (printed once): their sessions end, a lockout "
        "is cleared, and they choose their own password at the next login.",
    ),
    "remove-second-factor": Lazy(
        "noim.cli.logins:users_remove_second_factor",
        "Remove user NAME's second factor (a lost phone): their sessions end, and they set up "
        "a new one at the next login if their role requires it.",
    ),
    "second-factor": Lazy(
        "noim.cli.logins:users_second_factor",
        "Make a second factor (TOTP) compulsory, or optional, for users of ROLE.",
    ),
}
