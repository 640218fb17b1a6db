"""Enrolling a family in one unit of work: register it, add its children, link its screening.

``register_with_children`` is what ``noim family register`` + ``noim child add`` (once per
child) + ``noim screening enrol`` do, as ONE audited write: either the family, all its
children and the screening link are stored, or nothing is.  The rules are the ones those
commands apply, not copies: ``FamilyChecker.family_problems`` (FAM-001, FAM-002),
``FamilyChecker.child_problems`` (CHD-001 to CHD-005) for every child, and
``screening.enrol_problems`` (SCR-008 to SCR-012) for the entry.  Every problem of every
child is reported at once; a child's problems name it ``child N of the new family``
(``child_record``) so a form can put them beside that child's fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select

from noim.db.base import utcnow
from noim.db.models import Child, Family, ScreeningEntry
from noim.db.session import Database
from noim.domain import trial_ids
from noim.domain.exceptions import NotFound, Problem, ValidationError
from noim.domain.roles import Actor, Capability
from noim.services.families import FamilyView, get_family
from noim.services.family_rules import FamilyChecker, lock_sites, next_site_seqs
from noim.services.screening import MAX_CHILDREN, EntryState, enrol_problems


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
