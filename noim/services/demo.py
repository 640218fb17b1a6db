"""A synthetic NIM trial for demonstrations, built through the real services.

Every record goes through the same services, validation and audit trail as a
coordinator's entry: the bulk records (families, screening log and enrolments,
eligibility, consents, placements, legal events, assessments, visit outcomes, service
use, withdrawals, SAEs, protocol deviations) through the CSV imports of
``noim.services.imports`` fed with generated text, and the randomisations through
``randomise_many`` (one unit of work, the same allocations as one-by-one ``randomise``).
The random model is ``noim.services.demo_plan``; all randomness comes from one
``numpy.random.Generator`` seeded by the caller, so the same seed and ``as_of`` build
the same trial.

Randomisations are back-dated with ``randomise_many(..., randomised_at=...)``, which the
audit trail records as synthetic back-dated allocations.  No record is dated after
``as_of`` (default: today).

The build is many units of work.  ``staged_build(url)`` makes it all or nothing on SQLite:
the trial is built in a side file moved onto the database file only once complete, so a
build killed part-way leaves nothing behind and the same command starts again cleanly.
A PostgreSQL database cannot be staged that way: ``build_demo`` refuses a database that
already holds anything beyond a fresh ``noim init`` and says how to reset it.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from noim.config import Settings
from noim.db import migrate, staging
from noim.db.models import (
    Allocation,
    Child,
    Family,
    FollowUpVisit,
    InterventionReceipt,
    LegalEvent,
    ProtocolDeviation,
    RandomisationState,
    SeriousAdverseEvent,
    UnitCost,
    User,
    UserCredential,
    Withdrawal,
)
from noim.db.session import Database
from noim.domain.exceptions import AlreadyExists, AlreadyInitialised
from noim.domain.legal import DECISION_TYPES
from noim.domain.roles import Actor, Role
from noim.domain.trialdef import TrialDefinition
from noim.services import (
    auth,
    economics,
    randomisation,
    setup,
    users,
)
from noim.services.demo_plan import (
    Effects,
    assessments_header,
    consents_csv,
    eligibility_csv,
    families_csv,
    follow_up,
    intervention_csv,
    recruitment,
    screening_csv,
)
from noim.services.imports import run_import
from noim.services.randomisation_batch import randomise_many

DEMO_ADMIN = "admin"
#: every demonstration user's password for the web application (`noim serve`): a demo only
DEMO_PASSWORD = "noim demo trial"
DEFAULT_FAMILIES = 390

__all__ = [
    "DEFAULT_FAMILIES",
    "DEMO_ADMIN",
    "DEMO_PASSWORD",
    "DemoResult",
    "Effects",
    "build_demo",
    "demo_users",
    "staged_build",
]


def staged_build(url: str) -> AbstractContextManager[str]:
    """The database URL to build (and freeze) the demonstration in; on SQLite a side file
    that replaces ``url``'s file when the block completes (``noim.db.staging``), elsewhere
    ``url`` itself.  Close every connection to it before the block ends."""
    return staging.staged(url)


#: (name, role, sites) of the demonstration users: one of each role, coordinators and researchers per site
def demo_users(definition: TrialDefinition) -> list[tuple[str, Role, tuple[str, ...]]]:
    out: list[tuple[str, Role, tuple[str, ...]]] = []
    for site in definition.sites:
        code = site.code.lower()
        out.append((f"coord_{code}", Role.COORDINATOR, (site.code,)))
        out.append((f"research_{code}", Role.RESEARCHER, (site.code,)))
    out += [
        ("datamanager", Role.DATA_MANAGER, ()),
        ("statistician", Role.STATISTICIAN, ()),
        ("unblinded_stat", Role.UNBLINDED_STATISTICIAN, ()),
        ("dmc_chair", Role.DMC_MEMBER, ()),
    ]
    return out


@dataclass(frozen=True)
class DemoResult:
    """What was built: counts for the summary the command prints."""

    database_url: str
    as_of: date
    families: int
    children: int
    screened: int
    randomised: dict[str, int]  # families per arm
    visits: dict[str, int]  # visits by stored status
    intervention: dict[str, int]  # randomised families: received / not received / not recorded
    permanence: dict[str, int]  # children by first permanence outcome
    saes: int
    deviations: int
    withdrawals: int
    users: tuple[str, ...]


def build_demo(
    url: str,
    definition: TrialDefinition,
    n_families: int = DEFAULT_FAMILIES,
    seed: int = 2026,
    effects: Effects | None = None,
    as_of: date | None = None,
    progress: Callable[[str], None] | None = None,
) -> DemoResult:
    """Create (if needed) a database at ``url`` and build a synthetic trial in it.

    Refuses a database that holds anything beyond a fresh ``noim init`` (AlreadyExists):
    a demonstration trial is built once, in a new database.
    """
    effects = effects or Effects()
    as_of = as_of or date.today()
    say = progress or (lambda _stage: None)
    with contextlib.suppress(AlreadyInitialised):
        setup.initialise(url, definition, DEMO_ADMIN)
    db = Database(Settings.resolve(database=url).database_url)
    try:
        migrate.require_current(db.engine)
        _refuse_a_used_database(db)
        admin = _users(db, definition)
        rng = np.random.default_rng(seed)
        # a synthetic trial is reproducible: its masking key comes from its seed
        key = hashlib.sha256(f"noim-demo-mask:{seed}".encode()).hexdigest()
        randomisation.setup(db, admin, seed, mask_key=key)
        _unit_costs(db, as_of)

        say("recruitment")
        plans, others = recruitment(definition, n_families, as_of, rng)
        report = run_import(db, admin, "families", "demo-families.csv", text=families_csv(plans))
        child_ids = list(report.child_ids.values())
        for f in plans:
            f.trial_id = report.family_ids[f.ref]
            for c in f.children:
                c.trial_id = child_ids[c.row]

        say("screening")
        run_import(db, admin, "screening", "demo-screening.csv", text=screening_csv(plans, others))
        run_import(db, admin, "eligibility", "demo-eligibility.csv", text=eligibility_csv(plans))
        run_import(db, admin, "consents", "demo-consents.csv", text=consents_csv(plans))

        say("randomisation")
        order = sorted(plans, key=lambda p: (p.randomised, p.ref))
        times = []
        for f in order:
            hour = 9 + int(rng.integers(0, 8))
            times.append(
                datetime(f.randomised.year, f.randomised.month, f.randomised.day, hour, tzinfo=UTC)
            )
        views = randomise_many(db, admin, [f.trial_id for f in order], randomised_at=times)
        for f, view in zip(order, views, strict=True):
            f.arm = view.arm

        say("follow-up")
        out = follow_up(definition, plans, definition.arms[0].code, effects, as_of, rng)
        run_import(
            db,
            admin,
            "placements",
            "demo-placements.csv",
            text=out.csv(
                "child_id,start_date,end_date,placement_type,end_reason,local_authority",
                out.placements,
            ),
        )
        run_import(
            db,
            admin,
            "legal-events",
            "demo-legal-events.csv",
            text=out.csv(
                "child_id,event_type,event_date,proceedings_kind,proceedings_started_on,notes",
                out.legal,
            ),
        )
        for (instrument, form), rows in sorted(out.assessments.items()):
            run_import(
                db,
                admin,
                "assessments",
                f"demo-{instrument}-{form}.csv",
                text=out.csv(assessments_header(instrument, form), rows),
            )
        if out.visits:
            run_import(
                db,
                admin,
                "visits",
                "demo-visits.csv",
                text=out.csv("child_id,timepoint,outcome,date,reason", out.visits),
            )

        say("intervention receipt")
        receipt = intervention_csv(plans, definition.arms[0].code, as_of, rng)
        run_import(db, admin, "intervention", "demo-intervention.csv", text=receipt)

        say("safety and costs")
        if out.withdrawals:
            run_import(
                db,
                admin,
                "withdrawals",
                "demo-withdrawals.csv",
                text=out.csv(
                    "child_id,withdrawn_on,level,requested_by,reason",
                    [
                        f"{child},{on},{level},carer,no longer wishes to take part"
                        for _site, child, on, level in out.withdrawals
                    ],
                ),
            )
        if out.saes:
            run_import(
                db,
                admin,
                "saes",
                "demo-saes.csv",
                text=out.csv(
                    "child_id,onset_date,reported_on,category,description,relatedness,"
                    "expected,outcome,complete",
                    [
                        f"{child},{onset},{reported},{category},"
                        + (
                            "admitted to hospital"
                            if category == "hospitalisation"
                            else "serious injury"
                        )
                        + f",not_related,no,recovered,{'yes' if complete else 'no'}"
                        for _site, child, onset, reported, category, complete in out.saes
                    ],
                ),
            )
        if out.deviations:
            run_import(
                db,
                admin,
                "deviations",
                "demo-deviations.csv",
                text=out.csv(
                    "family_id,occurred_on,category,severity,description",
                    [
                        f"{family},{on},{category},{severity},{category} deviation"
                        for _site, family, on, category, severity in out.deviations
                    ],
                ),
            )
        if out.service_use:
            run_import(
                db,
                admin,
                "service-use",
                "demo-service-use.csv",
                text=out.csv(
                    "child_id,unit_cost,period_start,period_end,quantity",
                    [
                        f"{child},{unit},{start},{end},{quantity}"
                        for _site, child, unit, start, end, quantity in out.service_use
                    ],
                ),
            )
        db.refresh_statistics()
        return _result(db, admin, as_of, len(plans) + len(others))
    finally:
        db.dispose()


def _refuse_a_used_database(db: Database) -> None:
    """AlreadyExists unless the database is as ``noim init`` left it (its administrator only)."""
    with db.read() as s:
        counts = {
            what: s.scalar(select(func.count()).select_from(model)) or 0
            for what, model in (
                ("families", Family),
                ("users", User),
                ("randomisation set-up", RandomisationState),
                ("unit costs", UnitCost),
            )
        }
    if counts["users"] <= 1 and not any(counts[k] for k in counts if k != "users"):
        return
    held = ", ".join(f"{what}: {n}" for what, n in counts.items())
    what = "families" if counts["families"] else "data of an unfinished demonstration build"
    message = (
        f"{db.engine.url.render_as_string(hide_password=True)} already holds {what} ({held}); a demonstration trial is built "
        "once, in a new database"
    )
    if db.dialect == "postgresql":
        name = make_url(db.url).database
        message += (
            f". If an earlier `noim demo` was interrupted, start again from an empty database: "
            f"drop and re-create it (as its owner: `dropdb {name} && createdb {name}`), then "
            "run the same command"
        )
    raise AlreadyExists(message)


def _users(db: Database, definition: TrialDefinition) -> Actor:
    """The demonstration users (created when missing); returns the administrator."""
    admin = users.resolve_actor(db, DEMO_ADMIN)
    existing = {u.name for u in users.list_users(db, admin)}
    for name, role, sites in demo_users(definition):
        if name not in existing:
            users.add_user(
                db, admin, name, role, sites, display_name=f"Demo {role.value.replace('_', ' ')}"
            )
    with db.read() as s:
        have = set(s.scalars(select(UserCredential.user_id)))
        ids = {str(n): int(i) for n, i in s.execute(select(User.name, User.id))}
    for name in [DEMO_ADMIN, *(n for n, _r, _s in demo_users(definition))]:
        if ids.get(name) not in have:
            auth.set_password(db, admin, name, DEMO_PASSWORD, one_time=False)
    return admin


def _unit_costs(db: Database, as_of: date) -> None:
    """The unit costs the synthetic service use is priced with."""
    manager = users.resolve_actor(db, "datamanager")
    year = min(as_of.year, date.today().year) - 1
    for code, service, unit, cost in (
        ("sw_hour", "Social worker time", "hour", "45.50"),
        ("nim_session", "Infant mental health team session", "session", "120.00"),
    ):
        economics.add_unit_cost(db, manager, code, service, unit, Decimal(cost), year)


def _result(db: Database, admin: Actor, as_of: date, screened: int) -> DemoResult:
    """Counts of what the database holds, for the summary."""
    outcome_of = {t.code: t.permanence_outcome for t in DECISION_TYPES if t.permanence_outcome}
    with db.read() as s:
        n_families = s.scalar(select(func.count()).select_from(Family)) or 0
        n_children = s.scalar(select(func.count()).select_from(Child)) or 0
        arms = {
            str(k): int(n)
            for k, n in s.execute(
                select(Allocation.arm_code, func.count()).group_by(Allocation.arm_code)
            ).all()
        }
        visits = {
            str(k): int(n)
            for k, n in s.execute(
                select(FollowUpVisit.status, func.count()).group_by(FollowUpVisit.status)
            ).all()
        }
        events = s.execute(
            select(LegalEvent.child_id, LegalEvent.event_type_code, LegalEvent.event_date)
            .where(LegalEvent.event_type_code.in_(sorted(outcome_of)))
            .order_by(LegalEvent.child_id, LegalEvent.event_date)
        ).all()
        first: dict[int, str] = {}
        for child_id, code, _on in events:
            first.setdefault(child_id, str(outcome_of[code]))
        permanence: dict[str, int] = {}
        for outcome in first.values():
            permanence[outcome] = permanence.get(outcome, 0) + 1
        receipts = {
            bool(k): int(n)
            for k, n in s.execute(
                select(InterventionReceipt.received, func.count())
                .where(InterventionReceipt.voided_at.is_(None))
                .group_by(InterventionReceipt.received)
            ).all()
        }
        n_randomised = sum(arms.values())
        intervention = {
            "received": receipts.get(True, 0),
            "not received": receipts.get(False, 0),
            "not yet recorded": n_randomised - sum(receipts.values()),
        }
        saes = s.scalar(select(func.count()).select_from(SeriousAdverseEvent)) or 0
        deviations = s.scalar(select(func.count()).select_from(ProtocolDeviation)) or 0
        withdrawals = s.scalar(select(func.count()).select_from(Withdrawal)) or 0
    return DemoResult(
        db.url,
        as_of,
        n_families,
        n_children,
        screened,
        dict(sorted(arms.items())),
        dict(sorted(visits.items())),
        intervention,
        dict(sorted(permanence.items())),
        saes,
        deviations,
        withdrawals,
        tuple(u.name for u in users.list_users(db, admin)),
    )
