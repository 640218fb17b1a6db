"""The screening log: every family screened, eligible or not, and which were enrolled.

``screening_counts`` gives the totals ``noim screening list`` prints; the reports' CONSORT
boxes count the frozen ``screening`` dataset (``noim.reports.operational``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from noim.db.models import Family, LocalAuthority, ScreeningEntry, Site
from noim.db.session import Database
from noim.domain.exceptions import NotFound, Problem, ValidationError
from noim.domain.roles import Actor, Capability
from noim.services.families import family_for
from noim.services.recording import (
    live,
    not_future,
    scoped_site_ids,
    short_enough,
    site_for,
    text_given,
)


@dataclass(frozen=True)
class ScreeningEntryView:
    id: int
    site: str
    local_authority: str | None
    reference: str | None
    screened_on: date
    n_children: int
    eligible: bool
    ineligible_reason: str | None
    declined: bool
    declined_reason: str | None
    #: trial ID of the family registered from this entry
    family: str | None
    voided: bool


@dataclass(frozen=True)
class ScreeningCounts:
    """Counts of live (not voided) entries: the top of the CONSORT diagram."""

    screened: int
    children_screened: int
    eligible: int
    ineligible: int
    declined: int
    enrolled: int


@dataclass(frozen=True)
class ScreeningReport:
    counts: ScreeningCounts
    #: ineligibility reasons with their counts, commonest first
    ineligible_reasons: dict[str, int]
    entries: tuple[ScreeningEntryView, ...]
    #: entries matching the filter (``entries`` holds one page of them when limited)
    matching: int = 0


#: the screening log's filters (``list_entries(status=...)``): what each keeps
ENTRY_FILTERS: dict[str, str] = {
    "to_enrol": "eligible, not declined and not yet registered",
    "enrolled": "registered as a family",
    "ineligible": "ineligible",
    "declined": "declined",
    "voided": "voided",
}


def _entry_filter(status: str) -> list[ColumnElement[bool]]:
    live = ScreeningEntry.voided_at.is_(None)
    filters: dict[str, list[ColumnElement[bool]]] = {
        "to_enrol": [
            live,
            ScreeningEntry.eligible.is_(True),
            ~ScreeningEntry.declined,
            ScreeningEntry.family_id.is_(None),
        ],
        "enrolled": [live, ScreeningEntry.family_id.is_not(None)],
        "ineligible": [live, ~ScreeningEntry.eligible],
        "declined": [live, ScreeningEntry.declined.is_(True)],
        "voided": [ScreeningEntry.voided_at.is_not(None)],
    }
    return filters[status]


MAX_CHILDREN = 20


def entry_problems(
    record: str,
    screened_on: date,
    n_children: int,
    eligible: bool,
    ineligible_reason: str | None,
    declined: bool,
    declined_reason: str | None,
    reference: str | None,
) -> list[Problem]:
    problems = not_future(record, "screened_on", screened_on, "SCR-001")
    if not 1 <= n_children <= MAX_CHILDREN:
        problems.append(
            Problem(
                record,
                "n_children",
                n_children,
                "SCR-002",
                f"a number of children from 1 to {MAX_CHILDREN}",
            )
        )
    if eligible and ineligible_reason is not None:
        problems.append(
            Problem(
                record,
                "ineligible_reason",
                ineligible_reason,
                "SCR-003",
                "no ineligibility reason for an eligible family",
            )
        )
    if not eligible:
        problems += text_given(record, "ineligible_reason", ineligible_reason, "SCR-003")
        if declined:
            problems.append(
                Problem(
                    record,
                    "declined",
                    True,
                    "SCR-004",
                    "declining only for an eligible family (an ineligible family is not approached)",
                )
            )
    if declined:
        problems += text_given(record, "declined_reason", declined_reason, "SCR-005")
    elif declined_reason is not None:
        problems.append(
            Problem(
                record,
                "declined_reason",
                declined_reason,
                "SCR-005",
                "no reason for declining unless the family declined (--declined)",
            )
        )
    problems += short_enough(record, "reference", reference, "SCR-007", 32)
    return problems


def add_entry(
    db: Database,
    actor: Actor,
    site: str,
    screened_on: date,
    n_children: int,
    eligible: bool,
    ineligible_reason: str | None = None,
    declined: bool = False,
    declined_reason: str | None = None,
    local_authority: str | None = None,
    reference: str | None = None,
) -> ScreeningEntryView:
    """Log one screened family at ``site`` (eligible or not, declined or not)."""
    actor.require(Capability.WRITE_TRIAL_DATA, "log screening")
    record = f"screening entry at {site}"
    with db.write(actor) as s:
        site_row = site_for(s, actor, site, "log screening")
        problems = entry_problems(
            record,
            screened_on,
            n_children,
            eligible,
            ineligible_reason,
            declined,
            declined_reason,
            reference,
        )
        la_id, la_problems = local_authority_of(
            record, local_authority, site_row.id, site_row.code, local_authorities(s)
        )
        problems += la_problems
        if problems:
            raise ValidationError(problems)
        entry = ScreeningEntry(
            site_id=site_row.id,
            local_authority_id=la_id,
            reference=reference,
            screened_on=screened_on,
            n_children=n_children,
            eligible=eligible,
            ineligible_reason=None if eligible else ineligible_reason,
            declined=declined,
            declined_reason=declined_reason if declined else None,
        )
        s.add(entry)
        s.flush()
        return _views(s, ScreeningEntry.id == entry.id)[0]


def enrol(db: Database, actor: Actor, entry_id: int, family_trial_id: str) -> ScreeningEntryView:
    """Link screening entry ``entry_id`` to the family registered from it."""
    actor.require(Capability.WRITE_TRIAL_DATA, "link screening entries to families")
    with db.write(actor) as s:
        entry, site = _entry_for(s, actor, entry_id, "link a screening entry")
        family, family_site = family_for(s, actor, family_trial_id, "link a screening entry to")
        linked = (
            s.scalar(select(Family.trial_id).where(Family.id == entry.family_id))
            or str(entry.family_id)
            if entry.family_id is not None and entry.family_id != family.id
            else None
        )
        other = s.scalar(
            select(ScreeningEntry.id).where(
                ScreeningEntry.family_id == family.id, ScreeningEntry.id != entry.id
            )
        )
        problems = enrol_problems(
            f"screening entry {entry.id}",
            EntryState(
                entry.voided_at,
                entry.eligible,
                entry.declined,
                entry.screened_on,
                site.id,
                site.code,
                linked,
            ),
            family,
            family_site.code,
            other,
        )
        if problems:
            raise ValidationError(problems)
        entry.family_id = family.id
        s.flush()
        return _views(s, ScreeningEntry.id == entry.id)[0]


def local_authorities(s: Session) -> dict[str, tuple[int, int, str]]:
    """Every local authority by code: (id, site id, site code)."""
    return {
        str(code): (int(la_id), int(site_id), str(site_code))
        for code, la_id, site_id, site_code in s.execute(
            select(LocalAuthority.code, LocalAuthority.id, Site.id, Site.code).join(
                Site, Site.id == LocalAuthority.site_id
            )
        )
    }


def local_authority_of(
    record: str,
    code: str | None,
    site_id: int,
    site_code: str,
    las: Mapping[str, tuple[int, int, str]],
) -> tuple[int | None, list[Problem]]:
    """The id of local authority ``code`` of the site (None when not given); else SCR-006."""
    if code is None:
        return None, []
    found = las.get(code.strip())
    if found is not None and found[1] == site_id:
        return found[0], []
    known = ", ".join(sorted(c for c, (_i, sid, _s) in las.items() if sid == site_id))
    return None, [
        Problem(
            record,
            "local_authority",
            code,
            "SCR-006",
            f"a local authority of site {site_code}: {known}",
        )
    ]


@dataclass(frozen=True)
class EntryState:
    """What the enrolment rules need of a screening entry (stored, or a row being imported)."""

    voided_at: datetime | None
    eligible: bool
    declined: bool
    screened_on: date
    site_id: int
    site_code: str
    #: trial ID of ANOTHER family the entry is already linked to, if any
    linked_to: str | None


def enrol_problems(
    record: str, entry: EntryState, family: Family, family_site: str, other_entry: int | None
) -> list[Problem]:
    """The enrolment rules (SCR-008 to SCR-012): one implementation for ``enrol`` and the import.

    ``other_entry`` is the id of another entry already linked to ``family`` (or None).
    """
    problems = live(record, entry.voided_at, "SCR-008")
    if not entry.eligible or entry.declined:
        state = "ineligible" if not entry.eligible else "declined"
        problems.append(
            Problem(
                record,
                "eligible" if not entry.eligible else "declined",
                state,
                "SCR-008",
                "an eligible family that did not decline",
            )
        )
    if family.site_id != entry.site_id:
        problems.append(
            Problem(
                record,
                "family",
                family.trial_id,
                "SCR-009",
                f"a family of the entry's site {entry.site_code} (family is at {family_site})",
            )
        )
    if entry.linked_to is not None:
        problems.append(
            Problem(
                record,
                "family",
                family.trial_id,
                "SCR-010",
                f"an entry not yet linked (already linked to {entry.linked_to})",
            )
        )
    if other_entry is not None:
        problems.append(
            Problem(
                record,
                "family",
                family.trial_id,
                "SCR-010",
                f"a family not linked to another entry (linked to entry {other_entry})",
            )
        )
    problems += live(record, family.voided_at, "SCR-011", f"family {family.trial_id}")
    if family.registered_at.date() < entry.screened_on:
        problems.append(
            Problem(
                record,
                "family",
                family.trial_id,
                "SCR-012",
                f"a family registered on or after screening ({entry.screened_on}); "
                f"it was registered on {family.registered_at.date()}",
            )
        )
    return problems


def list_entries(
    db: Database,
    actor: Actor,
    site: str | None = None,
    *,
    status: str | None = None,
    limit: int | None = None,
    offset: int = 0,
    newest_first: bool = False,
) -> ScreeningReport:
    """The screening log the actor may see (their sites), with counts of live entries.

    ``status`` keeps the entries of one of ``ENTRY_FILTERS``; ``limit`` and ``offset`` give
    one page of them (``matching`` says how many there are), oldest first unless
    ``newest_first``.  The counts and reasons are over every live entry in scope.
    """
    actor.require(Capability.READ_TRIAL_DATA, "read the screening log")
    if status is not None and status not in ENTRY_FILTERS:
        raise ValidationError(
            Problem(
                "screening log",
                "status",
                status,
                "SCR-013",
                "one of " + ", ".join(ENTRY_FILTERS),
            )
        )
    with db.read(actor) as s:
        site_ids = scoped_site_ids(s, actor, site, "read the screening log")
        where: list[ColumnElement[bool]] = []
        if site_ids is not None:
            where.append(ScreeningEntry.site_id.in_(site_ids))
        reason = func.trim(ScreeningEntry.ineligible_reason)
        reasons = s.execute(
            select(reason, func.count())
            .where(
                *where,
                ScreeningEntry.voided_at.is_(None),
                ~ScreeningEntry.eligible,
                ScreeningEntry.ineligible_reason.is_not(None),
                ScreeningEntry.ineligible_reason != "",
            )
            .group_by(reason)
            # commonest first; ties in the order the reasons first appear in the log
            .order_by(
                func.count().desc(),
                func.min(ScreeningEntry.screened_on),
                func.min(ScreeningEntry.id),
            )
        ).all()
        if status is not None:
            where += _entry_filter(status)
        matching = s.scalar(select(func.count(ScreeningEntry.id)).where(*where))
        entries = _views(s, *where, limit=limit, offset=offset, newest_first=newest_first)
        return ScreeningReport(
            counts=screening_counts(s, site_ids),
            ineligible_reasons={str(r): int(n) for r, n in reasons},
            entries=tuple(entries),
            matching=int(matching or 0),
        )


def get_entry(db: Database, actor: Actor, entry_id: int) -> ScreeningEntryView:
    """One entry of the screening log (at the actor's sites), voided or not."""
    actor.require(Capability.READ_TRIAL_DATA, "read the screening log")
    with db.read(actor) as s:
        _entry_for(s, actor, entry_id, "read screening entry")
        return _views(s, ScreeningEntry.id == entry_id)[0]


def screening_counts(s: Session, site_ids: list[int] | None = None) -> ScreeningCounts:
    """Counts of live screening entries (at ``site_ids``; every site when None), in one query."""

    def n(condition: ColumnElement[bool] | InstrumentedAttribute[bool]) -> ColumnElement[int]:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    stmt = select(
        func.count(ScreeningEntry.id),
        func.coalesce(func.sum(ScreeningEntry.n_children), 0),
        n(ScreeningEntry.eligible),
        n(~ScreeningEntry.eligible),
        n(ScreeningEntry.declined),
        n(ScreeningEntry.family_id.is_not(None)),
    ).where(ScreeningEntry.voided_at.is_(None))
    if site_ids is not None:
        stmt = stmt.where(ScreeningEntry.site_id.in_(site_ids))
    row = s.execute(stmt).one()
    return ScreeningCounts(*(int(v) for v in row))


# --------------------------------------------------------------------------- helpers


def _entry_for(s: Session, actor: Actor, entry_id: int, action: str) -> tuple[ScreeningEntry, Site]:
    row = s.execute(
        select(ScreeningEntry, Site)
        .join(Site, Site.id == ScreeningEntry.site_id)
        .where(ScreeningEntry.id == entry_id)
    ).one_or_none()
    if row is None:
        raise NotFound(f"no screening entry {entry_id}")
    entry, site = row
    actor.require_site(site.id, site.code, f"{action} {entry_id}")
    return entry, site


def _views(
    s: Session,
    *where: ColumnElement[bool],
    limit: int | None = None,
    offset: int = 0,
    newest_first: bool = False,
) -> list[ScreeningEntryView]:
    order = (
        (ScreeningEntry.screened_on.desc(), ScreeningEntry.id.desc())
        if newest_first
        else (ScreeningEntry.screened_on, ScreeningEntry.id)
    )
    rows = s.execute(
        select(ScreeningEntry, Site.code, LocalAuthority.code, Family.trial_id)
        .where(*where)
        .join(Site, Site.id == ScreeningEntry.site_id)
        .outerjoin(LocalAuthority, LocalAuthority.id == ScreeningEntry.local_authority_id)
        .outerjoin(Family, Family.id == ScreeningEntry.family_id)
        .order_by(*order)
        .limit(limit)
        .offset(offset or None)
    ).all()
    return [
        ScreeningEntryView(
            id=e.id,
            site=site_code,
            local_authority=la_code,
            reference=e.reference,
            screened_on=e.screened_on,
            n_children=e.n_children,
            eligible=e.eligible,
            ineligible_reason=e.ineligible_reason,
            declined=e.declined,
            declined_reason=e.declined_reason,
            family=family_id,
            voided=e.voided_at is not None,
        )
        for e, site_code, la_code, family_id in rows
    ]
