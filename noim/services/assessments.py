"""Recording assessments: item responses, derived scores (with the scoring version), corrections.

Scores are always computed by ``noim.instruments`` from the stored responses, never typed
in; a corrected response rescores the assessment in the same audited transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from noim import instruments
from noim.db.audit import insert_rows, update_rows
from noim.db.base import utcnow
from noim.db.models import (
    Allocation,
    Assessment,
    Child,
    DerivedScore,
    Instrument,
    ItemResponse,
    TimepointRow,
)
from noim.db.session import Database
from noim.domain.codes import RESPONDENT_TYPES, RESPONSE_MISSING_REASONS
from noim.domain.exceptions import NotFound, Problem, ValidationError
from noim.domain.roles import Actor, Capability
from noim.services.checks import require_reason
from noim.services.families import child_for


@dataclass(frozen=True)
class AssessmentView:
    id: int
    child: str
    timepoint: str
    instrument: str
    form: str | None
    respondent: str
    assessed_on: date
    responses: dict[int, float | None]
    scores: dict[str, float | None]
    scoring_version: str


def record_assessment(
    db: Database,
    actor: Actor,
    child_trial_id: str,
    timepoint: str,
    instrument: str,
    assessed_on: date,
    responses: Mapping[int, Any],
    respondent: str = "carer",
    form: str | None = None,
    missing_reasons: Mapping[int, str] | None = None,
) -> AssessmentView:
    """Store one completed instrument for a child, scored by the instrument's published rules."""
    actor.require(Capability.WRITE_ASSESSMENTS, "record assessments")
    record = f"{instrument} for child {child_trial_id} at {timepoint}"
    try:
        definition = instruments.load(instrument)
    except instruments.InstrumentError as exc:
        raise ValidationError(
            Problem(record, "instrument", instrument, "ASM-001", str(exc).split(": ", 1)[1])
        ) from None
    problems = [
        Problem(record, "responses", None, "ASM-002", p)
        for p in instruments.engine.check_responses(definition, dict(responses), form)
    ]
    if respondent not in RESPONDENT_TYPES or (
        definition.informants and respondent not in definition.informants
    ):
        allowed = definition.informants or RESPONDENT_TYPES
        problems.append(
            Problem(record, "respondent", respondent, "ASM-003", "one of " + ", ".join(allowed))
        )
    reasons = dict(missing_reasons or {})
    for item, reason in reasons.items():
        if reason not in RESPONSE_MISSING_REASONS:
            problems.append(
                Problem(
                    record,
                    f"item {item} missing_reason",
                    reason,
                    "ASM-004",
                    "one of " + ", ".join(RESPONSE_MISSING_REASONS),
                )
            )
        elif responses.get(item) is not None:
            problems.append(
                Problem(
                    record,
                    f"item {item} missing_reason",
                    reason,
                    "ASM-005",
                    "no missing reason for an answered item",
                )
            )
    with db.write(actor) as s:
        child, family, _site = child_for(s, actor, child_trial_id, "record assessments for")
        tp = s.get(TimepointRow, timepoint)
        if tp is None:
            known = ", ".join(
                s.scalars(select(TimepointRow.code).order_by(TimepointRow.sort_order))
            )
            problems.append(Problem(record, "timepoint", timepoint, "ASM-006", f"one of {known}"))
        if assessed_on < child.date_of_birth or assessed_on > utcnow().date():
            problems.append(
                Problem(
                    record,
                    "assessed_on",
                    assessed_on.isoformat(),
                    "ASM-007",
                    f"a date from the date of birth ({child.date_of_birth}) to today",
                )
            )
        allocation = s.scalar(select(Allocation).where(Allocation.family_id == family.id))
        first = s.scalar(select(TimepointRow.code).order_by(TimepointRow.sort_order).limit(1))
        if (
            allocation is not None
            and tp is not None
            and timepoint != first
            and assessed_on < allocation.randomised_at.date()
        ):
            problems.append(
                Problem(
                    record,
                    "assessed_on",
                    assessed_on.isoformat(),
                    "ASM-008",
                    f"a follow-up dated on or after randomisation ({allocation.randomised_at.date()})",
                )
            )
        instrument_row = s.scalar(
            select(Instrument).where(
                Instrument.code == definition.code, Instrument.version == definition.version
            )
        )
        if instrument_row is None:
            problems.append(
                Problem(
                    record,
                    "instrument",
                    instrument,
                    "ASM-009",
                    "an instrument registered in this database (run `noim db upgrade`)",
                )
            )
        if problems:
            raise ValidationError(problems)
        assert instrument_row is not None
        assessment = Assessment(
            child_id=child.id,
            timepoint_code=timepoint,
            instrument_id=instrument_row.id,
            form=form,
            respondent_type=respondent,
            assessed_on=assessed_on,
            administered_by_id=actor.user_id,
            completed_at=utcnow(),
        )
        s.add(assessment)
        s.flush()
        items = sorted(
            n for n, item in definition.items.items() if not item.optional or n in responses
        )
        insert_rows(
            s,
            ItemResponse,
            [
                {
                    "assessment_id": assessment.id,
                    "item": n,
                    "value": responses.get(n),
                    "missing_reason": None
                    if responses.get(n) is not None
                    else reasons.get(n, "not_answered"),
                }
                for n in items
            ],
        )
        scores = instruments.score(definition.code, dict(responses), form)
        insert_rows(
            s,
            DerivedScore,
            [
                {
                    "assessment_id": assessment.id,
                    "scale": scale,
                    "score": value,
                    "scoring_version": definition.scoring_version,
                    "computed_at": utcnow(),
                }
                for scale, value in scores.items()
            ],
        )
        return _view(s, assessment.id)


def _assessment_for(
    s: Session, actor: Actor | None, assessment_id: int, action: str
) -> tuple[Assessment, Instrument, Child]:
    """The assessment, its instrument and child; site scope checked when ``actor`` is given."""
    row = s.execute(
        select(Assessment, Instrument, Child)
        .join(Instrument, Instrument.id == Assessment.instrument_id)
        .join(Child, Child.id == Assessment.child_id)
        .where(Assessment.id == assessment_id)
    ).one_or_none()
    if row is None:
        raise NotFound(f"no assessment {assessment_id}")
    a, ins, child = row
    if actor is not None:
        child_for(s, actor, child.trial_id, action)
    return a, ins, child


def _view(s: Session, assessment_id: int) -> AssessmentView:
    a, ins, child = _assessment_for(s, None, assessment_id, "read")
    responses = {
        r.item: r.value
        for r in s.scalars(select(ItemResponse).where(ItemResponse.assessment_id == a.id))
    }
    derived = list(s.scalars(select(DerivedScore).where(DerivedScore.assessment_id == a.id)))
    return AssessmentView(
        id=a.id,
        child=child.trial_id,
        timepoint=a.timepoint_code,
        instrument=ins.code,
        form=a.form,
        respondent=a.respondent_type,
        assessed_on=a.assessed_on,
        responses=responses,
        scores={d.scale: d.score for d in derived},
        scoring_version=derived[0].scoring_version if derived else "",
    )


def get_assessment(db: Database, actor: Actor, assessment_id: int) -> AssessmentView:
    actor.require(Capability.READ_TRIAL_DATA, "read assessments")
    with db.read(actor) as s:
        _assessment_for(s, actor, assessment_id, "read assessments of")
        return _view(s, assessment_id)


def correct_response(
    db: Database,
    actor: Actor,
    assessment_id: int,
    item: int,
    value: Any,
    reason: str,
    missing_reason: str | None = None,
) -> AssessmentView:
    """Correct one item response of a completed assessment and rescore it (audited, with a reason)."""
    actor.require(Capability.WRITE_ASSESSMENTS, "correct assessments")
    reason = require_reason(reason, f"correcting assessment {assessment_id}")
    with db.write(actor, reason=reason) as s:
        a, ins, _child = _assessment_for(s, actor, assessment_id, "correct assessments of")
        definition = instruments.load(ins.code)
        stored = {
            r.item: r
            for r in s.scalars(select(ItemResponse).where(ItemResponse.assessment_id == a.id))
        }
        responses: dict[int, Any] = {n: r.value for n, r in stored.items()}
        responses[item] = value
        problems = instruments.engine.check_responses(definition, {item: value}, a.form)
        if problems:
            raise ValidationError(
                [
                    Problem(f"assessment {assessment_id}", f"item {item}", value, "ASM-002", p)
                    for p in problems
                ]
            )
        new_missing = None if value is not None else (missing_reason or "not_answered")
        if item in stored:
            update_rows(
                s,
                ItemResponse,
                {stored[item].id: {"value": value, "missing_reason": new_missing}},
                reason,
            )
        else:
            insert_rows(
                s,
                ItemResponse,
                [
                    {
                        "assessment_id": a.id,
                        "item": item,
                        "value": value,
                        "missing_reason": new_missing,
                    }
                ],
            )
        scores = instruments.score(
            ins.code, {n: (int(v) if v is not None else None) for n, v in responses.items()}, a.form
        )
        existing = {
            d.scale: d
            for d in s.scalars(select(DerivedScore).where(DerivedScore.assessment_id == a.id))
        }
        changes = {
            existing[k].id: {
                "score": v,
                "scoring_version": definition.scoring_version,
                "computed_at": utcnow(),
            }
            for k, v in scores.items()
            if k in existing and existing[k].score != v
        }
        update_rows(s, DerivedScore, changes, reason)
        insert_rows(
            s,
            DerivedScore,
            [
                {
                    "assessment_id": a.id,
                    "scale": k,
                    "score": v,
                    "scoring_version": definition.scoring_version,
                    "computed_at": utcnow(),
                }
                for k, v in scores.items()
                if k not in existing
            ],
        )
        s.expire_all()
        return _view(s, a.id)
