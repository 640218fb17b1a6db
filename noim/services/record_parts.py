"""Set-based loaders behind the family and child record pages (``noim.services.record_view``).

Each loader reads one section for every child of the page in one statement (``IN`` over
the page's children, who are few), so a record page costs the same number of statements
whatever the size of the trial.  They run inside the caller's read unit of work, after the
caller has checked the actor's role and site; free text passes through the caller's
``mask`` (arm words masked for blinded roles, ``noim.db.blinding``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Integer,
    String,
    and_,
    bindparam,
    cast,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement, Select
from sqlalchemy.sql.elements import BindParameter

from noim.db.base import Base
from noim.db.blinding import (
    HIDDEN_SERVICES,
    arm_revealing_services,
    hidden_query_keys_bound,
    sees_arm,
)
from noim.db.models import (
    Assessment,
    BirthParentIdentity,
    CarerIdentity,
    ChildIdentity,
    Consent,
    DataQuery,
    FollowUpVisit,
    Instrument,
    LegalEvent,
    LegalProceedings,
    LocalAuthority,
    LossToFollowUp,
    Placement,
    PostRandomisationExclusion,
    Withdrawal,
)
from noim.domain.codes import PERMANENCE_OUTCOME_LABELS, WITHDRAWAL_LEVEL_LABELS
from noim.domain.exceptions import ValidationError
from noim.domain.roles import Actor
from noim.domain.status_grid import AssessmentFacts, VisitFacts
from noim.services.legal import EventView, ProceedingsView
from noim.services.legal_rules import TypeRow
from noim.services.placements import PlacementView
from noim.services.query_records import queryable_table

Mask = Callable[[str | None], str | None]


@dataclass(frozen=True)
class ChildIdentityView:
    given_name: str | None
    family_name: str | None
    social_work_ref: str | None
    health_number: str | None


@dataclass(frozen=True)
class ContactView:
    """Name, address and telephone of a birth parent or carer."""

    given_name: str | None
    family_name: str | None
    address: str | None
    postcode: str | None
    phone: str | None


@dataclass(frozen=True)
class ConsentRow:
    id: int
    child: str
    consenter_type: str
    form_version: str
    consented_on: date
    scope: str


@dataclass(frozen=True)
class WithdrawalRow:
    id: int
    child: str
    withdrawn_on: date
    level: str
    level_label: str
    requested_by: str
    reason: str | None
    voided: bool


@dataclass(frozen=True)
class LossRow:
    id: int
    child: str
    declared_on: date
    last_contact_on: date | None
    reason: str | None
    voided: bool


@dataclass(frozen=True)
class ExclusionRow:
    id: int
    #: None: the whole family was excluded
    child: str | None
    identified_on: date
    reason: str | None
    voided: bool


@dataclass(frozen=True)
class QueryRow:
    """A data query on one of the page's records (the thread is on the query's own page)."""

    id: int
    table: str
    row_key: str
    #: the child or family the record belongs to
    record: str
    field: str | None
    rule: str | None
    status: str
    message: str
    raised_at: datetime
    age_days: int


#: the bound parameter of the page's children in the statements below
IDS = "page_children"


def _of_page(child_col: Any) -> ColumnElement[bool]:
    """``child_col`` among the page's children (bound when the statement runs: ``IDS``)."""
    found: ColumnElement[bool] = child_col.in_(bindparam(IDS, expanding=True))
    return found


def _ids(ids: Sequence[int]) -> dict[str, list[int]]:
    return {IDS: list(ids)}


# Each section's statement is built once per process (``functools.cache``): building one
# (and its SQLAlchemy cache key) cost twice as much as running it for a family's children.


@functools.cache
def _visits() -> Select[FollowUpVisit]:
    return select(FollowUpVisit).where(
        _of_page(FollowUpVisit.child_id), FollowUpVisit.voided_at.is_(None)
    )


def visits(s: Session, ids: Sequence[int], mask: Mask) -> dict[int, list[VisitFacts]]:
    out: dict[int, list[VisitFacts]] = {i: [] for i in ids}
    for v in s.scalars(_visits(), _ids(ids)):
        out[v.child_id].append(
            VisitFacts(
                v.id,
                v.timepoint_code,
                v.status,
                v.target_date,
                v.window_start,
                v.window_end,
                v.completed_on,
                mask(v.status_reason),
            )
        )
    return out


@functools.cache
def _assessments() -> Select[int, int, str, str, date]:
    return (
        select(
            Assessment.id,
            Assessment.child_id,
            Assessment.timepoint_code,
            Instrument.code,
            Assessment.assessed_on,
        )
        .join(Instrument, Instrument.id == Assessment.instrument_id)
        .where(_of_page(Assessment.child_id), Assessment.voided_at.is_(None))
    )


def assessments(s: Session, ids: Sequence[int]) -> dict[int, list[AssessmentFacts]]:
    out: dict[int, list[AssessmentFacts]] = {i: [] for i in ids}
    for aid, child_id, tp, code, on in s.execute(_assessments(), _ids(ids)):
        out[child_id].append(AssessmentFacts(aid, tp, code, on))
    return out


@functools.cache
def _placements() -> Select[Placement, str]:
    return (
        select(Placement, LocalAuthority.code)
        .outerjoin(LocalAuthority, LocalAuthority.id == Placement.local_authority_id)
        .where(_of_page(Placement.child_id))
        .order_by(Placement.start_date, Placement.id)
    )


def placements(
    s: Session, ids: Sequence[int], names: dict[int, str]
) -> dict[int, list[PlacementView]]:
    out: dict[int, list[PlacementView]] = {i: [] for i in ids}
    for p, la in s.execute(_placements(), _ids(ids)):
        out[p.child_id].append(
            PlacementView(
                p.id,
                names[p.child_id],
                p.start_date,
                p.end_date,
                p.placement_type,
                p.carer_id,
                la,
                p.end_reason,
                p.voided_at is not None,
            )
        )
    return out


@functools.cache
def _proceedings() -> Select[LegalProceedings]:
    return (
        select(LegalProceedings)
        .where(_of_page(LegalProceedings.child_id))
        .order_by(LegalProceedings.started_on, LegalProceedings.id)
    )


def proceedings(
    s: Session, ids: Sequence[int], names: dict[int, str], mask: Mask
) -> dict[int, list[ProceedingsView]]:
    out: dict[int, list[ProceedingsView]] = {i: [] for i in ids}
    for p in s.scalars(_proceedings(), _ids(ids)):
        out[p.child_id].append(
            ProceedingsView(
                p.id,
                names[p.child_id],
                p.jurisdiction,
                p.kind,
                p.started_on,
                p.ended_on,
                mask(p.court_or_panel),
                p.voided_at is not None,
            )
        )
    return out


@functools.cache
def _events() -> Select[LegalEvent]:
    return select(LegalEvent).where(_of_page(LegalEvent.child_id))


def events(
    s: Session, ids: Sequence[int], names: dict[int, str], types: dict[str, TypeRow], mask: Mask
) -> dict[int, list[EventView]]:
    """Legal events and decisions with the jurisdiction's labels, in date order."""
    out: dict[int, list[EventView]] = {i: [] for i in ids}
    rows = s.scalars(_events(), _ids(ids)).all()
    for e in sorted(rows, key=lambda e: (e.event_date, types[e.event_type_code].sort_order, e.id)):
        t = types[e.event_type_code]
        outcome = t.permanence_outcome
        out[e.child_id].append(
            EventView(
                e.id,
                names[e.child_id],
                t.code,
                t.label,
                t.kind,
                e.event_date,
                e.proceedings_id,
                outcome,
                PERMANENCE_OUTCOME_LABELS[outcome] if outcome else None,
                mask(e.notes),
                e.voided_at is not None,
            )
        )
    return out


@functools.cache
def _consents() -> Select[Consent]:
    return (
        select(Consent)
        .where(_of_page(Consent.child_id), Consent.voided_at.is_(None))
        .order_by(Consent.consented_on, Consent.id)
    )


def consents(s: Session, ids: Sequence[int], names: dict[int, str]) -> dict[int, list[ConsentRow]]:
    out: dict[int, list[ConsentRow]] = {i: [] for i in ids}
    for c in s.scalars(_consents(), _ids(ids)):
        out[c.child_id].append(
            ConsentRow(
                c.id, names[c.child_id], c.consenter_type, c.form_version, c.consented_on, c.scope
            )
        )
    return out


@functools.cache
def _withdrawals() -> Select[Withdrawal]:
    return (
        select(Withdrawal)
        .where(_of_page(Withdrawal.child_id))
        .order_by(Withdrawal.withdrawn_on, Withdrawal.id)
    )


def withdrawals(
    s: Session, ids: Sequence[int], names: dict[int, str], mask: Mask
) -> dict[int, list[WithdrawalRow]]:
    out: dict[int, list[WithdrawalRow]] = {i: [] for i in ids}
    for w in s.scalars(_withdrawals(), _ids(ids)):
        out[w.child_id].append(
            WithdrawalRow(
                w.id,
                names[w.child_id],
                w.withdrawn_on,
                w.level,
                WITHDRAWAL_LEVEL_LABELS.get(w.level, w.level),
                w.requested_by,
                mask(w.reason),
                w.voided_at is not None,
            )
        )
    return out


@functools.cache
def _losses() -> Select[LossToFollowUp]:
    return (
        select(LossToFollowUp)
        .where(_of_page(LossToFollowUp.child_id))
        .order_by(LossToFollowUp.declared_on, LossToFollowUp.id)
    )


def losses(
    s: Session, ids: Sequence[int], names: dict[int, str], mask: Mask
) -> dict[int, list[LossRow]]:
    out: dict[int, list[LossRow]] = {i: [] for i in ids}
    for x in s.scalars(_losses(), _ids(ids)):
        out[x.child_id].append(
            LossRow(
                x.id,
                names[x.child_id],
                x.declared_on,
                x.last_contact_on,
                mask(x.reason),
                x.voided_at is not None,
            )
        )
    return out


def exclusions(s: Session, family_id: int, names: dict[int, str], mask: Mask) -> list[ExclusionRow]:
    """The family's post-randomisation exclusions (of the family or of one child)."""
    return [
        ExclusionRow(
            x.id,
            names.get(x.child_id) if x.child_id is not None else None,
            x.identified_on,
            mask(x.reason),
            x.voided_at is not None,
        )
        for x in s.scalars(
            select(PostRandomisationExclusion)
            .where(PostRandomisationExclusion.family_id == family_id)
            .order_by(PostRandomisationExclusion.identified_on, PostRandomisationExclusion.id)
        )
    ]


@functools.cache
def _child_identities() -> Select[ChildIdentity]:
    return select(ChildIdentity).where(_of_page(ChildIdentity.child_id))


def child_identities(s: Session, ids: Sequence[int]) -> dict[int, ChildIdentityView]:
    return {
        i.child_id: ChildIdentityView(
            i.given_name, i.family_name, i.social_work_ref, i.health_number
        )
        for i in s.scalars(_child_identities(), _ids(ids))
    }


def contacts(
    s: Session, parent_ids: Sequence[int], carer_ids: Sequence[int]
) -> tuple[dict[int, ContactView], dict[int, ContactView]]:
    """Identities of birth parents and of carers by id (two statements, always)."""
    parents = {
        i.birth_parent_id: _contact(i)
        for i in s.scalars(
            select(BirthParentIdentity).where(
                BirthParentIdentity.birth_parent_id.in_(sorted(set(parent_ids)))
            )
        )
    }
    carers = {
        i.carer_id: _contact(i)
        for i in s.scalars(
            select(CarerIdentity).where(CarerIdentity.carer_id.in_(sorted(set(carer_ids))))
        )
    }
    return parents, carers


def _contact(i: BirthParentIdentity | CarerIdentity) -> ContactView:
    return ContactView(i.given_name, i.family_name, i.address, i.postcode, i.phone)


# --------------------------------------------------------------------------- data queries


@functools.lru_cache(maxsize=2)
def _record_keys(with_family: bool) -> Select[str, str, int]:
    """(table, row key as text, child id or NULL) of every queryable record of the children
    (bound parameter ``record_children``) and, ``with_family``, of the family (``record_family``):
    one UNION ALL over the tables that link to a child, a family or an assessment.

    Built once per process (the same statement for every page; building it anew took half
    the time of a child's page): the ids are bound when it is executed."""
    child_ids: BindParameter[int] = bindparam("record_children", expanding=True)
    family_id: BindParameter[int] | None = bindparam("record_family") if with_family else None
    parts = []
    assessments_t = Assessment.__table__
    no_child = cast(null(), Integer)
    for t in Base.metadata.sorted_tables:
        try:
            queryable_table(t.name)
        except (ValidationError, KeyError):
            continue
        (pk,) = list(t.primary_key.columns)
        c = t.c

        def part(child: Any, *, _t: Any = t, _pk: Any = pk) -> Select[str, str, int]:
            return select(
                literal(_t.name, String).label("t"),
                cast(_pk, String).label("k"),
                cast(child, Integer).label("child_id"),
            )

        if t.name == "children":
            parts.append(part(pk).where(pk.in_(child_ids)))
        elif t.name == "families":
            if family_id is not None:
                parts.append(part(no_child).where(pk == family_id))
        elif "child_id" in c:
            conds: list[ColumnElement[bool]] = [c.child_id.in_(child_ids)]
            if family_id is not None and "family_id" in c:
                conds.append(c.family_id == family_id)
            parts.append(part(c.child_id).where(or_(*conds)))
        elif "family_id" in c:
            if family_id is not None:
                parts.append(part(no_child).where(c.family_id == family_id))
        elif "assessment_id" in c:
            a = assessments_t.alias(f"a_{t.name}")
            parts.append(
                part(a.c.child_id)
                .select_from(t.join(a, a.c.id == c.assessment_id))
                .where(a.c.child_id.in_(child_ids))
            )
    u = union_all(*parts).subquery("records")
    return select(*u.c)


@functools.lru_cache(maxsize=4)
def _queries_statement(with_family: bool, blinded: bool) -> Select[DataQuery, int]:
    """The data queries on a record's rows (``_record_keys``), built once per process: the
    children, family, site and (``blinded``) the hidden services are bound when it runs."""
    u = _record_keys(with_family).subquery("r")
    table_col, key_col, child_col = u.c.t, u.c.k, u.c.child_id
    stmt = (
        select(DataQuery, child_col)
        .join(u, and_(DataQuery.table_name == table_col, DataQuery.row_key == key_col))
        .where(DataQuery.site_id == bindparam("record_site"))
        .order_by(DataQuery.raised_at, DataQuery.id)
    )
    if blinded:
        stmt = stmt.where(
            ~and_(
                DataQuery.table_name == "service_use",
                DataQuery.row_key.in_(hidden_query_keys_bound()),
            )
        )
    return stmt


def queries(
    s: Session,
    actor: Actor,
    site_id: int,
    child_ids: Sequence[int],
    family_id: int | None,
    names: dict[int, str],
    family_trial_id: str,
    mask: Mask,
    today: date,
) -> list[QueryRow]:
    """Data queries on the children's records (and the family's), oldest first; a blinded
    reader never gets one on a record hidden from them (arm-revealing service use)."""
    params: dict[str, Any] = {
        "record_children": list(child_ids),
        "record_family": family_id,
        "record_site": site_id,
    }
    blinded = not sees_arm(actor)
    if blinded:
        params[HIDDEN_SERVICES] = sorted(arm_revealing_services(s))
    stmt = _queries_statement(family_id is not None, blinded)
    return [
        QueryRow(
            id=q.id,
            table=q.table_name,
            row_key=q.row_key,
            record=names.get(child_id, family_trial_id)
            if child_id is not None
            else family_trial_id,
            field=q.field,
            rule=q.rule_id,
            status=q.status,
            message=mask(q.message) or "",
            raised_at=q.raised_at,
            age_days=(today - q.raised_at.date()).days,
        )
        for q, child_id in s.execute(stmt, params)
    ]
