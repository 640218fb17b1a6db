"""Serious adverse events, protocol deviations and loss to follow-up.

SAE lists carry no arm at all: the DMC's per-arm tables come from the closed
report, which applies blinding there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from noim.db.base import utcnow
from noim.db.blinding import masked_text
from noim.db.models import (
    Allocation,
    Child,
    Family,
    LossToFollowUp,
    ProtocolDeviation,
    SeriousAdverseEvent,
    Site,
    Withdrawal,
)
from noim.db.session import Database
from noim.domain.codes import DEVIATION_SEVERITIES, SAE_CATEGORIES, SAE_OUTCOMES, SAE_RELATEDNESS
from noim.domain.exceptions import Problem, ReasonRequired, ValidationError
from noim.domain.roles import Actor, Capability
from noim.services.checks import only_fields
from noim.services.families import child_for, family_for
from noim.services.recording import (
    child_record_for,
    live,
    not_before,
    not_future,
    one_of,
    scoped_site_ids,
    text_given,
    via_child,
)

# --------------------------------------------------------------------------- SAEs


@dataclass(frozen=True)
class SaeView:
    """A serious adverse event as listed: no arm, for every role."""

    id: int
    child: str
    site: str
    onset_date: date
    reported_on: date
    category: str
    description: str
    relatedness: str | None
    expected: bool | None
    outcome: str | None
    completed_at: datetime | None
    voided: bool


SAE_FIELDS = (
    "onset_date",
    "reported_on",
    "category",
    "description",
    "relatedness",
    "expected",
    "outcome",
)


def sae_problems(record: str, date_of_birth: date, values: Mapping[str, Any]) -> list[Problem]:
    """The SAE rules (SAE-001 to SAE-007) on ``values`` (the ``SAE_FIELDS``), shared by
    ``add_sae``, ``update_sae`` and the ``saes`` import."""
    problems = one_of(record, "category", values["category"], SAE_CATEGORIES, "SAE-001")
    if values["relatedness"] is not None:
        problems += one_of(record, "relatedness", values["relatedness"], SAE_RELATEDNESS, "SAE-002")
    if values["outcome"] is not None:
        problems += one_of(record, "outcome", values["outcome"], SAE_OUTCOMES, "SAE-003")
    onset, reported = values["onset_date"], values["reported_on"]
    problems += not_before(record, "reported_on", reported, onset, "the onset date", "SAE-004")
    problems += not_future(record, "reported_on", reported, "SAE-005")
    problems += not_before(
        record, "onset_date", onset, date_of_birth, "the child's date of birth", "SAE-006"
    )
    problems += text_given(record, "description", values["description"], "SAE-007")
    return problems


def add_sae(
    db: Database,
    actor: Actor,
    child_trial_id: str,
    onset_date: date,
    reported_on: date,
    category: str,
    description: str,
    relatedness: str | None = None,
    expected: bool | None = None,
    outcome: str | None = None,
) -> SaeView:
    """Record a serious adverse event of a child (completed later with ``complete_sae``)."""
    actor.require(Capability.WRITE_TRIAL_DATA, "record serious adverse events")
    values = {
        "onset_date": onset_date,
        "reported_on": reported_on,
        "category": category,
        "description": description,
        "relatedness": relatedness,
        "expected": expected,
        "outcome": outcome,
    }
    with db.write(actor) as s:
        child, _family, _site = child_for(s, actor, child_trial_id, "record an SAE for")
        record = f"new SAE of child {child.trial_id}"
        problems = live(record, child.voided_at, "SAE-011", f"child {child.trial_id}")
        problems += sae_problems(record, child.date_of_birth, values)
        if problems:
            raise ValidationError(problems)
        sae = SeriousAdverseEvent(child_id=child.id, **values)
        s.add(sae)
        s.flush()
        return _saes(s, SeriousAdverseEvent.id == sae.id)[0]


def update_sae(
    db: Database, actor: Actor, sae_id: int, changes: Mapping[str, Any], reason: str | None = None
) -> SaeView:
    """Change an SAE's details (audited; a completed SAE needs a ``reason``)."""
    actor.require(Capability.WRITE_TRIAL_DATA, "update serious adverse events")
    only_fields(f"SAE {sae_id}", changes, SAE_FIELDS, "SAE-008")
    reason = reason.strip() if reason and reason.strip() else None
    with db.write(actor, reason=reason) as s:
        sae, child = _sae_for(s, actor, sae_id, "update")
        record = f"SAE {sae.id} (child {child.trial_id})"
        if sae.completed_at is not None and reason is None:
            raise ReasonRequired(
                f"{record} was marked complete on {sae.completed_at:%Y-%m-%d}; "
                "changing it needs a reason (--reason)"
            )
        problems = live(record, sae.voided_at, "SAE-011")
        merged = {f: changes.get(f, getattr(sae, f)) for f in SAE_FIELDS}
        problems += sae_problems(record, child.date_of_birth, merged)
        if problems:
            raise ValidationError(problems)
        for name, value in changes.items():
            setattr(sae, name, value)
        s.flush()
        return _saes(s, SeriousAdverseEvent.id == sae.id)[0]


def complete_sae(db: Database, actor: Actor, sae_id: int) -> SaeView:
    """Mark an SAE report complete: its relatedness, expectedness and outcome must be known."""
    actor.require(Capability.WRITE_TRIAL_DATA, "complete serious adverse events")
    with db.write(actor) as s:
        sae, child = _sae_for(s, actor, sae_id, "complete")
        record = f"SAE {sae.id} (child {child.trial_id})"
        problems = live(record, sae.voided_at, "SAE-011")
        if sae.completed_at is not None:
            problems.append(
                Problem(
                    record,
                    "completed_at",
                    sae.completed_at.isoformat(timespec="seconds"),
                    "SAE-010",
                    "an SAE not yet marked complete",
                )
            )
        problems += completion_problems(record, sae.relatedness, sae.expected, sae.outcome)
        if problems:
            raise ValidationError(problems)
        sae.completed_at = utcnow()
        s.flush()
        return _saes(s, SeriousAdverseEvent.id == sae.id)[0]


def completion_problems(
    record: str, relatedness: str | None, expected: bool | None, outcome: str | None
) -> list[Problem]:
    """SAE-009: a complete SAE report says its relatedness, expectedness and outcome
    (shared by ``complete_sae`` and the ``saes`` import)."""
    return [
        Problem(record, name, None, "SAE-009", f"{what} before the SAE is complete")
        for name, what, value in (
            ("relatedness", "relatedness to the intervention", relatedness),
            ("expected", "whether it was expected", expected),
            ("outcome", "the outcome", outcome),
        )
        if value is None
    ]


def list_saes(db: Database, actor: Actor, site: str | None = None) -> list[SaeView]:
    """SAEs at the actor's sites (or ``site``), by onset; never shows an arm."""
    actor.require(Capability.READ_TRIAL_DATA, "read serious adverse events")
    with db.read(actor) as s:
        site_ids = scoped_site_ids(s, actor, site, "read serious adverse events")
        where = [] if site_ids is None else [Family.site_id.in_(site_ids)]
        return masked_text(s, actor, _saes(s, *where), "description")


def outstanding_saes(
    s: Session, actor: Actor, site_ids: Sequence[int] | None, limit: int
) -> tuple[int, list[SaeView]]:
    """SAEs whose follow-up is outstanding (live, not yet marked complete) at ``site_ids``
    (every site when None): how many, and the first ``limit`` by report date."""
    where: list[ColumnElement[bool]] = [
        SeriousAdverseEvent.voided_at.is_(None),
        SeriousAdverseEvent.completed_at.is_(None),
    ]
    if site_ids is not None:
        where.append(Family.site_id.in_(sorted(site_ids)))
    total = s.scalar(
        via_child(select(func.count(SeriousAdverseEvent.id)), SeriousAdverseEvent.child_id).where(
            *where
        )
    )
    rows = _saes(s, *where, limit=limit, by_report=True)
    return int(total or 0), masked_text(s, actor, rows, "description")


def _sae_for(
    s: Session, actor: Actor, sae_id: int, action: str
) -> tuple[SeriousAdverseEvent, Child]:
    sae, child, _site = child_record_for(
        s, actor, SeriousAdverseEvent, sae_id, f"no SAE {sae_id}", f"{action} SAE {sae_id}"
    )
    return sae, child


def _saes(
    s: Session, *where: ColumnElement[bool], limit: int | None = None, by_report: bool = False
) -> list[SaeView]:
    first = SeriousAdverseEvent.reported_on if by_report else SeriousAdverseEvent.onset_date
    rows = s.execute(
        via_child(
            select(SeriousAdverseEvent, Child.trial_id, Site.code), SeriousAdverseEvent.child_id
        )
        .where(*where)
        .order_by(first, SeriousAdverseEvent.id)
        .limit(limit)
    ).all()
    return [
        SaeView(
            id=e.id,
            child=child_id,
            site=site_code,
            onset_date=e.onset_date,
            reported_on=e.reported_on,
            category=e.category,
            description=e.description,
            relatedness=e.relatedness,
            expected=e.expected,
            outcome=e.outcome,
            completed_at=e.completed_at,
            voided=e.voided_at is not None,
        )
        for e, child_id, site_code in rows
    ]


# --------------------------------------------------------------------------- deviations


@dataclass(frozen=True)
class DeviationView:
    id: int
    family: str
    child: str | None
    site: str
    occurred_on: date
    category: str
    severity: str
    description: str
    voided: bool


def add_deviation(
    db: Database,
    actor: Actor,
    family_trial_id: str,
    occurred_on: date,
    category: str,
    severity: str,
    description: str,
    child_trial_id: str | None = None,
) -> DeviationView:
    """Record a protocol deviation for a family (and one of its children, if it concerns one)."""
    actor.require(Capability.WRITE_TRIAL_DATA, "record protocol deviations")
    with db.write(actor) as s:
        family, _site = family_for(s, actor, family_trial_id, "record a deviation for")
        record = f"new deviation of family {family.trial_id}"
        child = None
        if child_trial_id is not None:
            child, _family, _ = child_for(s, actor, child_trial_id, "record a deviation for")
        problems = deviation_problems(
            record,
            family.trial_id,
            family.voided_at,
            None if child is None else (child.trial_id, child.voided_at, child.family_id),
            family.id,
            occurred_on,
            category,
            severity,
            description,
            earliest=deviation_earliest(
                None if child is None else (child.trial_id, child.date_of_birth),
                eldest_births(s, [family.id]).get(family.id),
            ),
        )
        if problems:
            raise ValidationError(problems)
        child_id = None if child is None else child.id
        deviation = ProtocolDeviation(
            family_id=family.id,
            child_id=child_id,
            occurred_on=occurred_on,
            category=category.strip(),
            severity=severity,
            description=description,
        )
        s.add(deviation)
        s.flush()
        return _deviations(s, ProtocolDeviation.id == deviation.id)[0]


def deviation_problems(
    record: str,
    family_trial_id: str,
    family_voided_at: datetime | None,
    child: tuple[str, datetime | None, int] | None,
    family_id: int,
    occurred_on: date,
    category: str,
    severity: str,
    description: str,
    *,
    earliest: tuple[date, str] | None,
) -> list[Problem]:
    """The deviation rules (DEV-001 to DEV-007), shared by ``add_deviation`` and the import.

    ``child`` is the concerned child's ``(trial_id, voided_at, family_id)``, or None;
    ``earliest`` the first plausible date and what it is (``deviation_earliest``).
    """
    problems = live(record, family_voided_at, "DEV-006", f"family {family_trial_id}")
    if child is not None:
        child_trial_id, child_voided_at, child_family_id = child
        if child_family_id != family_id:
            problems.append(
                Problem(
                    record,
                    "child",
                    child_trial_id,
                    "DEV-001",
                    f"a child of family {family_trial_id}",
                )
            )
        problems += live(record, child_voided_at, "DEV-006", f"child {child_trial_id}")
    problems += one_of(record, "severity", severity, DEVIATION_SEVERITIES, "DEV-002")
    problems += not_future(record, "occurred_on", occurred_on, "DEV-003")
    if earliest is not None:
        problems += not_before(record, "occurred_on", occurred_on, *earliest, "DEV-007")
    problems += text_given(record, "category", category, "DEV-004", 64)
    problems += text_given(record, "description", description, "DEV-005")
    return problems


def eldest_births(s: Session, family_ids: Sequence[object]) -> dict[int, date]:
    """family id -> the date of birth of its eldest live child (families with one), one query."""
    rows = s.execute(
        select(Child.family_id, func.min(Child.date_of_birth))
        .where(Child.family_id.in_(family_ids), Child.voided_at.is_(None))
        .group_by(Child.family_id)
    )
    return {int(family_id): born for family_id, born in rows}


def deviation_earliest(
    child: tuple[str, date] | None, eldest_born: date | None
) -> tuple[date, str] | None:
    """DEV-007's bound: the concerned child's date of birth (``(trial_id, date_of_birth)``),
    else the family's eldest child's; None for a family without children."""
    if child is not None:
        return child[1], f"the date of birth of child {child[0]}"
    if eldest_born is not None:
        return eldest_born, "the date of birth of the family's eldest child"
    return None


def list_deviations(db: Database, actor: Actor, site: str | None = None) -> list[DeviationView]:
    """Protocol deviations at the actor's sites (or ``site``), oldest first."""
    actor.require(Capability.READ_TRIAL_DATA, "read protocol deviations")
    with db.read(actor) as s:
        site_ids = scoped_site_ids(s, actor, site, "read protocol deviations")
        where = [] if site_ids is None else [Family.site_id.in_(site_ids)]
        return masked_text(s, actor, _deviations(s, *where), "description")


def _deviations(s: Session, *where: ColumnElement[bool]) -> list[DeviationView]:
    rows = s.execute(
        select(ProtocolDeviation, Family.trial_id, Child.trial_id, Site.code)
        .join(Family, Family.id == ProtocolDeviation.family_id)
        .join(Site, Site.id == Family.site_id)
        .outerjoin(Child, Child.id == ProtocolDeviation.child_id)
        .where(*where)
        .order_by(ProtocolDeviation.occurred_on, ProtocolDeviation.id)
    ).all()
    return [
        DeviationView(
            id=d.id,
            family=family_id,
            child=child_id,
            site=site_code,
            occurred_on=d.occurred_on,
            category=d.category,
            severity=d.severity,
            description=d.description,
            voided=d.voided_at is not None,
        )
        for d, family_id, child_id, site_code in rows
    ]


# --------------------------------------------------------------------------- loss to follow-up


@dataclass(frozen=True)
class LossView:
    id: int
    child: str
    declared_on: date
    last_contact_on: date | None
    reason: str


def declare_lost(
    db: Database,
    actor: Actor,
    child_trial_id: str,
    declared_on: date,
    reason: str,
    last_contact_on: date | None = None,
) -> LossView:
    """Record that a randomised child is lost to follow-up (visits are left as they are)."""
    actor.require(Capability.WRITE_TRIAL_DATA, "record loss to follow-up")
    with db.write(actor) as s:
        child, family, _site = child_for(s, actor, child_trial_id, "record loss to follow-up of")
        record = f"loss to follow-up of child {child.trial_id}"
        problems = live(record, child.voided_at, "LTF-009", f"child {child.trial_id}")
        problems += not_future(record, "declared_on", declared_on, "LTF-001")
        if last_contact_on is not None and last_contact_on > declared_on:
            problems.append(
                Problem(
                    record,
                    "last_contact_on",
                    last_contact_on.isoformat(),
                    "LTF-002",
                    f"a date on or before the declaration ({declared_on})",
                )
            )
        problems += not_before(
            record,
            "last_contact_on",
            last_contact_on,
            child.entered_care_on,
            "entry to care",
            "LTF-003",
        )
        problems += text_given(record, "reason", reason, "LTF-007")
        randomised_at = s.scalar(
            select(Allocation.randomised_at).where(Allocation.family_id == family.id)
        )
        if randomised_at is None:
            problems.append(
                Problem(
                    record,
                    "child",
                    child.trial_id,
                    "LTF-004",
                    "a randomised child (a child not yet randomised is not followed up)",
                )
            )
        else:
            problems += not_before(
                record,
                "declared_on",
                declared_on,
                randomised_at.date(),
                "randomisation",
                "LTF-008",
            )
        withdrawn = s.execute(
            select(Withdrawal.withdrawn_on, Withdrawal.level)
            .where(
                Withdrawal.child_id == child.id,
                Withdrawal.level.in_(("follow_up", "data")),
                Withdrawal.voided_at.is_(None),
            )
            .order_by(Withdrawal.withdrawn_on)
        ).first()
        if withdrawn is not None:
            problems.append(
                Problem(
                    record,
                    "child",
                    child.trial_id,
                    "LTF-005",
                    f"a child still in follow-up (withdrawn from {withdrawn.level.replace('_', '-')} "
                    f"on {withdrawn.withdrawn_on})",
                )
            )
        lost = s.scalar(
            select(LossToFollowUp.declared_on).where(
                LossToFollowUp.child_id == child.id, LossToFollowUp.voided_at.is_(None)
            )
        )
        if lost is not None:
            problems.append(
                Problem(
                    record,
                    "child",
                    child.trial_id,
                    "LTF-006",
                    f"a child not already lost to follow-up (declared lost on {lost})",
                )
            )
        if problems:
            raise ValidationError(problems)
        loss = LossToFollowUp(
            child_id=child.id,
            declared_on=declared_on,
            last_contact_on=last_contact_on,
            reason=reason.strip(),
        )
        s.add(loss)
        s.flush()
        return LossView(loss.id, child.trial_id, declared_on, last_contact_on, loss.reason)
