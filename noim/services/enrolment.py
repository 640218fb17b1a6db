"""Enrolling a family in one unit of work: register it, add its children, link its screening.

``register_with_children`` is what ``noim family register`` + ``noim child add`` (once per
child) + ``noim screening enrol`` do, as ONE audited write: either the family, all its
children and the screening link are stored, or nothing is.  The rules are the ones those
commands apply, not copies: ``FamilyChecker.family_problems`` (FAM-001, FAM-002),
``FamilyChecker.child_problems`` (CHD-001 to CHD-005) for every child, and
``screening.enrol_problems`` (SCR-008 to SCR-012) for the entry.  Every problem of every
child is reported at once; a child's problems name it ``child N of the new family``
(``child_record``) so a form can put them beside that child's fields.

``enrolment_status`` reads where a family stands on the way to randomisation (the
coordinators' eligibility, consent and randomise pages): its children's eligibility and
consents, who may consent, and what the randomisation gate still misses
(``randomisation_core.gate_report``) or, for roles that see the arm, its allocation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select

from noim.db.base import utcnow
from noim.db.blinding import arm_word_masker
from noim.db.models import (
    Allocation,
    BirthParent,
    Carer,
    Child,
    ChildCarer,
    Consent,
    Family,
    ScreeningEntry,
    Site,
)
from noim.db.session import Database
from noim.domain import trial_ids
from noim.domain.exceptions import NotFound, Problem, ValidationError
from noim.domain.roles import Actor, Capability
from noim.domain.trialdef import FactorDef
from noim.services.consent import ConsentView
from noim.services.families import FamilyView, family_for, get_family
from noim.services.family_rules import FamilyChecker, lock_sites, next_site_seqs
from noim.services.randomisation_core import (
    AllocationView,
    asked_when_randomising,
    gate_report,
    views,
)
from noim.services.screening import MAX_CHILDREN, EntryState, enrol_problems
from noim.services.setup import stored_definition


@dataclass(frozen=True)
class NewChild:
    """A child to register with its family (as ``noim child add`` takes one)."""

    date_of_birth: date
    sex: str
    entered_care_on: date
    legal_route: str | None = None


def child_record(number: int) -> str:
    """How problems name the ``number``-th (from 1) child given to ``register_with_children``."""
    return f"child {number} of the new family"


def register_with_children(
    db: Database,
    actor: Actor,
    site: str,
    children: Sequence[NewChild],
    *,
    local_authority: str | None = None,
    in_care_proceedings: bool | None = None,
    screening_entry: int | None = None,
    today: date | None = None,
) -> FamilyView:
    """Register a family at ``site`` with ``children`` (1 to 20), in one unit of work.

    ``screening_entry`` (an entry id of the screening log) links the entry to the new
    family, as ``noim screening enrol`` does.  Refuses with every problem found (family,
    each child, the entry) and then writes nothing.
    """
    actor.require(Capability.WRITE_TRIAL_DATA, "register families")
    with db.write(actor) as s:
        checker = FamilyChecker(s, today)
        site_row = checker.require_site(site)
        actor.require_site(site_row.id, site_row.code, "register families")
        problems, la_id = checker.family_problems(
            "family", site_row, local_authority, in_care_proceedings
        )
        if not 1 <= len(children) <= MAX_CHILDREN:
            problems.append(
                Problem(
                    "family",
                    "children",
                    len(children),
                    "ENR-001",
                    f"1 to {MAX_CHILDREN} children registered with the family",
                )
            )
        for number, c in enumerate(children, 1):
            problems += checker.child_problems(
                child_record(number),
                c.date_of_birth,
                c.sex,
                c.entered_care_on,
                c.legal_route,
                site_row.jurisdiction,
            )
        family = Family(
            trial_id="(new family)",
            site_id=site_row.id,
            local_authority_id=la_id,
            in_care_proceedings=in_care_proceedings,
            registered_at=utcnow(),
            registered_by_id=actor.user_id,
        )
        entry = None
        if screening_entry is not None:
            entry = s.get(ScreeningEntry, screening_entry)
            if entry is None:
                raise NotFound(f"no screening entry {screening_entry}")
            sites = {x.id: x.code for x in checker.sites.values()}
            entry_site = sites.get(entry.site_id, str(entry.site_id))
            actor.require_site(entry.site_id, entry_site, f"enrol screening entry {entry.id}")
            linked = (
                s.scalar(select(Family.trial_id).where(Family.id == entry.family_id))
                if entry.family_id is not None
                else None
            )
            state = EntryState(
                entry.voided_at,
                entry.eligible,
                entry.declined,
                entry.screened_on,
                entry.site_id,
                entry_site,
                linked,
            )
            # a new family is linked to no other entry
            problems += enrol_problems(
                f"screening entry {entry.id}", state, family, site_row.code, None
            )
        if problems:
            raise ValidationError(problems)
        lock_sites(s, [site_row.id])
        family.site_seq = next_site_seqs(s, [site_row.id])[site_row.id]
        family.trial_id = trial_ids.family_id(site_row.id_prefix, family.site_seq)
        s.add(family)
        s.flush()
        s.add_all(
            Child(
                trial_id=trial_ids.child_id(family.trial_id, number),
                family_id=family.id,
                child_number=number,
                date_of_birth=c.date_of_birth,
                sex=c.sex,
                entered_care_on=c.entered_care_on,
                legal_route_code=c.legal_route,
                eligibility_status="pending",
                joined_after_randomisation=False,
            )
            for number, c in enumerate(children, 1)
        )
        if entry is not None:
            entry.family_id = family.id
        s.flush()
        trial_id = family.trial_id
    return get_family(db, actor, trial_id)


# --------------------------------------------------------------------------- where a family stands


@dataclass(frozen=True)
class ChildStatus:
    trial_id: str
    child_number: int
    date_of_birth: date
    sex: str
    entered_care_on: date
    #: pending, eligible or ineligible
    eligibility: str
    eligibility_decided_on: date | None
    ineligibility_reason: str | None
    consents: tuple[ConsentView, ...]


@dataclass(frozen=True)
class Consenter:
    """A person who may consent for the family's children: a birth parent of the family or
    a carer of one of its children."""

    id: int
    #: birth_parent or carer (as ``record_consent`` takes ``consenter_type``)
    kind: str
    label: str


@dataclass(frozen=True)
class EnrolmentStatus:
    """Where a family stands on the way to randomisation (the coordinators' pages)."""

    family: str
    site: str
    in_care_proceedings: bool | None
    voided: bool
    #: live children, in child-number order
    children: tuple[ChildStatus, ...]
    consenters: tuple[Consenter, ...]
    randomised: bool
    #: the allocation, for roles that see the arm (None otherwise, and before randomisation)
    allocation: AllocationView | None
    #: what the randomisation gate still misses (declared factors are asked when
    #: randomising and are not reported); empty when randomised
    missing: tuple[Problem, ...]
    #: the factors the coordinator declares when randomising
    declared: tuple[FactorDef, ...]


def enrolment_status(db: Database, actor: Actor, family_trial_id: str) -> EnrolmentStatus:
    """The family's children with their eligibility and consents, who may consent, and
    what randomisation still needs (the gate ``randomise`` applies) or its allocation."""
    actor.require(Capability.READ_TRIAL_DATA, "read a family's enrolment")
    with db.read(actor) as s:
        family, site = family_for(s, actor, family_trial_id, "read the enrolment of")
        definition = stored_definition(s)
        declared = tuple(f for f in definition.factors if f.source == "declared")
        kids = list(
            s.scalars(
                select(Child)
                .where(Child.family_id == family.id, Child.voided_at.is_(None))
                .order_by(Child.child_number)
            )
        )
        by_child: dict[int, list[ConsentView]] = {c.id: [] for c in kids}
        names = {c.id: c.trial_id for c in kids}
        for row in s.scalars(
            select(Consent)
            .where(Consent.child_id.in_(list(names)), Consent.voided_at.is_(None))
            .order_by(Consent.consented_on, Consent.id)
        ):
            by_child[row.child_id].append(
                ConsentView(
                    names[row.child_id],
                    row.consenter_type,
                    row.form_version,
                    row.consented_on,
                    row.scope,
                )
            )
        consenters = [
            Consenter(p.id, "birth_parent", f"birth parent {p.id} ({p.parent_role})")
            for p in s.scalars(
                select(BirthParent)
                .where(BirthParent.family_id == family.id, BirthParent.voided_at.is_(None))
                .order_by(BirthParent.id)
            )
        ]
        consenters += [
            Consenter(
                c.id,
                "carer",
                f"carer {c.id} ({c.carer_type}" + (f", {c.reference})" if c.reference else ")"),
            )
            for c in s.scalars(
                select(Carer)
                .where(
                    Carer.voided_at.is_(None),
                    Carer.id.in_(
                        select(ChildCarer.carer_id).where(
                            ChildCarer.child_id.in_(list(names)), ChildCarer.voided_at.is_(None)
                        )
                    ),
                )
                .order_by(Carer.id)
            )
        ]
        allocation = s.scalar(select(Allocation).where(Allocation.family_id == family.id))
        missing: list[Problem] = []
        if allocation is None:
            asked = {family.id: asked_when_randomising(definition)}
            missing = gate_report(s, [(family, site)], definition, asked)[family.id]
        view = None
        if allocation is not None and actor.can(Capability.SEE_ARM):
            (view,) = views(s, [allocation])
        mask = arm_word_masker(s, actor)
        return EnrolmentStatus(
            family=family.trial_id,
            site=site.code,
            in_care_proceedings=family.in_care_proceedings,
            voided=family.voided_at is not None,
            children=tuple(
                ChildStatus(
                    trial_id=c.trial_id,
                    child_number=c.child_number,
                    date_of_birth=c.date_of_birth,
                    sex=c.sex,
                    entered_care_on=c.entered_care_on,
                    eligibility=c.eligibility_status,
                    eligibility_decided_on=c.eligibility_decided_on,
                    ineligibility_reason=mask(c.ineligibility_reason),
                    consents=tuple(by_child[c.id]),
                )
                for c in kids
            ),
            consenters=tuple(consenters),
            randomised=allocation is not None,
            allocation=view,
            missing=tuple(missing),
            declared=declared,
        )


# --------------------------------------------------------------------------- choices for forms


@dataclass(frozen=True)
class SiteChoices:
    """What the screening and registration forms offer at one site."""

    code: str
    name: str
    requires_care_proceedings: bool
    #: (code, name) of the site's local authorities
    local_authorities: tuple[tuple[str, str], ...]
    #: (code, label) of the legal routes into care of the site's jurisdiction
    legal_routes: tuple[tuple[str, str], ...]


def site_choices(db: Database, actor: Actor) -> list[SiteChoices]:
    """The sites the actor works at (every site for roles that see all), with the choices
    ``register_with_children`` and ``screening.add_entry`` accept there (three queries)."""
    actor.require(Capability.READ_TRIAL_DATA, "read the sites")
    with db.read(actor) as s:
        stmt = select(Site).order_by(Site.code)
        if not actor.all_sites:
            stmt = stmt.where(Site.id.in_(sorted(actor.site_ids)))
        sites = list(s.scalars(stmt))
        checker = FamilyChecker(s)
        las: dict[int, list[tuple[str, str]]] = {x.id: [] for x in sites}
        for la in checker.local_authorities():
            if la.site_id in las:
                las[la.site_id].append((la.code, la.name))
        return [
            SiteChoices(
                code=x.code,
                name=x.name,
                requires_care_proceedings=x.requires_care_proceedings,
                local_authorities=tuple(las[x.id]),
                legal_routes=tuple((d.code, d.label) for d in checker.entry_routes(x.jurisdiction)),
            )
            for x in sites
        ]
