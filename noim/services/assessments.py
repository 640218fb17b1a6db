"""Recording assessments: item responses, derived scores (with the scoring version), corrections.

Scores are always computed by ``noim.instruments`` from the stored responses, never typed
in; a corrected response rescores the assessment in the same audited transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
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
    FollowUpVisit,
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
from noim.services.visits import complete_visits

_CHUNK = 900  # values per IN (...) list


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
    #: dated outside its follow-up visit's window (accepted, and flagged)
    out_of_window: bool = False


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
    allowed = allowed_respondents(definition)
    if respondent not in allowed:
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
        child, _family, _site = child_for(s, actor, child_trial_id, "record assessments for")
        tp = s.get(TimepointRow, timepoint)
        if tp is None:
            known = ", ".join(timepoint_codes(s))
            problems.append(Problem(record, "timepoint", timepoint, "ASM-006", f"one of {known}"))
        problems += [
            Problem(record, "assessed_on", assessed_on.isoformat(), rule, expected)
            for _i, rule, expected in date_problems(s, [child.id], [timepoint], [assessed_on])
            if tp is not None or rule != "ASM-008"
        ]
        instrument_id = registered_instruments(s).get((definition.code, definition.version))
        if instrument_id is None:
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
        assert instrument_id is not None
        links = link_visits(s, [child.id], [timepoint], [assessed_on])
        assessment = Assessment(
            child_id=child.id,
            timepoint_code=timepoint,
            visit_id=links.visit_ids[0],
            out_of_window=links.out_of_window[0],
            instrument_id=instrument_id,
            form=form,
            respondent_type=respondent,
            assessed_on=assessed_on,
            administered_by_id=actor.user_id,
            completed_at=utcnow(),
        )
        s.add(assessment)
        s.flush()
        items = sorted(
            n
            for n, item in definition.items_for(form).items()
            if not item.optional or n in responses
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
        complete_visits(s, links.completions)
        return _view(s, assessment.id)


# --------------------------------------------------------------------------- rules shared with
# the import (noim.services.imports.assessments): set-based, a batch of one for a single record


def allowed_respondents(definition: instruments.InstrumentDef) -> tuple[str, ...]:
    """Respondent types allowed for an instrument (ASM-003): its informants, else any type."""
    if definition.informants:
        return tuple(r for r in definition.informants if r in RESPONDENT_TYPES)
    return RESPONDENT_TYPES


def timepoint_codes(s: Session) -> list[str]:
    """The trial's timepoints in schedule order (the first is the baseline)."""
    return list(s.scalars(select(TimepointRow.code).order_by(TimepointRow.sort_order)))


def registered_instruments(s: Session) -> dict[tuple[str, str], int]:
    """Instrument ids by (code, version) as registered in this database (ASM-009)."""
    return {
        (r[0], r[1]): r[2]
        for r in s.execute(select(Instrument.code, Instrument.version, Instrument.id))
    }


def date_problems(
    s: Session,
    child_ids: Sequence[int],
    timepoints: Sequence[str],
    dates: Sequence[date],
    today: date | None = None,
) -> list[tuple[int, str, str]]:
    """Candidate assessments whose date breaks a rule: ``(index, rule id, expected)`` each.

    ASM-007: dated from the child's date of birth to today.  ASM-008: a follow-up (any
    timepoint after the first) is not dated before the family's randomisation.  One query
    per 900 distinct children, then vectorised over the candidates.
    """
    if not child_ids:
        return []
    today = today or utcnow().date()
    distinct = sorted(set(child_ids))
    births: dict[int, date] = {}
    randomised: dict[int, date] = {}
    for start in range(0, len(distinct), _CHUNK):
        stmt = (
            select(Child.id, Child.date_of_birth, Allocation.randomised_at)
            .outerjoin(Allocation, Allocation.family_id == Child.family_id)
            .where(Child.id.in_(distinct[start : start + _CHUNK]))
        )
        for cid, dob, at in s.execute(stmt):
            births[cid] = dob
            if at is not None:
                randomised[cid] = at.date()
    first = next(iter(timepoint_codes(s)), None)
    index = np.searchsorted(np.asarray(distinct), np.asarray(child_ids))
    born = np.array([births[c] for c in distinct], dtype="datetime64[D]")[index]
    rand = np.array([randomised.get(c, date.min) for c in distinct], dtype="datetime64[D]")[index]
    on = np.array(dates, dtype="datetime64[D]")
    follow_up = np.array([t != first for t in timepoints], dtype=bool)
    out: list[tuple[int, str, str]] = []
    for i in np.flatnonzero((on < born) | (on > np.datetime64(today, "D"))).tolist():
        out.append(
            (i, "ASM-007", f"a date from the date of birth ({births[child_ids[i]]}) to today")
        )
    for i in np.flatnonzero(follow_up & (on < rand)).tolist():
        out.append(
            (
                i,
                "ASM-008",
                f"a follow-up dated on or after randomisation ({randomised[child_ids[i]]})",
            )
        )
    return sorted(out)


@dataclass(frozen=True)
class VisitLinks:
    """Each candidate's follow-up visit (None when the child has none at that timepoint)."""

    visit_ids: list[int | None]
    #: dated outside the visit's window: accepted, and flagged
    out_of_window: list[bool]
    #: scheduled visits these assessments complete: visit id -> earliest assessment date
    completions: dict[int, date]


def link_visits(
    s: Session, child_ids: Sequence[int], timepoints: Sequence[str], dates: Sequence[date]
) -> VisitLinks:
    """The follow-up visit of each candidate assessment (its child and timepoint), set-based."""
    visits: dict[tuple[int, str], tuple[int, date, date, str]] = {}
    distinct = sorted(set(child_ids))
    for start in range(0, len(distinct), _CHUNK):
        stmt = select(
            FollowUpVisit.child_id,
            FollowUpVisit.timepoint_code,
            FollowUpVisit.id,
            FollowUpVisit.window_start,
            FollowUpVisit.window_end,
            FollowUpVisit.status,
        ).where(
            FollowUpVisit.child_id.in_(distinct[start : start + _CHUNK]),
            FollowUpVisit.voided_at.is_(None),
        )
        for cid, tp, vid, lo, hi, status in s.execute(stmt):
            visits[(cid, tp)] = (vid, lo, hi, status)
    ids: list[int | None] = []
    flags: list[bool] = []
    completions: dict[int, date] = {}
    for cid, tp, on in zip(child_ids, timepoints, dates, strict=True):
        visit = visits.get((cid, tp))
        if visit is None:
            ids.append(None)
            flags.append(False)
            continue
        vid, lo, hi, status = visit
        ids.append(vid)
        flags.append(not lo <= on <= hi)
        if status == "scheduled" and (vid not in completions or on < completions[vid]):
            completions[vid] = on
    return VisitLinks(ids, flags, completions)


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
        out_of_window=a.out_of_window,
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
