"""Birth parents and carers, and their links to children over time.

A birth parent belongs to one family; a carer belongs to a site and may care
for children of several families.  ``child_carers`` rows say who cared for a
child on which dates (``cared_for_on`` answers that for many checks at once);
``child_birth_parents`` rows record parental responsibility over time.
Identifiable details (names, addresses, phones) are kept apart, in
``noim.services.people_identity``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from noim.db.models import BirthParent, Carer, Child, ChildBirthParent, ChildCarer, Family, Site
from noim.db.session import Database
from noim.domain.codes import CARER_RELATIONSHIPS, CARER_TYPES, PARENT_ROLES
from noim.domain.exceptions import NotFound, Problem, ValidationError
from noim.domain.roles import Actor, Capability
from noim.services.families import child_for, family_for
from noim.services.recording import (
    live,
    not_before,
    not_future,
    one_of,
    scoped_site_ids,
    short_enough,
    site_for,
    today,
)

LinkKind = Literal["carer", "parent"]


@dataclass(frozen=True)
class ParentView:
    id: int
    family: str
    role: str
    year_of_birth: int | None
    previous_child_removed: bool | None
    voided: bool


@dataclass(frozen=True)
class CarerView:
    id: int
    site: str
    carer_type: str
    reference: str | None
    voided: bool


@dataclass(frozen=True)
class ParentLinkView:
    id: int
    child: str
    parent_id: int
    role: str
    parental_responsibility: bool | None
    start_date: date | None
    end_date: date | None
    voided: bool


@dataclass(frozen=True)
class CarerLinkView:
    id: int
    child: str
    carer_id: int
    carer_type: str
    reference: str | None
    relationship: str
    start_date: date
    end_date: date | None
    voided: bool


@dataclass(frozen=True)
class ChildPeopleView:
    child: str
    carers: tuple[CarerLinkView, ...]
    parents: tuple[ParentLinkView, ...]


# --------------------------------------------------------------------------- lookups


def parent_for(
    s: Session, actor: Actor, parent_id: int, action: str
) -> tuple[BirthParent, Family, Site]:
    """Birth parent ``parent_id`` with its family and site, if ``actor`` may ``action`` it."""
    row = s.execute(
        select(BirthParent, Family, Site)
        .join(Family, Family.id == BirthParent.family_id)
        .join(Site, Site.id == Family.site_id)
        .where(BirthParent.id == parent_id)
    ).one_or_none()
    if row is None:
        raise NotFound(f"no birth parent {parent_id}")
    parent, family, site = row
    actor.require_site(site.id, site.code, f"{action} birth parent {parent_id}")
    return parent, family, site


def carer_for(s: Session, actor: Actor, carer_id: int, action: str) -> tuple[Carer, Site]:
    """Carer ``carer_id`` with its site, if ``actor`` may ``action`` it."""
    row = s.execute(
        select(Carer, Site).join(Site, Site.id == Carer.site_id).where(Carer.id == carer_id)
    ).one_or_none()
    if row is None:
        raise NotFound(f"no carer {carer_id}")
    carer, site = row
    actor.require_site(site.id, site.code, f"{action} carer {carer_id}")
    return carer, site


# --------------------------------------------------------------------------- birth parents


def add_parent(
    db: Database,
    actor: Actor,
    family_trial_id: str,
    role: str,
    year_of_birth: int | None = None,
    previous_child_removed: bool | None = None,
) -> ParentView:
    """Add a birth parent to a family (``previous_child_removed`` is recorded for mothers)."""
    actor.require(Capability.WRITE_TRIAL_DATA, "record birth parents")
    with db.write(actor) as s:
        family, _site = family_for(s, actor, family_trial_id, "add a birth parent to")
        record = f"new birth parent of family {family.trial_id}"
        problems = live(record, family.voided_at, "PPL-004", f"family {family.trial_id}")
        problems += one_of(record, "role", role, PARENT_ROLES, "PPL-001")
        this_year = today().year
        if year_of_birth is not None and not this_year - 100 <= year_of_birth <= this_year - 10:
            problems.append(
                Problem(
                    record,
                    "year_of_birth",
                    year_of_birth,
                    "PPL-002",
                    f"a year from {this_year - 100} to {this_year - 10}",
                )
            )
        if previous_child_removed is not None and role != "mother":
            problems.append(
                Problem(
                    record,
                    "previous_child_removed",
                    previous_child_removed,
                    "PPL-003",
                    f"no answer for a {role} (recorded for birth mothers only)",
                )
            )
        if problems:
            raise ValidationError(problems)
        parent = BirthParent(
            family_id=family.id,
            parent_role=role,
            year_of_birth=year_of_birth,
            previous_child_removed=previous_child_removed,
        )
        s.add(parent)
        s.flush()
        return _parent_view(parent, family)


def list_parents(db: Database, actor: Actor, family_trial_id: str) -> list[ParentView]:
    """A family's birth parents (voided ones marked)."""
    actor.require(Capability.READ_TRIAL_DATA, "read birth parents")
    with db.read(actor) as s:
        family, _site = family_for(s, actor, family_trial_id, "read the birth parents of")
        parents = s.scalars(
            select(BirthParent).where(BirthParent.family_id == family.id).order_by(BirthParent.id)
        ).all()
        return [_parent_view(p, family) for p in parents]


def link_parent(
    db: Database,
    actor: Actor,
    parent_id: int,
    child_trial_id: str,
    parental_responsibility: bool | None = None,
    start_date: date | None = None,
    end_date: date | None = None,
) -> ParentLinkView:
    """Record a birth parent's relationship to a child of their family, from ``start_date``."""
    actor.require(Capability.WRITE_TRIAL_DATA, "link birth parents to children")
    with db.write(actor) as s:
        parent, family, _site = parent_for(s, actor, parent_id, "link")
        child, child_family, _child_site = child_for(s, actor, child_trial_id, "link a parent to")
        record = f"link of birth parent {parent.id} to child {child.trial_id}"
        problems = live(record, parent.voided_at, "PPL-015", f"birth parent {parent.id}")
        problems += live(record, child.voided_at, "PPL-004", f"child {child.trial_id}")
        if child_family.id != family.id:
            problems.append(
                Problem(
                    record,
                    "child",
                    child.trial_id,
                    "PPL-005",
                    f"a child of the parent's family {family.trial_id}",
                )
            )
        problems += _link_period_problems(
            s, record, child, ChildBirthParent.birth_parent_id, parent.id, start_date, end_date
        )
        if problems:
            raise ValidationError(problems)
        link = ChildBirthParent(
            child_id=child.id,
            birth_parent_id=parent.id,
            has_parental_responsibility=parental_responsibility,
            start_date=start_date,
            end_date=end_date,
        )
        s.add(link)
        s.flush()
        return _parent_links(s, ChildBirthParent.id == link.id)[0]


# --------------------------------------------------------------------------- carers


def add_carer(
    db: Database, actor: Actor, site: str, carer_type: str, reference: str | None = None
) -> CarerView:
    """Register a carer (foster, kinship, adoptive, residential) at ``site``."""
    actor.require(Capability.WRITE_TRIAL_DATA, "record carers")
    with db.write(actor) as s:
        site_row = site_for(s, actor, site, "record carers")
        record = f"new carer at {site_row.code}"
        problems = one_of(record, "carer_type", carer_type, CARER_TYPES, "PPL-009")
        problems += short_enough(record, "reference", reference, "PPL-010", 32)
        if problems:
            raise ValidationError(problems)
        carer = Carer(site_id=site_row.id, carer_type=carer_type, reference=reference)
        s.add(carer)
        s.flush()
        return CarerView(carer.id, site_row.code, carer.carer_type, carer.reference, False)


def list_carers(db: Database, actor: Actor, site: str | None = None) -> list[CarerView]:
    """Carers at the actor's sites (or at ``site``), voided ones marked."""
    actor.require(Capability.READ_TRIAL_DATA, "read carers")
    with db.read(actor) as s:
        site_ids = scoped_site_ids(s, actor, site, "read carers")
        stmt = select(Carer, Site.code).join(Site, Site.id == Carer.site_id).order_by(Carer.id)
        if site_ids is not None:
            stmt = stmt.where(Carer.site_id.in_(site_ids))
        return [
            CarerView(c.id, code, c.carer_type, c.reference, c.voided_at is not None)
            for c, code in s.execute(stmt)
        ]


def link_carer(
    db: Database,
    actor: Actor,
    carer_id: int,
    child_trial_id: str,
    relationship: str,
    start_date: date,
    end_date: date | None = None,
) -> CarerLinkView:
    """Record that a carer cares for a child from ``start_date`` (until ``end_date``, if known)."""
    actor.require(Capability.WRITE_TRIAL_DATA, "link carers to children")
    with db.write(actor) as s:
        carer, carer_site = carer_for(s, actor, carer_id, "link")
        child, _family, child_site = child_for(s, actor, child_trial_id, "link a carer to")
        record = f"link of carer {carer.id} to child {child.trial_id}"
        problems = live(record, carer.voided_at, "PPL-015", f"carer {carer.id}")
        problems += live(record, child.voided_at, "PPL-004", f"child {child.trial_id}")
        problems += one_of(record, "relationship", relationship, CARER_RELATIONSHIPS, "PPL-011")
        if carer_site.id != child_site.id:
            problems.append(
                Problem(
                    record,
                    "carer",
                    carer.id,
                    "PPL-012",
                    f"a carer at the child's site {child_site.code} (carer is at {carer_site.code})",
                )
            )
        problems += _link_period_problems(
            s, record, child, ChildCarer.carer_id, carer.id, start_date, end_date
        )
        if problems:
            raise ValidationError(problems)
        link = ChildCarer(
            child_id=child.id,
            carer_id=carer.id,
            relationship=relationship,
            start_date=start_date,
            end_date=end_date,
        )
        s.add(link)
        s.flush()
        return _carer_links(s, ChildCarer.id == link.id)[0]


def end_link(
    db: Database, actor: Actor, kind: LinkKind, link_id: int, end_date: date
) -> CarerLinkView | ParentLinkView:
    """End a carer's (``kind="carer"``) or birth parent's link to a child on ``end_date``."""
    actor.require(Capability.WRITE_TRIAL_DATA, "end links to children")
    with db.write(actor) as s:
        link: ChildCarer | ChildBirthParent | None = (
            s.get(ChildCarer, link_id) if kind == "carer" else s.get(ChildBirthParent, link_id)
        )
        if link is None:
            raise NotFound(f"no {kind} link {link_id}")
        child = s.get(Child, link.child_id)
        assert child is not None
        child_for(s, actor, child.trial_id, f"end a {kind} link of")
        record = f"{kind} link {link_id} (child {child.trial_id})"
        problems = live(record, link.voided_at, "PPL-015")
        if link.end_date is not None:
            problems.append(
                Problem(
                    record,
                    "end_date",
                    end_date.isoformat(),
                    "PPL-014",
                    f"a link not yet ended (it ended on {link.end_date}; void it and record it "
                    "again to correct it)",
                )
            )
        problems += not_before(
            record, "end_date", end_date, link.start_date, "the start date", "PPL-013"
        )
        problems += not_future(record, "end_date", end_date, "PPL-007")
        if problems:
            raise ValidationError(problems)
        link.end_date = end_date
        s.flush()
        if isinstance(link, ChildCarer):
            return _carer_links(s, ChildCarer.id == link.id)[0]
        return _parent_links(s, ChildBirthParent.id == link.id)[0]


# --------------------------------------------------------------------------- reads


def child_people(
    db: Database, actor: Actor, child_trial_id: str, include_voided: bool = False
) -> ChildPeopleView:
    """Who cared for a child on which dates, and the child's birth parents."""
    actor.require(Capability.READ_TRIAL_DATA, "read a child's carers and parents")
    with db.read(actor) as s:
        child, _family, _site = child_for(s, actor, child_trial_id, "read the carers of")
        carer_where = [ChildCarer.child_id == child.id]
        parent_where = [ChildBirthParent.child_id == child.id]
        if not include_voided:
            carer_where.append(ChildCarer.voided_at.is_(None))
            parent_where.append(ChildBirthParent.voided_at.is_(None))
        return ChildPeopleView(
            child=child.trial_id,
            carers=tuple(_carer_links(s, *carer_where)),
            parents=tuple(_parent_links(s, *parent_where)),
        )


def cared_for_on(s: Session, checks: Iterable[tuple[int, int, date]]) -> set[tuple[int, int, date]]:
    """Of ``(child_id, carer_id, on)`` triples, those where a live link covers the date.

    One query for all the children involved, so a bulk import can check every
    row's respondent at once.
    """
    wanted = set(checks)
    if not wanted:
        return set()
    links: dict[tuple[int, int], list[tuple[date, date | None]]] = {}
    child_ids = sorted({c for c, _, _ in wanted})
    for start in range(0, len(child_ids), 500):
        rows = s.execute(
            select(
                ChildCarer.child_id, ChildCarer.carer_id, ChildCarer.start_date, ChildCarer.end_date
            ).where(
                ChildCarer.child_id.in_(child_ids[start : start + 500]),
                ChildCarer.voided_at.is_(None),
            )
        )
        for child_id, carer_id, begin, end in rows:
            links.setdefault((child_id, carer_id), []).append((begin, end))
    return {
        (c, k, on)
        for c, k, on in wanted
        if any(b <= on and (e is None or on <= e) for b, e in links.get((c, k), ()))
    }


# --------------------------------------------------------------------------- helpers


def _period_problems(
    record: str, child: Child, start_date: date | None, end_date: date | None
) -> list[Problem]:
    problems = not_before(
        record,
        "start_date",
        start_date,
        child.date_of_birth,
        "the child's date of birth",
        "PPL-006",
    )
    problems += not_future(record, "start_date", start_date, "PPL-007")
    problems += not_future(record, "end_date", end_date, "PPL-007")
    problems += not_before(record, "end_date", end_date, start_date, "the start date", "PPL-013")
    return problems


def _link_period_problems(
    s: Session,
    record: str,
    child: Child,
    person: InstrumentedAttribute[int],
    person_id: int,
    start_date: date | None,
    end_date: date | None,
) -> list[Problem]:
    """The period rules of a new link of a person (``person`` column of the link table) to a child.

    Its dates (PPL-006/007/013), and no overlap with a live link of the same pair (PPL-008).
    """
    link: Any = person.class_
    existing = s.execute(
        select(link.id, link.start_date, link.end_date)
        .where(link.child_id == child.id, person == person_id, link.voided_at.is_(None))
        .order_by(link.id)
    ).all()
    return _period_problems(record, child, start_date, end_date) + _overlaps(
        record, start_date, end_date, [(i, a, b) for i, a, b in existing]
    )


def _overlaps(
    record: str,
    start: date | None,
    end: date | None,
    existing: list[tuple[int, date | None, date | None]],
) -> list[Problem]:
    """A new period must not overlap a live link of the same person and child."""
    lo, hi = start or date.min, end or date.max
    clashes = [(i, s, e) for i, s, e in existing if (s or date.min) <= hi and lo <= (e or date.max)]
    return [
        Problem(
            record,
            "start_date",
            start.isoformat() if start else None,
            "PPL-008",
            f"a period not overlapping link {i} ({s or 'unknown'} to {e or 'open'}); "
            "end or void that link first",
        )
        for i, s, e in clashes
    ]


def _parent_view(p: BirthParent, family: Family) -> ParentView:
    return ParentView(
        id=p.id,
        family=family.trial_id,
        role=p.parent_role,
        year_of_birth=p.year_of_birth,
        previous_child_removed=p.previous_child_removed,
        voided=p.voided_at is not None,
    )


def _carer_links(s: Session, *where: ColumnElement[bool]) -> list[CarerLinkView]:
    rows = s.execute(
        select(ChildCarer, Child.trial_id, Carer)
        .join(Child, Child.id == ChildCarer.child_id)
        .join(Carer, Carer.id == ChildCarer.carer_id)
        .where(*where)
        .order_by(ChildCarer.start_date, ChildCarer.id)
    ).all()
    return [
        CarerLinkView(
            id=link.id,
            child=child_id,
            carer_id=carer.id,
            carer_type=carer.carer_type,
            reference=carer.reference,
            relationship=link.relationship,
            start_date=link.start_date,
            end_date=link.end_date,
            voided=link.voided_at is not None,
        )
        for link, child_id, carer in rows
    ]


def _parent_links(s: Session, *where: ColumnElement[bool]) -> list[ParentLinkView]:
    rows = s.execute(
        select(ChildBirthParent, Child.trial_id, BirthParent.parent_role)
        .join(Child, Child.id == ChildBirthParent.child_id)
        .join(BirthParent, BirthParent.id == ChildBirthParent.birth_parent_id)
        .where(*where)
        .order_by(ChildBirthParent.birth_parent_id, ChildBirthParent.id)
    ).all()
    return [
        ParentLinkView(
            id=link.id,
            child=child_id,
            parent_id=link.birth_parent_id,
            role=role,
            parental_responsibility=link.has_parental_responsibility,
            start_date=link.start_date,
            end_date=link.end_date,
            voided=link.voided_at is not None,
        )
        for link, child_id, role in rows
    ]
