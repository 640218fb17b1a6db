"""Legal proceedings, legal events and court / hearing decisions, and the permanence they show.

Each child's site is in one jurisdiction (Scotland: Children's Hearings; England and
Wales: the family court with SSDA903 codes).  Proceedings are recorded with a kind valid
in that jurisdiction; events and decisions with a type code from the jurisdiction's
vocabulary or a common one (``any.*``), see ``noim.domain.legal``.  The permanence
outcome of every event comes from its type, never typed in; ``legal_history`` derives the
first permanence decision and the re-entries to care after a return home
(``noim.domain.permanence``).  That a decision is not dated before its proceedings is a
cross-record rule run when every unit of work commits (LGL-010), not here.

The row rules live once, in ``LegalChecker`` (``noim.services.legal_rules``), used by
these services and by ``noim import legal-events``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from noim.db.blinding import masked_text
from noim.db.models import Child, LegalEvent, LegalProceedings, Site
from noim.db.session import Database
from noim.domain.codes import PERMANENCE_OUTCOME_LABELS
from noim.domain.exceptions import Problem, ValidationError
from noim.domain.permanence import DatedEvent, summarise
from noim.domain.roles import Actor, Capability
from noim.services.checks import correction_reason, mark_voided, require_reason
from noim.services.families import child_for
from noim.services.legal_rules import LegalChecker, TypeRow, refuse_voided
from noim.services.recording import child_record_for, live_child_for

# --------------------------------------------------------------------------- views


@dataclass(frozen=True)
class ProceedingsView:
    id: int
    child: str
    jurisdiction: str
    kind: str
    started_on: date
    ended_on: date | None
    court_or_panel: str | None
    voided: bool


@dataclass(frozen=True)
class EventView:
    id: int
    child: str
    event_type: str
    label: str
    kind: str
    event_date: date
    proceedings_id: int | None
    #: the permanence outcome category of the event's type (None: not a permanence event)
    permanence_outcome: str | None
    outcome_label: str | None
    notes: str | None
    voided: bool


@dataclass(frozen=True)
class ReentryView:
    event_id: int
    on: date
    after_return_home_on: date | None


@dataclass(frozen=True)
class TimelineEntry:
    on: date
    record: str  # "proceedings" or "event"
    id: int
    what: str
    kind: str
    permanence_outcome: str | None
    voided: bool


@dataclass(frozen=True)
class LegalHistory:
    child: str
    jurisdiction: str
    proceedings: tuple[ProceedingsView, ...]
    events: tuple[EventView, ...]
    #: proceedings starts and ends and events, in date order (voided ones marked)
    timeline: tuple[TimelineEntry, ...]
    first_permanence: EventView | None
    returns_home: int
    reentries: tuple[ReentryView, ...]
    reentries_after_return_home: int


def _pview(p: LegalProceedings, child: str) -> ProceedingsView:
    return ProceedingsView(
        p.id,
        child,
        p.jurisdiction,
        p.kind,
        p.started_on,
        p.ended_on,
        p.court_or_panel,
        p.voided_at is not None,
    )


def _eview(e: LegalEvent, t: TypeRow, child: str) -> EventView:
    outcome = t.permanence_outcome
    return EventView(
        e.id,
        child,
        t.code,
        t.label,
        t.kind,
        e.event_date,
        e.proceedings_id,
        outcome,
        PERMANENCE_OUTCOME_LABELS[outcome] if outcome else None,
        e.notes,
        e.voided_at is not None,
    )


def _proceedings_for(
    s: Session, actor: Actor, proceedings_id: int, action: str
) -> tuple[LegalProceedings, Child, Site]:
    return child_record_for(
        s,
        actor,
        LegalProceedings,
        proceedings_id,
        f"no legal proceedings {proceedings_id}",
        f"{action} proceedings {proceedings_id} of {{child}}",
    )


def _event_for(
    s: Session, actor: Actor, event_id: int, action: str
) -> tuple[LegalEvent, Child, Site]:
    return child_record_for(
        s,
        actor,
        LegalEvent,
        event_id,
        f"no legal event {event_id}",
        f"{action} legal event {event_id} of {{child}}",
    )


# --------------------------------------------------------------------------- proceedings


def open_proceedings(
    db: Database,
    actor: Actor,
    child_trial_id: str,
    kind: str,
    started_on: date,
    court_or_panel: str | None = None,
    today: date | None = None,
) -> ProceedingsView:
    """Record legal proceedings for a child (jurisdiction: the child's site's)."""
    actor.require(Capability.WRITE_TRIAL_DATA, "record legal proceedings")
    with db.write(actor) as s:
        child, _family, site = live_child_for(
            s, actor, child_trial_id, "record proceedings for", "LGL-009"
        )
        problems = LegalChecker(s, today).proceedings_problems(
            f"new proceedings of {child.trial_id}",
            jurisdiction=site.jurisdiction,
            date_of_birth=child.date_of_birth,
            kind=kind,
            started_on=started_on,
            court_or_panel=court_or_panel,
        )
        if problems:
            raise ValidationError(problems)
        p = LegalProceedings(
            child_id=child.id,
            jurisdiction=site.jurisdiction,
            kind=kind,
            started_on=started_on,
            court_or_panel=court_or_panel,
        )
        s.add(p)
        s.flush()
        return _pview(p, child.trial_id)


def end_proceedings(
    db: Database, actor: Actor, proceedings_id: int, ended_on: date, today: date | None = None
) -> ProceedingsView:
    """Record the date proceedings ended (once; later changes are corrections with a reason)."""
    actor.require(Capability.WRITE_TRIAL_DATA, "end legal proceedings")
    with db.write(actor) as s:
        p, child, site = _proceedings_for(s, actor, proceedings_id, "end")
        record = f"proceedings {p.id} of {child.trial_id}"
        refuse_voided(record, p.voided_at, "ended")
        if p.ended_on is not None:
            raise ValidationError(
                Problem(
                    record,
                    "ended_on",
                    p.ended_on.isoformat(),
                    "LGL-004",
                    "proceedings not yet ended (correct the end with a reason instead: "
                    "noim legal correct-proceedings)",
                )
            )
        problems = LegalChecker(s, today).proceedings_problems(
            record,
            jurisdiction=site.jurisdiction,
            date_of_birth=child.date_of_birth,
            kind=None,
            started_on=p.started_on,
            ended_on=ended_on,
        )
        if problems:
            raise ValidationError(problems)
        p.ended_on = ended_on
        s.flush()
        return _pview(p, child.trial_id)


CORRECTABLE_PROCEEDINGS_FIELDS = ("kind", "started_on", "ended_on", "court_or_panel")


def correct_proceedings(
    db: Database,
    actor: Actor,
    proceedings_id: int,
    changes: Mapping[str, Any],
    reason: str,
    today: date | None = None,
) -> ProceedingsView:
    """Correct proceedings' kind, dates or court / panel (audited, with a reason)."""
    actor.require(Capability.WRITE_TRIAL_DATA, "correct legal proceedings")
    reason = correction_reason(
        reason, f"proceedings {proceedings_id}", changes, CORRECTABLE_PROCEEDINGS_FIELDS, "LGL-021"
    )
    with db.write(actor, reason=reason) as s:
        p, child, site = _proceedings_for(s, actor, proceedings_id, "correct")
        record = f"proceedings {p.id} of {child.trial_id}"
        refuse_voided(record, p.voided_at, "corrected")
        merged = {f: changes.get(f, getattr(p, f)) for f in CORRECTABLE_PROCEEDINGS_FIELDS}
        problems = LegalChecker(s, today).proceedings_problems(
            record, jurisdiction=site.jurisdiction, date_of_birth=child.date_of_birth, **merged
        )
        if problems:
            raise ValidationError(problems)
        for name, value in changes.items():
            setattr(p, name, value)
        s.flush()
        return _pview(p, child.trial_id)


def void_proceedings(
    db: Database, actor: Actor, proceedings_id: int, reason: str
) -> ProceedingsView:
    """Void proceedings recorded in error; refused while live events belong to them."""
    actor.require(Capability.WRITE_TRIAL_DATA, "void legal proceedings")
    reason = require_reason(reason, f"voiding proceedings {proceedings_id}")
    with db.write(actor, reason=reason) as s:
        p, child, _site = _proceedings_for(s, actor, proceedings_id, "void")
        events = s.scalars(
            select(LegalEvent.id).where(
                LegalEvent.proceedings_id == p.id, LegalEvent.voided_at.is_(None)
            )
        ).all()
        if events:
            raise ValidationError(
                Problem(
                    f"proceedings {p.id} of {child.trial_id}",
                    "events",
                    ", ".join(str(e) for e in events),
                    "LGL-022",
                    "proceedings without live events (void the events or correct their "
                    "proceedings first)",
                )
            )
        mark_voided(p, reason)
        s.flush()
        return _pview(p, child.trial_id)


# --------------------------------------------------------------------------- events


def record_event(
    db: Database,
    actor: Actor,
    child_trial_id: str,
    event_type: str,
    event_date: date,
    proceedings_id: int | None = None,
    notes: str | None = None,
    today: date | None = None,
) -> EventView:
    """Record a legal event or decision of a child (type code from its jurisdiction's vocabulary)."""
    actor.require(Capability.WRITE_TRIAL_DATA, "record legal events")
    with db.write(actor) as s:
        child, _family, site = live_child_for(
            s, actor, child_trial_id, "record legal events for", "LGL-009"
        )
        checker = LegalChecker(s, today)
        checker.load_proceedings([proceedings_id])
        code = checker.type_code(event_type)
        problems = checker.event_problems(
            f"new legal event of {child.trial_id}",
            child_id=child.id,
            jurisdiction=site.jurisdiction,
            date_of_birth=child.date_of_birth,
            event_type=code or event_type,
            event_date=event_date,
            proceedings_id=proceedings_id,
        )
        if problems:
            raise ValidationError(problems)
        assert code is not None
        e = LegalEvent(
            child_id=child.id,
            proceedings_id=proceedings_id,
            event_type_code=code,
            event_date=event_date,
            notes=notes or None,
        )
        s.add(e)
        s.flush()
        return _eview(e, checker.types[code], child.trial_id)


CORRECTABLE_EVENT_FIELDS = ("event_type", "event_date", "proceedings_id", "notes")


def correct_event(
    db: Database,
    actor: Actor,
    event_id: int,
    changes: Mapping[str, Any],
    reason: str,
    today: date | None = None,
) -> EventView:
    """Correct a legal event's type, date, proceedings or notes (audited, with a reason)."""
    actor.require(Capability.WRITE_TRIAL_DATA, "correct legal events")
    reason = correction_reason(
        reason, f"legal event {event_id}", changes, CORRECTABLE_EVENT_FIELDS, "LGL-021"
    )
    with db.write(actor, reason=reason) as s:
        e, child, site = _event_for(s, actor, event_id, "correct")
        record = f"legal event {e.id} of {child.trial_id}"
        refuse_voided(record, e.voided_at, "corrected")
        checker = LegalChecker(s, today)
        given_type = changes.get("event_type")
        code = checker.type_code(given_type) if given_type is not None else e.event_type_code
        merged = {
            "event_type": code or given_type,
            "event_date": changes.get("event_date", e.event_date),
            "proceedings_id": changes.get("proceedings_id", e.proceedings_id),
        }
        checker.load_proceedings([merged["proceedings_id"]])
        problems = checker.event_problems(
            record,
            child_id=child.id,
            jurisdiction=site.jurisdiction,
            date_of_birth=child.date_of_birth,
            **merged,
        )
        if problems:
            raise ValidationError(problems)
        assert code is not None
        e.event_type_code = code
        e.event_date = merged["event_date"]
        e.proceedings_id = merged["proceedings_id"]
        if "notes" in changes:
            e.notes = changes["notes"] or None
        s.flush()
        return _eview(e, checker.types[code], child.trial_id)


def void_event(db: Database, actor: Actor, event_id: int, reason: str) -> EventView:
    """Void a legal event recorded in error (it stays, marked void, with the reason)."""
    actor.require(Capability.WRITE_TRIAL_DATA, "void legal events")
    reason = require_reason(reason, f"voiding legal event {event_id}")
    with db.write(actor, reason=reason) as s:
        e, child, _site = _event_for(s, actor, event_id, "void")
        mark_voided(e, reason)
        s.flush()
        return _eview(e, LegalChecker(s).types[e.event_type_code], child.trial_id)


# --------------------------------------------------------------------------- reads


def legal_history(db: Database, actor: Actor, child_trial_id: str) -> LegalHistory:
    """A child's proceedings and events in date order, with the permanence they show."""
    actor.require(Capability.READ_TRIAL_DATA, "read legal events")
    with db.read(actor) as s:
        child, _family, site = child_for(s, actor, child_trial_id, "read the legal events of")
        types = LegalChecker(s).types
        procs = s.scalars(
            select(LegalProceedings)
            .where(LegalProceedings.child_id == child.id)
            .order_by(LegalProceedings.started_on, LegalProceedings.id)
        ).all()
        events = s.scalars(select(LegalEvent).where(LegalEvent.child_id == child.id)).all()
        dated = {
            e.id: DatedEvent(
                e.id,
                e.event_date,
                e.event_type_code,
                types[e.event_type_code].kind,
                types[e.event_type_code].permanence_outcome,
                types[e.event_type_code].sort_order,
            )
            for e in events
        }
        ordered = sorted(
            events, key=lambda e: (e.event_date, types[e.event_type_code].sort_order, e.id)
        )
        shown = masked_text(
            s,
            actor,
            [_eview(e, types[e.event_type_code], child.trial_id) for e in ordered],
            "notes",
        )
        eviews = {e.id: v for e, v in zip(ordered, shown, strict=True)}
        summary = summarise([dated[e.id] for e in events if e.voided_at is None])
        timeline: list[TimelineEntry] = []
        for p in procs:
            voided = p.voided_at is not None
            timeline.append(
                TimelineEntry(
                    p.started_on,
                    "proceedings",
                    p.id,
                    f"{p.kind} started",
                    "proceedings",
                    None,
                    voided,
                )
            )
            if p.ended_on is not None:
                timeline.append(
                    TimelineEntry(
                        p.ended_on,
                        "proceedings",
                        p.id,
                        f"{p.kind} ended",
                        "proceedings",
                        None,
                        voided,
                    )
                )
        for v in eviews.values():
            timeline.append(
                TimelineEntry(
                    v.event_date,
                    "event",
                    v.id,
                    f"{v.event_type}: {v.label}",
                    v.kind,
                    v.permanence_outcome,
                    v.voided,
                )
            )
        timeline.sort(key=lambda t: (t.on, t.record != "proceedings", t.id))
        first = summary.first_permanence
        return LegalHistory(
            child=child.trial_id,
            jurisdiction=site.jurisdiction,
            proceedings=tuple(_pview(p, child.trial_id) for p in procs),
            events=tuple(eviews.values()),
            timeline=tuple(timeline),
            first_permanence=eviews[first.id] if first else None,
            returns_home=len(summary.returns_home),
            reentries=tuple(
                ReentryView(r.event_id, r.on, r.after_return_home_on) for r in summary.reentries
            ),
            reentries_after_return_home=summary.reentries_after_return_home,
        )
