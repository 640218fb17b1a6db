"""Families and children: registration, reading, correction and void (site-scoped)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from noim.db.base import utcnow
from noim.db.models import (
    Allocation,
    Child,
    ChildIdentity,
    Family,
    LocalAuthority,
    Site,
)
from noim.db.session import Database
from noim.domain import trial_ids
from noim.domain.exceptions import NotFound, Problem, ValidationError
from noim.domain.participants import check_child
from noim.domain.roles import Actor, Capability
from noim.services import identities
from noim.services.checks import only_fields, require_reason
from noim.services.family_rules import (
    FamilyChecker,
    lock_sites,
    next_site_seqs,
    randomised_on,
    schedule_late_joiners,
)


@dataclass(frozen=True)
class ChildView:
    trial_id: str
    child_number: int
    date_of_birth: date
    sex: str
    entered_care_on: date
    legal_route: str | None
    eligibility: str
    joined_after_randomisation: bool
    voided: bool


@dataclass(frozen=True)
class FamilyView:
    trial_id: str
    site: str
    local_authority: str | None
    in_care_proceedings: bool | None
    registered_at: datetime
    randomised: bool
    #: the allocated arm for unblinded roles, the family's masked code for blinded ones
    arm: str | None
    arm_masked: bool
    voided: bool
    children: tuple[ChildView, ...]


# --------------------------------------------------------------------------- lookups


def _site(s: Session, code: str) -> Site:
    site = s.scalar(select(Site).where(Site.code == code))
    if site is None:
        known = ", ".join(s.scalars(select(Site.code).order_by(Site.code)))
        raise NotFound(f"no site {code!r}; expected one of {known}")
    return site


def _parse_id(trial_id: str, kind: str) -> trial_ids.TrialId:
    try:
        parsed = trial_ids.parse(trial_id)
    except ValueError as exc:
        raise ValidationError(
            Problem(kind, "trial_id", trial_id, "ID-001", str(exc).split(": ", 1)[-1])
        ) from None
    if kind == "family" and parsed.child_number is not None:
        raise ValidationError(
            Problem(
                kind, "trial_id", trial_id, "ID-002", "a family ID such as G-0001-X, not a child ID"
            )
        )
    if kind == "child" and parsed.child_number is None:
        raise ValidationError(
            Problem(
                kind,
                "trial_id",
                trial_id,
                "ID-002",
                "a child ID such as G-0001-01-7, not a family ID",
            )
        )
    return parsed


def family_for(s: Session, actor: Actor, trial_id: str, action: str) -> tuple[Family, Site]:
    """The family with ``trial_id`` if ``actor`` may ``action`` it (site scope)."""
    _parse_id(trial_id, "family")
    row = s.execute(
        select(Family, Site)
        .join(Site, Site.id == Family.site_id)
        .where(Family.trial_id == trial_id.strip().upper())
    ).one_or_none()
    if row is None:
        raise NotFound(f"no family {trial_id!r}")
    family, site = row
    actor.require_site(site.id, site.code, f"{action} family {family.trial_id}")
    return family, site


def child_for(s: Session, actor: Actor, trial_id: str, action: str) -> tuple[Child, Family, Site]:
    """The child with ``trial_id`` if ``actor`` may ``action`` it (site scope)."""
    _parse_id(trial_id, "child")
    row = s.execute(
        select(Child, Family, Site)
        .join(Family, Family.id == Child.family_id)
        .join(Site, Site.id == Family.site_id)
        .where(Child.trial_id == trial_id.strip().upper())
    ).one_or_none()
    if row is None:
        raise NotFound(f"no child {trial_id!r}")
    child, family, site = row
    actor.require_site(site.id, site.code, f"{action} child {child.trial_id}")
    return child, family, site


def _check_legal_route(
    s: Session, record: str, code: str | None, jurisdiction: str
) -> list[Problem]:
    return FamilyChecker(s).legal_route_problems(record, code, jurisdiction)


# --------------------------------------------------------------------------- writes


def register_family(
    db: Database,
    actor: Actor,
    site: str,
    local_authority: str | None = None,
    in_care_proceedings: bool | None = None,
) -> FamilyView:
    """Register a consented family at ``site`` and give it the next trial ID."""
    actor.require(Capability.WRITE_TRIAL_DATA, "register families")
    with db.write(actor) as s:
        checker = FamilyChecker(s)
        site_row = checker.require_site(site)
        actor.require_site(site_row.id, site_row.code, "register families")
        problems, la_id = checker.family_problems(
            "family", site_row, local_authority, in_care_proceedings
        )
        if problems:
            raise ValidationError(problems)
        lock_sites(s, [site_row.id])
        seq = next_site_seqs(s, [site_row.id])[site_row.id]
        family = Family(
            trial_id=trial_ids.family_id(site_row.id_prefix, seq),
            site_id=site_row.id,
            site_seq=seq,
            local_authority_id=la_id,
            in_care_proceedings=in_care_proceedings,
            registered_at=utcnow(),
            registered_by_id=actor.user_id,
        )
        s.add(family)
        s.flush()
        return _family_view(s, actor, family, site_row)


def add_child(
    db: Database,
    actor: Actor,
    family_trial_id: str,
    date_of_birth: date,
    sex: str,
    entered_care_on: date,
    legal_route: str | None = None,
    today: date | None = None,
) -> ChildView:
    """Add a child to a family; the child's trial ID extends the family's."""
    actor.require(Capability.WRITE_TRIAL_DATA, "add children")
    with db.write(actor) as s:
        family, site = family_for(s, actor, family_trial_id, "add a child to")
        if family.voided_at is not None:
            raise ValidationError(
                Problem(
                    f"family {family.trial_id}",
                    "voided_at",
                    family.voided_at.isoformat(),
                    "FAM-003",
                    "a family that is not voided",
                )
            )
        record = f"new child of family {family.trial_id}"
        problems = FamilyChecker(s, today).child_problems(
            record, date_of_birth, sex, entered_care_on, legal_route, site.jurisdiction
        )
        if problems:
            raise ValidationError(problems)
        number = (
            s.scalar(select(func.max(Child.child_number)).where(Child.family_id == family.id)) or 0
        ) + 1
        randomised = randomised_on(s, [family.id])
        child = Child(
            trial_id=trial_ids.child_id(family.trial_id, number),
            family_id=family.id,
            child_number=number,
            date_of_birth=date_of_birth,
            sex=sex,
            entered_care_on=entered_care_on,
            legal_route_code=legal_route,
            eligibility_status="pending",
            joined_after_randomisation=bool(randomised),
        )
        s.add(child)
        s.flush()
        # a sibling joining later: schedule its visits from the family's randomisation date
        if family.id in randomised:
            schedule_late_joiners(s, {child.id: randomised[family.id]})
        return _child_view(child)


CORRECTABLE_CHILD_FIELDS = ("date_of_birth", "sex", "entered_care_on", "legal_route_code")


def correct_child(
    db: Database, actor: Actor, child_trial_id: str, changes: Mapping[str, Any], reason: str
) -> ChildView:
    """Correct a child's core details (audited, with a reason).

    A corrected entry-to-care date reschedules the child's unfinished visits
    anchored on it, in the same unit of work and with the same reason.
    """
    actor.require(Capability.WRITE_TRIAL_DATA, "correct children")
    reason = require_reason(reason, f"correcting child {child_trial_id}")
    only_fields(f"child {child_trial_id}", changes, CORRECTABLE_CHILD_FIELDS, "CHD-006")
    with db.write(actor, reason=reason) as s:
        child, _family, site = child_for(s, actor, child_trial_id, "correct")
        merged = {f: changes.get(f, getattr(child, f)) for f in CORRECTABLE_CHILD_FIELDS}
        record = f"child {child.trial_id}"
        problems = check_child(
            record,
            merged["date_of_birth"],
            merged["sex"],
            merged["entered_care_on"],
            utcnow().date(),
        )
        if "legal_route_code" in changes:
            problems += _check_legal_route(s, record, merged["legal_route_code"], site.jurisdiction)
        if problems:
            raise ValidationError(problems)
        moved = changes.get("entered_care_on", child.entered_care_on) != child.entered_care_on
        for name, value in changes.items():
            setattr(child, name, value)
        s.flush()
        if moved:  # unfinished visits anchored on entry to care move with it
            from noim.services.setup import stored_definition
            from noim.services.visits import reschedule_entry_to_care

            reschedule_entry_to_care(
                s, stored_definition(s), {child.id: child.entered_care_on}, reason
            )
        return _child_view(child)


def void_family(db: Database, actor: Actor, trial_id: str, reason: str) -> FamilyView:
    """Void a family registered in error (its rows stay, marked void, with the reason)."""
    actor.require(Capability.WRITE_TRIAL_DATA, "void families")
    reason = require_reason(reason, f"voiding family {trial_id}")
    with db.write(actor, reason=reason) as s:
        family, site = family_for(s, actor, trial_id, "void")
        if s.scalar(select(Allocation.id).where(Allocation.family_id == family.id)) is not None:
            raise ValidationError(
                Problem(
                    f"family {family.trial_id}",
                    "allocation",
                    "randomised",
                    "FAM-004",
                    "a family not yet randomised (a randomised family stays in the trial: record a post-randomisation exclusion or withdrawal instead)",
                )
            )
        if family.voided_at is None:
            now = utcnow()
            family.voided_at, family.void_reason = now, reason
            for child in s.scalars(
                select(Child).where(Child.family_id == family.id, Child.voided_at.is_(None))
            ):
                child.voided_at, child.void_reason = now, reason
        s.flush()
        return _family_view(s, actor, family, site)


# --------------------------------------------------------------------------- reads


def _child_view(c: Child) -> ChildView:
    return ChildView(
        trial_id=c.trial_id,
        child_number=c.child_number,
        date_of_birth=c.date_of_birth,
        sex=c.sex,
        entered_care_on=c.entered_care_on,
        legal_route=c.legal_route_code,
        eligibility=c.eligibility_status,
        joined_after_randomisation=c.joined_after_randomisation,
        voided=c.voided_at is not None,
    )


def _family_view(s: Session, actor: Actor, family: Family, site: Site) -> FamilyView:
    children = s.scalars(
        select(Child).where(Child.family_id == family.id).order_by(Child.child_number)
    ).all()
    la = s.get(LocalAuthority, family.local_authority_id) if family.local_authority_id else None
    allocation = s.scalar(select(Allocation).where(Allocation.family_id == family.id))
    arm = None
    if allocation is not None:
        arm = allocation.arm_code if actor.can(Capability.SEE_ARM) else allocation.masked_code
    return FamilyView(
        trial_id=family.trial_id,
        site=site.code,
        local_authority=la.code if la else None,
        in_care_proceedings=family.in_care_proceedings,
        registered_at=family.registered_at,
        randomised=allocation is not None,
        arm=arm,
        arm_masked=arm is not None and not actor.can(Capability.SEE_ARM),
        voided=family.voided_at is not None,
        children=tuple(_child_view(c) for c in children),
    )


def get_family(db: Database, actor: Actor, trial_id: str) -> FamilyView:
    actor.require(Capability.READ_TRIAL_DATA, "read families")
    with db.read(actor) as s:
        family, site = family_for(s, actor, trial_id, "read")
        return _family_view(s, actor, family, site)


@dataclass(frozen=True)
class FamilyRow:
    trial_id: str
    site: str
    children: int
    registered_at: datetime
    randomised: bool
    voided: bool


def _families_statement(
    s: Session, actor: Actor, site: str | None
) -> Select[str, str, int, datetime, bool, bool]:
    n_children = (
        select(Child.family_id, func.count().label("n"))
        .where(Child.voided_at.is_(None))
        .group_by(Child.family_id)
        .subquery()
    )
    stmt = (
        select(
            Family.trial_id,
            Site.code,
            func.coalesce(n_children.c.n, 0),
            Family.registered_at,
            Allocation.id.is_not(None),
            Family.voided_at.is_not(None),
        )
        .join(Site, Site.id == Family.site_id)
        .outerjoin(n_children, n_children.c.family_id == Family.id)
        .outerjoin(Allocation, Allocation.family_id == Family.id)
    )
    if site is not None:
        site_row = _site(s, site)
        actor.require_site(site_row.id, site_row.code, "list families")
        stmt = stmt.where(Family.site_id == site_row.id)
    elif not actor.all_sites:
        stmt = stmt.where(Family.site_id.in_(actor.site_ids))
    return stmt


def list_families(db: Database, actor: Actor, site: str | None = None) -> list[FamilyRow]:
    """Families the actor may see (their sites for site-scoped roles), oldest first."""
    actor.require(Capability.READ_TRIAL_DATA, "list families")
    with db.read(actor) as s:
        stmt = _families_statement(s, actor, site).order_by(Family.id)
        return [FamilyRow(*row) for row in s.execute(stmt)]


def page_families(
    db: Database,
    actor: Actor,
    *,
    site: str | None = None,
    search: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[int, list[FamilyRow]]:
    """One page of the families the actor may see, newest first, and how many there are.

    ``search`` matches the start of a family's trial ID, or of one of its children's (case
    ignored). Two statements whatever the size of the trial."""
    actor.require(Capability.READ_TRIAL_DATA, "list families")
    with db.read(actor) as s:
        stmt = _families_statement(s, actor, site)
        text = (search or "").strip().upper()
        if text:
            of_child = select(Child.family_id).where(
                func.upper(Child.trial_id).startswith(text, autoescape=True)
            )
            stmt = stmt.where(
                func.upper(Family.trial_id).startswith(text, autoescape=True)
                | Family.id.in_(of_child)
            )
        total = s.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        rows = s.execute(stmt.order_by(Family.id.desc()).limit(limit).offset(offset))
        return int(total), [FamilyRow(*row) for row in rows]


# --------------------------------------------------------------------------- identifiable details


IDENTITY_FIELDS = ("given_name", "family_name", "social_work_ref", "health_number")


def set_child_identity(
    db: Database,
    actor: Actor,
    child_trial_id: str,
    reason: str | None = None,
    **fields: str | None,
) -> dict[str, str | None]:
    """Record or change a child's identifiable details (kept apart from research data);
    changing details already recorded needs a ``reason`` (``noim.services.identities``)."""
    actor.require(Capability.WRITE_IDENTIFIABLE, "record identifiable details")
    only_fields(f"child {child_trial_id}", fields, IDENTITY_FIELDS, "IDN-001")
    with db.write(actor, reason=reason.strip() if reason else None) as s:
        child, _family, _site_row = child_for(
            s, actor, child_trial_id, "record identifiable details of"
        )
        identity = s.scalar(select(ChildIdentity).where(ChildIdentity.child_id == child.id))
        return identities.store(
            s,
            f"child {child.trial_id}",
            identity or ChildIdentity(child_id=child.id),
            fields,
            IDENTITY_FIELDS,
            reason,
        )


def get_child_identity(db: Database, actor: Actor, child_trial_id: str) -> dict[str, str | None]:
    """A child's identifiable details: only their site's coordinators and administrators."""
    actor.require(Capability.READ_IDENTIFIABLE, "read identifiable details")
    with db.read(actor) as s:
        child, _family, _site_row = child_for(
            s, actor, child_trial_id, "read identifiable details of"
        )
        identity = s.scalar(select(ChildIdentity).where(ChildIdentity.child_id == child.id))
        return {f: (getattr(identity, f) if identity else None) for f in IDENTITY_FIELDS}
