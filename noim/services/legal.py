"""Legal proceedings, legal events and court / hearing decisions, and the permanence they show.

Each child's site is in one jurisdiction (Scotland: Children's Hearings; England and
Wales: the family court with SSDA903 codes).  Proceedings are recorded with a kind valid
in that jurisdiction; events and decisions with a type code from the jurisdiction's
vocabulary or a common one (``any.*``), see ``noim.domain.legal``.  The permanence
outcome of every event comes from its type, never typed in; ``legal_history`` derives the
first permanence decision and the re-entries to care after a return home
(``noim.domain.permanence``).  That a decision is not dated before its proceedings is a
cross-record rule run when every unit of work commits (LGL-010), not here.

The row rules live once, in ``LegalChecker``, used by these services and by
``noim import legal-events``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from noim.db.base import utcnow
from noim.db.models import Child, DecisionType, Family, LegalEvent, LegalProceedings, Site
from noim.db.session import Database
from noim.domain.codes import JURISDICTIONS, PERMANENCE_OUTCOME_LABELS
from noim.domain.exceptions import NotFound, Problem, ValidationError
from noim.domain.legal import ANY_JURISDICTION, DECISION_TYPES
from noim.domain.permanence import (
    PROCEEDINGS_JURISDICTIONS,
    DatedEvent,
    proceedings_kinds_for,
    summarise,
)
from noim.domain.roles import Actor, Capability
from noim.services.checks import only_fields, require_reason
from noim.services.families import child_for

_CHUNK = 900
COURT_MAX = 128


# --------------------------------------------------------------------------- the rules


@dataclass(frozen=True)
class _TypeRow:
    code: str
    jurisdiction: str
    kind: str
    label: str
    permanence_outcome: str | None
    sort_order: int


@dataclass(frozen=True)
class _ProceedingsFacts:
    child_id: int
    kind: str
    started_on: date
    voided: bool


class LegalChecker:
    """The rules for proceedings (LGL-001 to LGL-003) and events (LGL-004 to LGL-006).

    The vocabulary is read once (one query), the proceedings rows name by id are read
    with ``load_proceedings`` (one query per 900), so checking many rows costs a few
    queries.

    Rules: LGL-001 proceedings kind valid in the child's jurisdiction, LGL-002 dates not
    before birth, LGL-003 dates not after today, LGL-004 end of proceedings not before
    their start, LGL-005 event type valid in the child's jurisdiction, LGL-006 the
    proceedings an event belongs to are live proceedings of the same child, LGL-007
    court / panel name at most 128 characters.
    """

    def __init__(self, s: Session, today: date | None = None) -> None:
        self.s = s
        self.today = today or utcnow().date()
        self.types: dict[str, _TypeRow] = {
            r.code: _TypeRow(
                r.code, r.jurisdiction, r.kind, r.label, r.permanence_outcome, r.sort_order
            )
            for r in s.scalars(select(DecisionType))
        }
        self._lower = {c.lower(): c for c in self.types}
        self.proceedings: dict[int, _ProceedingsFacts] = {}

    def load_proceedings(self, ids: Iterable[int | None]) -> None:
        wanted = sorted({i for i in ids if i is not None} - set(self.proceedings))
        for start in range(0, len(wanted), _CHUNK):
            for pid, child_id, kind, started, voided in self.s.execute(
                select(
                    LegalProceedings.id,
                    LegalProceedings.child_id,
                    LegalProceedings.kind,
                    LegalProceedings.started_on,
                    LegalProceedings.voided_at,
                ).where(LegalProceedings.id.in_(wanted[start : start + _CHUNK]))
            ):
                self.proceedings[pid] = _ProceedingsFacts(
                    child_id, kind, started, voided is not None
                )

    def type_code(self, text: str | None) -> str | None:
        """The vocabulary's spelling of ``text`` (codes are matched case-insensitively)."""
        if text is None:
            return None
        return self._lower.get(text.strip().lower())

    def valid_codes(self, jurisdiction: str) -> list[str]:
        rows = [
            t for t in self.types.values() if t.jurisdiction in (jurisdiction, ANY_JURISDICTION)
        ]
        return [t.code for t in sorted(rows, key=lambda t: t.sort_order)]

    def _dates(
        self, record: str, field: str, value: date | None, date_of_birth: date
    ) -> list[Problem]:
        out: list[Problem] = []
        if value is None:
            return out
        if value < date_of_birth:
            out.append(
                Problem(
                    record,
                    field,
                    value.isoformat(),
                    "LGL-002",
                    f"a date on or after the child's date of birth ({date_of_birth})",
                )
            )
        if value > self.today:
            out.append(
                Problem(
                    record,
                    field,
                    value.isoformat(),
                    "LGL-003",
                    f"a date not after today ({self.today})",
                )
            )
        return out

    def proceedings_problems(
        self,
        record: str,
        *,
        jurisdiction: str,
        date_of_birth: date,
        kind: str | None,
        started_on: date | None,
        ended_on: date | None = None,
        court_or_panel: str | None = None,
    ) -> list[Problem]:
        """Every proceedings rule the values break (None values were refused by the caller)."""
        out: list[Problem] = []
        if kind is not None and jurisdiction not in PROCEEDINGS_JURISDICTIONS.get(kind, ()):
            allowed = proceedings_kinds_for(jurisdiction)
            out.append(
                Problem(
                    record,
                    "kind",
                    kind,
                    "LGL-001",
                    f"a kind of proceedings in {jurisdiction}: {', '.join(allowed)}",
                )
            )
        out += self._dates(record, "started_on", started_on, date_of_birth)
        out += self._dates(record, "ended_on", ended_on, date_of_birth)
        if started_on is not None and ended_on is not None and ended_on < started_on:
            out.append(
                Problem(
                    record,
                    "ended_on",
                    ended_on.isoformat(),
                    "LGL-004",
                    f"a date on or after the proceedings' start ({started_on})",
                )
            )
        if court_or_panel is not None and len(court_or_panel) > COURT_MAX:
            out.append(
                Problem(
                    record,
                    "court_or_panel",
                    court_or_panel[:40] + "...",
                    "LGL-007",
                    f"at most {COURT_MAX} characters (got {len(court_or_panel)})",
                )
            )
        return out

    def event_problems(
        self,
        record: str,
        *,
        child_id: int,
        jurisdiction: str,
        date_of_birth: date,
        event_type: str | None,
        event_date: date | None,
        proceedings_id: int | None,
    ) -> list[Problem]:
        """Every event rule the values break (``event_type`` as the vocabulary spells it)."""
        out: list[Problem] = []
        if event_type is not None:
            t = self.types.get(event_type)
            if t is None or t.jurisdiction not in (jurisdiction, ANY_JURISDICTION):
                out.append(
                    Problem(
                        record,
                        "event_type",
                        event_type,
                        "LGL-005",
                        f"an event type of {jurisdiction} or any jurisdiction: "
                        + ", ".join(self.valid_codes(jurisdiction)),
                    )
                )
        out += self._dates(record, "event_date", event_date, date_of_birth)
        if proceedings_id is not None:
            p = self.proceedings.get(proceedings_id)
            if p is None or p.voided or p.child_id != child_id:
                out.append(
                    Problem(
                        record,
                        "proceedings_id",
                        proceedings_id,
                        "LGL-006",
                        "the id of live proceedings of the same child",
                    )
                )
        return out


def _refuse_voided_child(child: Child) -> None:
    if child.voided_at is not None:
        raise ValidationError(
            Problem(
                f"child {child.trial_id}",
                "voided_at",
                child.voided_at.isoformat(),
                "LGL-009",
                "a child whose record is not voided",
            )
        )


def _refuse_voided(record: str, voided_at: Any, action: str) -> None:
    if voided_at is not None:
        raise ValidationError(
            Problem(
                record,
                "voided_at",
                voided_at.isoformat(),
                "LGL-008",
                f"a record that is not voided (a voided record cannot be {action})",
            )
        )


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


def _eview(e: LegalEvent, t: _TypeRow, child: str) -> EventView:
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


def _site_child(s: Session, child_id: int) -> tuple[Child, Site]:
    child, site = s.execute(
        select(Child, Site)
        .join(Family, Family.id == Child.family_id)
        .join(Site, Site.id == Family.site_id)
        .where(Child.id == child_id)
    ).one()
    return child, site


def _proceedings_for(
    s: Session, actor: Actor, proceedings_id: int, action: str
) -> tuple[LegalProceedings, Child, Site]:
    p = s.get(LegalProceedings, proceedings_id)
    if p is None:
        raise NotFound(f"no legal proceedings {proceedings_id}")
    child, site = _site_child(s, p.child_id)
    actor.require_site(site.id, site.code, f"{action} proceedings {p.id} of {child.trial_id}")
    return p, child, site


def _event_for(
    s: Session, actor: Actor, event_id: int, action: str
) -> tuple[LegalEvent, Child, Site]:
    e = s.get(LegalEvent, event_id)
    if e is None:
        raise NotFound(f"no legal event {event_id}")
    child, site = _site_child(s, e.child_id)
    actor.require_site(site.id, site.code, f"{action} legal event {e.id} of {child.trial_id}")
    return e, child, site


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
        child, _family, site = child_for(s, actor, child_trial_id, "record proceedings for")
        _refuse_voided_child(child)
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
        _refuse_voided(record, p.voided_at, "ended")
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
    reason = require_reason(reason, f"correcting proceedings {proceedings_id}")
    only_fields(f"proceedings {proceedings_id}", changes, CORRECTABLE_PROCEEDINGS_FIELDS, "LGL-011")
    with db.write(actor, reason=reason) as s:
        p, child, site = _proceedings_for(s, actor, proceedings_id, "correct")
        record = f"proceedings {p.id} of {child.trial_id}"
        _refuse_voided(record, p.voided_at, "corrected")
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
                    "LGL-012",
                    "proceedings without live events (void the events or correct their "
                    "proceedings first)",
                )
            )
        if p.voided_at is None:
            p.voided_at, p.void_reason = utcnow(), reason
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
        child, _family, site = child_for(s, actor, child_trial_id, "record legal events for")
        _refuse_voided_child(child)
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
    reason = require_reason(reason, f"correcting legal event {event_id}")
    only_fields(f"legal event {event_id}", changes, CORRECTABLE_EVENT_FIELDS, "LGL-011")
    with db.write(actor, reason=reason) as s:
        e, child, site = _event_for(s, actor, event_id, "correct")
        record = f"legal event {e.id} of {child.trial_id}"
        _refuse_voided(record, e.voided_at, "corrected")
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
        if e.voided_at is None:
            e.voided_at, e.void_reason = utcnow(), reason
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
        eviews = {e.id: _eview(e, types[e.event_type_code], child.trial_id) for e in ordered}
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


# --------------------------------------------------------------------------- vocabulary


@dataclass(frozen=True)
class TypeView:
    code: str
    jurisdiction: str
    kind: str
    label: str
    statute: str | None
    ssda903: str | None
    permanence_outcome: str | None
    entry_route: bool


@dataclass(frozen=True)
class Vocabulary:
    jurisdictions: tuple[str, ...]
    proceedings_kinds: dict[str, tuple[str, ...]]
    event_types: tuple[TypeView, ...]


def vocabulary(jurisdiction: str | None = None) -> Vocabulary:
    """The legal vocabulary (of one jurisdiction, with the common types, or of all)."""
    if jurisdiction is not None and jurisdiction not in JURISDICTIONS:
        raise ValidationError(
            Problem(
                "vocabulary",
                "jurisdiction",
                jurisdiction,
                "LGL-013",
                "one of " + ", ".join(JURISDICTIONS),
            )
        )
    wanted = (jurisdiction,) if jurisdiction else JURISDICTIONS
    types = tuple(
        TypeView(
            d.code,
            d.jurisdiction,
            d.kind,
            d.label,
            d.statute,
            d.ssda903,
            d.permanence_outcome,
            d.can_be_entry_route,
        )
        for d in DECISION_TYPES
        if jurisdiction is None or d.jurisdiction in (jurisdiction, ANY_JURISDICTION)
    )
    kinds = {j: tuple(proceedings_kinds_for(j)) for j in wanted}
    return Vocabulary(wanted, kinds, types)
