"""Entering an assessment item by item (the web form): which form of the instrument the
child's age calls for, and recording it only on that form.

The form follows from the child's age in completed months on the assessment date and the
instrument definition's ``[form_ages]`` (SDQ 2-4 or 4-17, the PedsQL module); a score from
the wrong form for the child's age is not valid (ASM-012).  Recording itself is
``noim.services.assessments.record_assessment``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from noim import instruments
from noim.db.base import utcnow
from noim.db.models import FollowUpVisit, TimepointInstrument, TimepointRow
from noim.db.session import Database
from noim.domain.durations import months_between
from noim.domain.exceptions import NotFound, Problem, ValidationError
from noim.domain.roles import Actor, Capability
from noim.domain.schedule import visit_status
from noim.services.assessments import AssessmentView, allowed_respondents, record_assessment
from noim.services.families import child_for


@dataclass(frozen=True)
class EntryPlan:
    child: str
    site: str
    timepoint: str
    timepoint_label: str
    instrument: str
    instrument_name: str
    #: the date the age is taken on (the assessment date, or today)
    on: date
    age_months: int
    #: the form the age calls for; None when no form of the instrument fits it
    form: str | None
    #: why no form fits (None when one does)
    no_form: str | None
    respondents: tuple[str, ...]
    #: the respondent the trial definition names for this instrument at this timepoint
    default_respondent: str | None
    #: the child's visit at the timepoint, when scheduled: derived status and window
    visit_status: str | None
    window_start: date | None
    window_end: date | None
    #: instruments the trial expects at this timepoint for a child of this age
    expected: tuple[str, ...]


def _form_problem(d: instruments.InstrumentDef, age: int, on: date) -> str:
    bands = ", ".join(f"{f} ({lo}-{hi} months)" for f, (lo, hi) in d.form_ages.items())
    return (
        f"a child whose age fits a form of {d.code} ({bands}); the child was {age} months on {on}"
    )


def choose_form(d: instruments.InstrumentDef, age: int, on: date) -> tuple[str | None, str | None]:
    """(form, None) for a child aged ``age`` months on ``on``, or (None, what was expected)."""
    form = instruments.form_for_age(d, age)
    if form is None and (d.form_ages or len(d.forms) > 1):
        return None, _form_problem(d, age, on)
    return form, None


def _timepoint_of(s: Session, child_id: int, ref: str) -> str:
    """``ref`` as a timepoint code: a visit's id (digits) stands for its timepoint."""
    ref = ref.strip()
    if not ref.isdigit():
        return ref
    code = s.scalar(
        select(FollowUpVisit.timepoint_code).where(
            FollowUpVisit.id == int(ref), FollowUpVisit.child_id == child_id
        )
    )
    if code is None:
        raise NotFound(f"no visit {ref} of this child")
    return code


def visit_timepoint(db: Database, actor: Actor, child_trial_id: str, ref: str) -> str:
    """The timepoint of the child's visit ``ref`` (a timepoint code, or the visit's id)."""
    actor.require(Capability.READ_TRIAL_DATA, "read visits")
    if not ref.strip().isdigit():
        return ref.strip()
    with db.read(actor) as s:
        child, _family, _site = child_for(s, actor, child_trial_id, "read the visits of")
        return _timepoint_of(s, child.id, ref)


def entry_plan(
    db: Database,
    actor: Actor,
    child_trial_id: str,
    instrument: str,
    timepoint: str,
    on: date | None = None,
) -> EntryPlan:
    """What entering ``instrument`` for a child at ``timepoint`` needs (read only);
    ``timepoint`` may be the id of the child's visit instead."""
    actor.require(Capability.WRITE_ASSESSMENTS, "record assessments")
    try:
        d = instruments.load(instrument.strip().lower())
    except instruments.InstrumentError as exc:
        raise NotFound(str(exc)) from None
    on = on or utcnow().date()
    with db.read(actor) as s:
        child, _family, site = child_for(s, actor, child_trial_id, "record assessments for")
        tp = s.get(TimepointRow, _timepoint_of(s, child.id, timepoint))
        if tp is None:
            raise NotFound(f"no timepoint {timepoint!r}")
        visit = s.scalar(
            select(FollowUpVisit).where(
                FollowUpVisit.child_id == child.id,
                FollowUpVisit.timepoint_code == tp.code,
                FollowUpVisit.voided_at.is_(None),
            )
        )
        schedule = list(
            s.scalars(
                select(TimepointInstrument)
                .where(TimepointInstrument.timepoint_code == tp.code)
                .order_by(TimepointInstrument.id)
            )
        )
        age = months_between(child.date_of_birth, on)
        form, no_form = choose_form(d, age, on)
        expected = tuple(
            dict.fromkeys(
                r.instrument_code
                for r in schedule
                if (r.min_age_months is None or age >= r.min_age_months)
                and (r.max_age_months is None or age <= r.max_age_months)
            )
        )
        default = next((r.respondent_type for r in schedule if r.instrument_code == d.code), None)
        return EntryPlan(
            child=child.trial_id,
            site=site.code,
            timepoint=tp.code,
            timepoint_label=tp.label,
            instrument=d.code,
            instrument_name=d.name,
            on=on,
            age_months=age,
            form=form,
            no_form=no_form,
            respondents=allowed_respondents(d),
            default_respondent=default,
            visit_status=None
            if visit is None
            else visit_status(
                visit.status, visit.window_start, visit.window_end, visit.completed_on, on
            ),
            window_start=None if visit is None else visit.window_start,
            window_end=None if visit is None else visit.window_end,
            expected=expected,
        )


def enter_assessment(
    db: Database,
    actor: Actor,
    child_trial_id: str,
    timepoint: str,
    instrument: str,
    assessed_on: date,
    responses: Mapping[int, Any],
    respondent: str,
    form: str | None,
    missing_reasons: Mapping[int, str] | None = None,
) -> AssessmentView:
    """Record an assessment entered on ``form``, refused (ASM-012) when the child's age on
    ``assessed_on`` calls for another form: the answers were given to other questions; and
    refused (ASM-013) when nothing was entered at all (neither an answer nor a missing code),
    so a form sent empty by mistake does not complete the visit."""
    actor.require(Capability.WRITE_ASSESSMENTS, "record assessments")
    record = f"{instrument} for child {child_trial_id} at {timepoint}"
    if all(v is None for v in responses.values()) and not missing_reasons:
        raise ValidationError(
            Problem(
                record,
                "responses",
                "no answer and no missing code",
                "ASM-013",
                "at least one answer, or why the items are missing (an empty form is not "
                "an assessment)",
            )
        )
    try:
        d = instruments.load(instrument.strip().lower())
    except instruments.InstrumentError:
        d = None  # record_assessment says what is wrong with it (ASM-001)
    if d is not None:
        with db.read(actor) as s:
            child, _family, _site = child_for(s, actor, child_trial_id, "record assessments for")
            age = months_between(child.date_of_birth, assessed_on)
        wanted, no_form = choose_form(d, age, assessed_on)
        if no_form is not None:
            raise ValidationError(
                Problem(record, "assessed_on", assessed_on.isoformat(), "ASM-012", no_form)
            )
        if wanted != form:
            raise ValidationError(
                Problem(
                    record,
                    "form",
                    form,
                    "ASM-012",
                    f"the {wanted} form: the child was {age} months old on {assessed_on}",
                )
            )
    return record_assessment(
        db,
        actor,
        child_trial_id,
        timepoint,
        instrument,
        assessed_on,
        responses,
        respondent,
        form,
        missing_reasons,
    )
