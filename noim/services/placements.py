"""Placements: where each child lived, and when it moved.

A child's placements are dated spells (``start_date`` to ``end_date``, open while the
child is still there).  The first placement normally starts on the day the child entered
care; every later one is a *move* (placement moves per child, and the share of children
with two or more moves, are headline measures: ``moves_by_child``).  ``move_child`` ends
the open placement and starts the next on the same day in one unit of work, so moves
never leave two placements open.  That placements of a child do not overlap is a
cross-record rule run when every unit of work commits (PLC-010), not here.

The row rules (PLC-001 to PLC-009) live once, in ``PlacementChecker``
(``noim.services.placement_rules``), used by these services and by
``noim import placements``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from noim.db.models import Child, LocalAuthority, Placement, Site
from noim.db.session import Database
from noim.domain.exceptions import Problem, ValidationError
from noim.domain.permanence import moves
from noim.domain.roles import Actor, Capability
from noim.services.checks import (
    correction_reason,
    mark_voided,
    refuse_voided,
    require_reason,
)
from noim.services.families import child_for
from noim.services.placement_rules import PlacementChecker
from noim.services.recording import child_record_for, live_child_for

_CHUNK = 900


# --------------------------------------------------------------------------- views


@dataclass(frozen=True)
class PlacementView:
    id: int
    child: str
    start_date: date
    end_date: date | None
    placement_type: str
    carer_id: int | None
    local_authority: str | None
    end_reason: str | None
    voided: bool


@dataclass(frozen=True)
class ChildPlacements:
    child: str
    entered_care_on: date
    placements: tuple[PlacementView, ...]
    #: placements after the first (live placements only)
    moves: int


@dataclass(frozen=True)
class MoveView:
    ended: PlacementView
    started: PlacementView


def _view(s: Session, p: Placement, child_trial_id: str) -> PlacementView:
    la = s.get(LocalAuthority, p.local_authority_id) if p.local_authority_id else None
    return PlacementView(
        id=p.id,
        child=child_trial_id,
        start_date=p.start_date,
        end_date=p.end_date,
        placement_type=p.placement_type,
        carer_id=p.carer_id,
        local_authority=la.code if la else None,
        end_reason=p.end_reason,
        voided=p.voided_at is not None,
    )


def _placement_for(
    s: Session, actor: Actor, placement_id: int, action: str
) -> tuple[Placement, Child, Site]:
    return child_record_for(
        s,
        actor,
        Placement,
        placement_id,
        f"no placement {placement_id}",
        f"{action} placement {placement_id} of {{child}}",
    )


def _refuse_voided(p: Placement, action: str) -> None:
    refuse_voided(
        f"placement {p.id}",
        p.voided_at,
        "PLC-022",
        f"a placement that is not voided (a voided placement cannot be {action})",
    )


def _open_placements(s: Session, child_id: int) -> list[Placement]:
    return list(
        s.scalars(
            select(Placement)
            .where(
                Placement.child_id == child_id,
                Placement.end_date.is_(None),
                Placement.voided_at.is_(None),
            )
            .order_by(Placement.start_date)
        )
    )


# --------------------------------------------------------------------------- writes


def add_placement(
    db: Database,
    actor: Actor,
    child_trial_id: str,
    start_date: date,
    placement_type: str,
    carer_id: int | None = None,
    local_authority: str | None = None,
    today: date | None = None,
) -> PlacementView:
    """Record a placement of a child starting on ``start_date`` (open until ended)."""
    actor.require(Capability.WRITE_TRIAL_DATA, "record placements")
    with db.write(actor) as s:
        child, _family, site = live_child_for(
            s, actor, child_trial_id, "record a placement for", "PLC-009"
        )
        checker = PlacementChecker(s, today)
        checker.load([carer_id])
        problems = _start_problems(
            checker,
            f"new placement of {child.trial_id}",
            child,
            site,
            start_date,
            placement_type,
            carer_id,
            local_authority,
        )
        if problems:
            raise ValidationError(problems)
        p = Placement(
            child_id=child.id,
            start_date=start_date,
            placement_type=placement_type,
            carer_id=carer_id,
            local_authority_id=checker.la_id(local_authority),
        )
        s.add(p)
        s.flush()
        return _view(s, p, child.trial_id)


def _start_problems(
    checker: PlacementChecker,
    record: str,
    child: Child,
    site: Site,
    on: date,
    placement_type: str,
    carer_id: int | None,
    local_authority: str | None,
) -> list[Problem]:
    """The rules of a new open placement of ``child`` starting ``on``."""
    return checker.problems(
        record,
        site_id=site.id,
        site_code=site.code,
        date_of_birth=child.date_of_birth,
        start_date=on,
        end_date=None,
        placement_type=placement_type,
        end_reason=None,
        carer_id=carer_id,
        local_authority=local_authority,
    )


def _end_problems(
    checker: PlacementChecker, p: Placement, child: Child, site: Site, on: date, reason: str
) -> list[Problem]:
    return checker.problems(
        f"placement {p.id} of {child.trial_id}",
        site_id=site.id,
        site_code=site.code,
        date_of_birth=child.date_of_birth,
        start_date=None,  # the stored start was checked when it was recorded
        end_date=on,
        placement_type=None,
        end_reason=reason,
        carer_id=None,
        local_authority=None,
    ) + (
        [
            Problem(
                f"placement {p.id} of {child.trial_id}",
                "end_date",
                on.isoformat(),
                "PLC-004",
                f"a date on or after the placement's start ({p.start_date})",
            )
        ]
        if on < p.start_date
        else []
    )


def end_placement(
    db: Database,
    actor: Actor,
    placement_id: int,
    on: date,
    reason: str,
    today: date | None = None,
) -> PlacementView:
    """End an open placement on ``on`` for ``reason`` (one of PLACEMENT_END_REASONS)."""
    actor.require(Capability.WRITE_TRIAL_DATA, "end placements")
    with db.write(actor) as s:
        p, child, site = _placement_for(s, actor, placement_id, "end")
        _refuse_voided(p, "ended")
        if p.end_date is not None:
            raise ValidationError(
                Problem(
                    f"placement {p.id} of {child.trial_id}",
                    "end_date",
                    p.end_date.isoformat(),
                    "PLC-021",
                    "an open placement (this one has ended; correct its end with a reason "
                    "instead: noim placement correct)",
                )
            )
        problems = _end_problems(PlacementChecker(s, today), p, child, site, on, reason)
        if problems:
            raise ValidationError(problems)
        p.end_date, p.end_reason = on, reason
        s.flush()
        return _view(s, p, child.trial_id)


def move_child(
    db: Database,
    actor: Actor,
    child_trial_id: str,
    on: date,
    placement_type: str,
    reason: str,
    carer_id: int | None = None,
    local_authority: str | None = None,
    today: date | None = None,
) -> MoveView:
    """Move a child: end its open placement on ``on`` for ``reason`` and start the next that day.

    One unit of work: either both happen or neither.  The child must have exactly one
    open placement (PLC-021).
    """
    actor.require(Capability.WRITE_TRIAL_DATA, "record placement moves")
    with db.write(actor) as s:
        child, _family, site = live_child_for(s, actor, child_trial_id, "move", "PLC-009")
        record = f"move of {child.trial_id}"
        open_now = _open_placements(s, child.id)
        if len(open_now) != 1:
            raise ValidationError(
                Problem(
                    record,
                    "placement",
                    ", ".join(f"{p.id} from {p.start_date}" for p in open_now) or "none open",
                    "PLC-021",
                    "exactly one open placement to end (record the first with "
                    "`noim placement add`; end extra ones with `noim placement end`)",
                )
            )
        current = open_now[0]
        checker = PlacementChecker(s, today)
        checker.load([carer_id])
        problems = _end_problems(checker, current, child, site, on, reason)
        problems += _start_problems(
            checker, record, child, site, on, placement_type, carer_id, local_authority
        )
        if problems:
            raise ValidationError(problems)
        current.end_date, current.end_reason = on, reason
        new = Placement(
            child_id=child.id,
            start_date=on,
            placement_type=placement_type,
            carer_id=carer_id,
            local_authority_id=checker.la_id(local_authority),
        )
        s.add(new)
        s.flush()
        return MoveView(_view(s, current, child.trial_id), _view(s, new, child.trial_id))


CORRECTABLE_PLACEMENT_FIELDS = (
    "start_date",
    "end_date",
    "placement_type",
    "end_reason",
    "carer_id",
    "local_authority",
)


def correct_placement(
    db: Database,
    actor: Actor,
    placement_id: int,
    changes: Mapping[str, Any],
    reason: str,
    today: date | None = None,
) -> PlacementView:
    """Correct a placement's dates, type, end reason, carer or local authority (audited, with a reason)."""
    actor.require(Capability.WRITE_TRIAL_DATA, "correct placements")
    reason = correction_reason(
        reason, f"placement {placement_id}", changes, CORRECTABLE_PLACEMENT_FIELDS, "PLC-023"
    )
    with db.write(actor, reason=reason) as s:
        p, child, site = _placement_for(s, actor, placement_id, "correct")
        _refuse_voided(p, "corrected")
        checker = PlacementChecker(s, today)
        stored_la = (
            s.scalar(select(LocalAuthority.code).where(LocalAuthority.id == p.local_authority_id))
            if p.local_authority_id
            else None
        )
        merged: dict[str, Any] = {
            "start_date": p.start_date,
            "end_date": p.end_date,
            "placement_type": p.placement_type,
            "end_reason": p.end_reason,
            "carer_id": p.carer_id,
            "local_authority": stored_la,
            **changes,
        }
        checker.load([merged["carer_id"]])
        problems = checker.problems(
            f"placement {p.id} of {child.trial_id}",
            site_id=site.id,
            site_code=site.code,
            date_of_birth=child.date_of_birth,
            **merged,
        )
        if problems:
            raise ValidationError(problems)
        for name, value in changes.items():
            if name == "local_authority":
                p.local_authority_id = checker.la_id(value)
            else:
                setattr(p, name, value)
        s.flush()
        return _view(s, p, child.trial_id)


def void_placement(db: Database, actor: Actor, placement_id: int, reason: str) -> PlacementView:
    """Void a placement recorded in error (it stays, marked void, with the reason)."""
    actor.require(Capability.WRITE_TRIAL_DATA, "void placements")
    reason = require_reason(reason, f"voiding placement {placement_id}")
    with db.write(actor, reason=reason) as s:
        p, child, _site = _placement_for(s, actor, placement_id, "void")
        mark_voided(p, reason)
        s.flush()
        return _view(s, p, child.trial_id)


# --------------------------------------------------------------------------- reads


def moves_by_child(s: Session, child_ids: Iterable[int] | None = None) -> dict[int, int]:
    """Placement moves per child id (placements after the first; live placements only).

    With ``child_ids``, every one of them is in the answer (0 when it has no placement);
    without, every child with at least one placement.  One query per 900 children.
    """
    counts: dict[int, int] = {}
    base = (
        select(Placement.child_id, func.count())
        .where(Placement.voided_at.is_(None))
        .group_by(Placement.child_id)
    )
    if child_ids is None:
        counts.update((c, moves(n)) for c, n in s.execute(base))
        return counts
    ids = sorted(set(child_ids))
    counts.update(dict.fromkeys(ids, 0))
    for start in range(0, len(ids), _CHUNK):
        stmt = base.where(Placement.child_id.in_(ids[start : start + _CHUNK]))
        counts.update((c, moves(n)) for c, n in s.execute(stmt))
    return counts


def list_placements(db: Database, actor: Actor, child_trial_id: str) -> ChildPlacements:
    """A child's placements in date order (voided ones marked) and its number of moves."""
    actor.require(Capability.READ_TRIAL_DATA, "read placements")
    with db.read(actor) as s:
        child, _family, _site = child_for(s, actor, child_trial_id, "read the placements of")
        rows = s.execute(
            select(Placement, LocalAuthority.code)
            .outerjoin(LocalAuthority, LocalAuthority.id == Placement.local_authority_id)
            .where(Placement.child_id == child.id)
            .order_by(Placement.start_date, Placement.id)
        ).all()
        views = tuple(
            PlacementView(
                p.id,
                child.trial_id,
                p.start_date,
                p.end_date,
                p.placement_type,
                p.carer_id,
                la,
                p.end_reason,
                p.voided_at is not None,
            )
            for p, la in rows
        )
        return ChildPlacements(
            child.trial_id,
            child.entered_care_on,
            views,
            moves_by_child(s, [child.id])[child.id],
        )
