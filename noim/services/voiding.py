"""Voiding a record entered in error: one service for every kind of record recorded here.

A voided row stays in place with the time and the reason (audited as a
``void``); lists mark it and counts leave it out.  The kinds are named by
their table, as in the audit trail (``noim audit show TABLE ID``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from noim.db.base import Base, utcnow
from noim.db.blinding import hides_service_use
from noim.db.models import (
    Assessment,
    BirthParent,
    Carer,
    ChildBirthParent,
    ChildCarer,
    Consent,
    Family,
    InterventionReceipt,
    LossToFollowUp,
    Placement,
    ProtocolDeviation,
    ScreeningEntry,
    SeriousAdverseEvent,
    ServiceUse,
    Site,
)
from noim.db.session import Database
from noim.domain.exceptions import NotFound, Problem, ValidationError
from noim.domain.roles import Actor, Capability
from noim.services.checks import require_reason
from noim.services.recording import via_child


@dataclass(frozen=True)
class VoidableKind:
    model: Any
    label: str
    capability: Capability
    #: ``select(record, Site)`` for one record id
    locate: Callable[[int], Select[Any]]


def _via_child(model: Any) -> Callable[[int], Select[Any]]:
    return lambda record_id: via_child(select(model, Site), model.child_id).where(
        model.id == record_id
    )


def _via_family(model: Any) -> Callable[[int], Select[Any]]:
    return lambda record_id: (
        select(model, Site)
        .join(Family, Family.id == model.family_id)
        .join(Site, Site.id == Family.site_id)
        .where(model.id == record_id)
    )


def _via_site(model: Any) -> Callable[[int], Select[Any]]:
    return lambda record_id: (
        select(model, Site).join(Site, Site.id == model.site_id).where(model.id == record_id)
    )


_W = Capability.WRITE_TRIAL_DATA

VOIDABLE: dict[str, VoidableKind] = {
    "screening_log": VoidableKind(ScreeningEntry, "screening entry", _W, _via_site(ScreeningEntry)),
    "birth_parents": VoidableKind(BirthParent, "birth parent", _W, _via_family(BirthParent)),
    "carers": VoidableKind(Carer, "carer", _W, _via_site(Carer)),
    "child_birth_parents": VoidableKind(
        ChildBirthParent, "birth parent link", _W, _via_child(ChildBirthParent)
    ),
    "child_carers": VoidableKind(ChildCarer, "carer link", _W, _via_child(ChildCarer)),
    "serious_adverse_events": VoidableKind(
        SeriousAdverseEvent, "SAE", _W, _via_child(SeriousAdverseEvent)
    ),
    "protocol_deviations": VoidableKind(
        ProtocolDeviation, "protocol deviation", _W, _via_family(ProtocolDeviation)
    ),
    "intervention_receipts": VoidableKind(
        InterventionReceipt, "intervention receipt", _W, _via_family(InterventionReceipt)
    ),
    "losses_to_follow_up": VoidableKind(
        LossToFollowUp, "loss to follow-up", _W, _via_child(LossToFollowUp)
    ),
    "service_use": VoidableKind(
        ServiceUse, "service use", Capability.WRITE_ASSESSMENTS, _via_child(ServiceUse)
    ),
}


@dataclass(frozen=True)
class VoidView:
    table: str
    id: int
    voided_at: datetime
    reason: str
    #: True when the record was voided before (nothing changed)
    already_voided: bool


def void_record(db: Database, actor: Actor, table: str, record_id: int, reason: str) -> VoidView:
    """Void record ``record_id`` of ``table`` (one of ``VOIDABLE``) with a reason."""
    kind = VOIDABLE.get(table)
    if kind is None:
        raise NotFound(f"no voidable record kind {table!r}; expected one of {', '.join(VOIDABLE)}")
    actor.require(kind.capability, f"void {kind.label} records")
    reason = require_reason(reason, f"voiding {kind.label} {record_id}")
    with db.write(actor, reason=reason) as s:
        row = s.execute(kind.locate(record_id)).one_or_none()
        if row is None or (table == "service_use" and hides_service_use(s, actor, record_id)):
            raise NotFound(f"no {kind.label} {record_id}")  # hidden from blinded roles alike
        record, site = row
        actor.require_site(site.id, site.code, f"void {kind.label} {record_id}")
        if record.voided_at is not None:
            return VoidView(table, record_id, record.voided_at, record.void_reason, True)
        problems = _still_used(s, table, record_id, f"{kind.label} {record_id}")
        if problems:
            raise ValidationError(problems)
        record.voided_at, record.void_reason = utcnow(), reason
        s.flush()
        return VoidView(table, record_id, record.voided_at, reason, False)


def _still_used(s: Session, table: str, record_id: int, record: str) -> list[Problem]:
    """A birth parent or carer still named by live records is not voided (void those first);
    nor is a screening entry a live family was registered from (the family's screening, in
    the CONSORT counts)."""
    uses: list[tuple[str, type[Base], Any]]
    if table == "screening_log":
        family = s.scalar(
            select(Family.trial_id)
            .join(ScreeningEntry, ScreeningEntry.family_id == Family.id)
            .where(ScreeningEntry.id == record_id, Family.voided_at.is_(None))
        )
        if family is None:
            return []
        return [
            Problem(
                record,
                "family_id",
                family,
                "SCR-014",
                f"an entry no live family was registered from (family {family} was: "
                "void the family first)",
            )
        ]
    if table == "birth_parents":
        uses = [
            ("child_birth_parents", ChildBirthParent, ChildBirthParent.birth_parent_id),
            ("consents", Consent, Consent.birth_parent_id),
            ("assessments", Assessment, Assessment.respondent_parent_id),
        ]
    elif table == "carers":
        uses = [
            ("child_carers", ChildCarer, ChildCarer.carer_id),
            ("consents", Consent, Consent.carer_id),
            ("assessments", Assessment, Assessment.respondent_carer_id),
            ("placements", Placement, Placement.carer_id),
        ]
    else:
        return []
    problems = []
    for name, model, column in uses:
        ids = s.scalars(
            select(model.id)  # type: ignore[attr-defined]
            .where(column == record_id, model.voided_at.is_(None))  # type: ignore[attr-defined]
            .order_by(model.id)  # type: ignore[attr-defined]
        ).all()
        if ids:
            problems.append(
                Problem(
                    record,
                    name,
                    f"{len(ids)} live row(s): {', '.join(map(str, ids))}",
                    "PPL-017",
                    f"no live {name} rows naming it (void them first)",
                )
            )
    return problems
