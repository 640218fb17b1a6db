"""Creating a noim database: schema, trial definition, reference data, first administrator."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from noim.config import Settings
from noim.db.base import utcnow
from noim.db.models import (
    Arm,
    ArmSiteLabel,
    DecisionType,
    Instrument,
    LocalAuthority,
    RoleRow,
    Site,
    Team,
    TimepointInstrument,
    TimepointRow,
    Trial,
    User,
)
from noim.db.session import Database, make_engine
from noim.domain.exceptions import AlreadyInitialised, NotInitialised
from noim.domain.legal import DECISION_TYPES
from noim.domain.roles import ROLE_SPECS, Actor, Capability, Role
from noim.domain.trialdef import TrialDefinition, parse_definition
from noim.services.users import validate_user_name


@dataclass(frozen=True)
class InitResult:
    database_url: str
    trial_code: str
    short_name: str
    admin_name: str
    schema_revision: str
    sites: tuple[str, ...]


def _prepare_sqlite_folder(url: str) -> None:
    path = Settings(database_url=url, user_name="-").sqlite_path()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def is_initialised(db: Database) -> bool:
    with db.engine.connect() as conn:
        if not inspect(conn).has_table("trial"):
            return False
        return conn.execute(select(Trial.id)).first() is not None


def initialise(url: str, definition: TrialDefinition, admin_name: str) -> InitResult:
    """Create the schema at ``url``, load ``definition`` and create the first administrator.

    Refuses a database that already holds a trial.
    """
    from noim.db import migrate  # Alembic: only for the commands that migrate

    validate_user_name(admin_name)
    _prepare_sqlite_folder(url)
    db = Database(url, engine=make_engine(url))
    try:
        if is_initialised(db):
            raise AlreadyInitialised(
                f"database {db.engine.url.render_as_string(hide_password=True)} already holds a "
                "trial; noim init runs once per database"
            )
        migrate.upgrade(url)
        bootstrap = Actor(name=admin_name, role=Role.ADMINISTRATOR)
        with db.write(bootstrap, reason="noim init") as s:
            sync_reference_data(s)
            _load_definition(s, definition)
            s.add(
                User(
                    name=admin_name,
                    role_code=Role.ADMINISTRATOR.value,
                    active=True,
                    created_at=utcnow(),
                )
            )
        return InitResult(
            database_url=db.url,
            trial_code=definition.trial.code,
            short_name=definition.trial.short_name,
            admin_name=admin_name,
            schema_revision=migrate.head(),
            sites=tuple(site.code for site in definition.sites),
        )
    finally:
        db.dispose()


def sync_reference_data(s: Session) -> int:
    """Copy noim's built-in vocabularies (roles, legal decision types, instruments) into the database.

    Adds what is missing and updates what changed (audited); returns the number
    of rows added or changed.  Run by ``noim init`` and ``noim db upgrade``.
    """
    from noim import instruments  # numpy: not for the many services that read the definition

    changed = 0
    roles = {r.code: r for r in s.scalars(select(RoleRow))}
    for spec in ROLE_SPECS.values():
        values = {
            "label": spec.label,
            "description": spec.description,
            "site_scoped": spec.site_scoped,
            "blinded": spec.blinded,
        }
        changed += _upsert(
            s, roles.get(spec.role.value), RoleRow, {"code": spec.role.value}, values
        )
    types = {d.code: d for d in s.scalars(select(DecisionType))}
    for order, d in enumerate(DECISION_TYPES, start=1):
        values = {
            "jurisdiction": d.jurisdiction,
            "kind": d.kind,
            "label": d.label,
            "statute": d.statute,
            "ssda903_code": d.ssda903,
            "permanence_outcome": d.permanence_outcome,
            "entry_route": d.can_be_entry_route,
            "sort_order": order,
        }
        changed += _upsert(s, types.get(d.code), DecisionType, {"code": d.code}, values)
    have = {(i.code, i.version): i for i in s.scalars(select(Instrument))}
    for code in instruments.available():
        ins = instruments.load(code)
        changed += _upsert(
            s,
            have.get((ins.code, ins.version)),
            Instrument,
            {"code": ins.code, "version": ins.version},
            {"name": ins.name, "definition_sha256": ins.sha256},
        )
    s.flush()
    return changed


def sync_reference_data_as(db: Database, actor: Actor) -> int:
    """``sync_reference_data`` in its own audited transaction (after ``noim db upgrade``)."""
    actor.require(Capability.ADMINISTER, "upgrade the database")
    with db.write(actor, reason="noim db upgrade: reference data") as s:
        return sync_reference_data(s)


def _upsert(
    s: Session, row: object | None, model: type, key: dict[str, object], values: dict[str, object]
) -> int:
    if row is None:
        s.add(model(**key, **values))
        return 1
    dirty = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            dirty = True
    return int(dirty)


def _load_definition(s: Session, d: TrialDefinition) -> None:
    s.add(
        Trial(
            id=1,
            code=d.trial.code,
            short_name=d.trial.short_name,
            title=d.trial.title,
            registration=d.trial.registration,
            target_families=d.trial.target_families,
            randomisation_method=d.randomisation.method,
            definition_toml=d.text,
            definition_sha256=d.sha256,
            initialised_at=utcnow(),
        )
    )
    for order, arm in enumerate(d.arms, start=1):
        s.add(Arm(code=arm.code, name=arm.name, ratio=arm.ratio, sort_order=order))
    s.flush()
    for site_def in d.sites:
        site = Site(
            code=site_def.code,
            name=site_def.name,
            jurisdiction=site_def.jurisdiction,
            id_prefix=site_def.id_prefix,
            target_families=site_def.target_families,
            requires_care_proceedings=site_def.requires_care_proceedings,
        )
        s.add(site)
        s.flush()
        for la in site_def.local_authorities:
            s.add(LocalAuthority(site_id=site.id, code=la.code, name=la.name))
        for team in site_def.teams:
            s.add(
                Team(
                    site_id=site.id,
                    code=team.code,
                    name=team.name,
                    kind=team.kind,
                    arm_code=team.arm,
                )
            )
        for arm in d.arms:
            if site_def.code in arm.labels:
                s.add(
                    ArmSiteLabel(
                        arm_code=arm.code, site_id=site.id, label=arm.labels[site_def.code]
                    )
                )
    for order, tp in enumerate(d.timepoints, start=1):
        s.add(
            TimepointRow(
                code=tp.code,
                label=tp.label,
                anchor=tp.anchor,
                offset=str(tp.offset),
                window_start=str(tp.window_start),
                window_end=str(tp.window_end),
                sort_order=order,
            )
        )
        s.flush()
        for ins in tp.instruments:
            s.add(
                TimepointInstrument(
                    timepoint_code=tp.code,
                    instrument_code=ins.instrument,
                    respondent_type=ins.respondent,
                    min_age_months=ins.min_age_months,
                    max_age_months=ins.max_age_months,
                    required=ins.required,
                )
            )
    s.flush()


def stored_definition(s: Session) -> TrialDefinition:
    """The trial definition this database was initialised with."""
    row = s.execute(select(Trial.definition_toml, Trial.definition_sha256).where(Trial.id == 1))
    found = row.one_or_none()
    if found is None:
        raise NotInitialised("the database has a schema but no trial; run `noim init`")
    return _parsed(*found)


@functools.lru_cache(maxsize=8)
def _parsed(text: str, sha256: str) -> TrialDefinition:
    """``text`` parsed once per process (a page reads the definition on every request; the
    definition is frozen dataclasses, so one parse is shared safely)."""
    return parse_definition(text, f"database (sha256 {sha256[:12]})", stored=True)
