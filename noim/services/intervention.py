"""Receipt of the allocated intervention: one current record per randomised family.

Randomisation is by family, so receipt is recorded per family: whether it received the
service it was allocated to (the infant mental-health service or services as usual),
the date that service started (first session or first contact) when it did, and a coded
reason (``noim.domain.codes.INTERVENTION_NOT_RECEIVED_REASONS``, with details for
``other``) when it did not.  A correction voids the current record with the correction's
reason and adds the corrected one (which names the record it corrects), in one audited
unit of work; a record entered in error is voided with ``noim void intervention_receipts``.

The rules (RCV-002 to RCV-010) live in ``ReceiptChecker``, shared with the
``intervention`` import kind (``noim.services.imports.intervention``).

Who may read: the record names the allocated service's start and, in its details, may name
the service, so only roles that see the arm read it (coordinators of the family's site,
administrators, the unblinded statistician); blinded roles are refused.  Writing needs
``write_trial_data`` (coordinators at their own sites, administrators).  The analysis
datasets carry only the coded fields (``noim.extract.children``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from noim.db.base import utcnow
from noim.db.models import Allocation, Family, InterventionReceipt, Site, User
from noim.db.session import Database
from noim.domain.codes import INTERVENTION_NOT_RECEIVED_LABELS, INTERVENTION_NOT_RECEIVED_REASONS
from noim.domain.exceptions import NotFound, Problem, ValidationError
from noim.domain.roles import Actor, Capability
from noim.services.checks import require_reason
from noim.services.families import family_for
from noim.services.family_rules import FamilyChecker

__all__ = [
    "RECEIPT_STATUSES",
    "FamilyReceipt",
    "ReceiptChecker",
    "ReceiptRow",
    "ReceiptView",
    "Values",
    "clean",
    "get_receipt",
    "list_receipts",
    "record_receipt",
]

#: a randomised family's receipt status in lists
RECEIPT_STATUSES = ("received", "not_received", "not_recorded")

#: the stored values a correction compares: received, started_on, reason, details
Values = tuple[bool, date | None, str | None, str | None]


@dataclass(frozen=True)
class ReceiptView:
    """One receipt record (current or replaced)."""

    id: int
    family: str
    received: bool
    started_on: date | None
    reason: str | None
    reason_label: str | None
    details: str | None
    recorded_at: datetime
    recorded_by: str
    corrects: int | None
    voided: bool
    void_reason: str | None


@dataclass(frozen=True)
class FamilyReceipt:
    """A randomised family's receipt: the current record (if any) and every earlier one."""

    family: str
    site: str
    randomised_on: date
    status: str
    current: ReceiptView | None
    history: tuple[ReceiptView, ...]


@dataclass(frozen=True)
class ReceiptRow:
    """One randomised family in a list: its receipt status and the current record's values."""

    family: str
    site: str
    randomised_on: date
    status: str
    started_on: date | None
    reason: str | None
    record_id: int | None


# --------------------------------------------------------------------------- the rules


class ReceiptChecker:
    """The receipt rules, shared by ``record_receipt`` and the ``intervention`` import.

    ``load`` reads, for many families at once (two queries per 900 families), the date
    each was randomised and its live receipt record.
    """

    def __init__(self, s: Session, today: date | None = None) -> None:
        self.s = s
        self.today = today or utcnow().date()
        self.randomised_on: dict[int, date] = {}
        #: family id -> (record id, stored values) of its live record
        self.live: dict[int, tuple[int, Values]] = {}

    def load(self, family_ids: Iterable[int]) -> None:
        ids = sorted(set(family_ids))
        for start in range(0, len(ids), 900):
            chunk = ids[start : start + 900]
            for fid, at in self.s.execute(
                select(Allocation.family_id, Allocation.randomised_at).where(
                    Allocation.family_id.in_(chunk)
                )
            ):
                self.randomised_on[fid] = at.date()
            for r in self.s.execute(
                select(
                    InterventionReceipt.family_id,
                    InterventionReceipt.id,
                    InterventionReceipt.received,
                    InterventionReceipt.started_on,
                    InterventionReceipt.reason,
                    InterventionReceipt.details,
                ).where(
                    InterventionReceipt.family_id.in_(chunk),
                    InterventionReceipt.voided_at.is_(None),
                )
            ):
                self.live[r[0]] = (r[1], (bool(r[2]), r[3], r[4], r[5]))

    def problems(
        self,
        record: str,
        *,
        family_id: int,
        family_trial_id: str,
        received: bool | None,
        started_on: date | None,
        reason: str | None,
        details: str | None,
    ) -> list[Problem]:
        """Every rule the values break (RCV-002 to RCV-007); ``received`` None was refused
        by the caller (RCV-011)."""
        out: list[Problem] = []
        randomised = self.randomised_on.get(family_id)
        if randomised is None:
            out.append(
                Problem(
                    record,
                    "family_id",
                    family_trial_id,
                    "RCV-002",
                    f"a randomised family; {family_trial_id} has not been randomised",
                )
            )
        if received is None:
            return out
        if received and started_on is None:
            out.append(
                Problem(
                    record,
                    "started_on",
                    None,
                    "RCV-003",
                    "the date the allocated service started (first session or first contact)",
                )
            )
        if not received and started_on is not None:
            out.append(
                Problem(
                    record,
                    "started_on",
                    started_on.isoformat(),
                    "RCV-003",
                    "no start date for a family that did not receive the allocated service",
                )
            )
        if started_on is not None and randomised is not None and started_on < randomised:
            out.append(
                Problem(
                    record,
                    "started_on",
                    started_on.isoformat(),
                    "RCV-004",
                    f"a date on or after the family's randomisation ({randomised})",
                )
            )
        if started_on is not None and started_on > self.today:
            out.append(
                Problem(
                    record,
                    "started_on",
                    started_on.isoformat(),
                    "RCV-005",
                    f"a date not after today ({self.today})",
                )
            )
        if received and reason is not None:
            out.append(
                Problem(
                    record,
                    "reason",
                    reason,
                    "RCV-006",
                    "no reason for a family that received the allocated service",
                )
            )
        if not received and reason not in INTERVENTION_NOT_RECEIVED_REASONS:
            out.append(
                Problem(
                    record,
                    "reason",
                    reason,
                    "RCV-006",
                    "why the allocated service was not received: one of "
                    + ", ".join(INTERVENTION_NOT_RECEIVED_REASONS),
                )
            )
        if received and details is not None:
            out.append(
                Problem(
                    record,
                    "details",
                    details,
                    "RCV-007",
                    "no details for a family that received the allocated service",
                )
            )
        if not received and reason == "other" and details is None:
            out.append(Problem(record, "details", None, "RCV-007", "details of the reason 'other'"))
        return out

    def current_problems(
        self,
        record: str,
        *,
        family_id: int,
        family_trial_id: str,
        values: Values,
        correcting: bool,
    ) -> list[Problem]:
        """RCV-008 (a second live record), RCV-009 (nothing to correct), RCV-010 (a
        correction that changes nothing)."""
        live = self.live.get(family_id)
        if not correcting and live is not None:
            return [
                Problem(
                    record,
                    "family_id",
                    family_trial_id,
                    "RCV-008",
                    f"no live receipt record for {family_trial_id} (record {live[0]} is "
                    "current); correct it with a reason (--correct REASON) instead",
                )
            ]
        if correcting and live is None:
            return [
                Problem(
                    record,
                    "family_id",
                    family_trial_id,
                    "RCV-009",
                    f"a live receipt record of {family_trial_id} to correct (there is none; "
                    "record one without --correct)",
                )
            ]
        if correcting and live is not None and live[1] == values:
            return [
                Problem(
                    record,
                    "-",
                    _describe(values),
                    "RCV-010",
                    f"a correction that changes record {live[0]} (it already says this)",
                )
            ]
        return []


def clean(text: str | None) -> str | None:
    """Stripped text, None when empty."""
    if text is None:
        return None
    return text.strip() or None


def _describe(values: Values) -> str:
    received, started_on, reason, details = values
    if received:
        return f"received, started {started_on}"
    return f"not received ({reason}{': ' + details if details else ''})"


def reason_label(reason: str | None) -> str | None:
    return INTERVENTION_NOT_RECEIVED_LABELS.get(reason) if reason else None


# --------------------------------------------------------------------------- writes


def record_receipt(
    db: Database,
    actor: Actor,
    family_trial_id: str,
    *,
    received: bool,
    started_on: date | None = None,
    reason: str | None = None,
    details: str | None = None,
    correct: str | None = None,
) -> ReceiptView:
    """Record whether the randomised family received its allocated intervention.

    ``correct`` (the reason for a correction) replaces the current record: it is voided
    with that reason and the new record names it (``corrects``), in one unit of work.
    Without ``correct`` a family that already has a live record is refused (RCV-008).
    """
    actor.require(Capability.WRITE_TRIAL_DATA, "record receipt of the allocated intervention")
    fam = family_trial_id.strip().upper()
    why = (
        require_reason(correct, f"correcting the intervention receipt of family {fam}")
        if correct is not None
        else None
    )
    reason, details = clean(reason), clean(details)
    record = f"intervention receipt of family {fam}"
    audit_reason = f"correction of the intervention receipt of family {fam}: {why}" if why else None
    with db.write(actor, reason=audit_reason) as s:
        family, _site = family_for(s, actor, fam, "record intervention receipt for")
        if family.voided_at is not None:
            raise ValidationError(
                Problem(record, "family_id", fam, "RCV-001", "a family whose record is not voided")
            )
        checker = ReceiptChecker(s)
        checker.load([family.id])
        values: Values = (received, started_on, reason, details)
        problems = checker.problems(
            record,
            family_id=family.id,
            family_trial_id=family.trial_id,
            received=received,
            started_on=started_on,
            reason=reason,
            details=details,
        )
        problems += checker.current_problems(
            record,
            family_id=family.id,
            family_trial_id=family.trial_id,
            values=values,
            correcting=why is not None,
        )
        if problems:
            raise ValidationError(problems)
        corrects: int | None = None
        if why is not None:
            corrects = checker.live[family.id][0]
            old = s.get_one(InterventionReceipt, corrects)
            old.voided_at, old.void_reason = utcnow(), f"corrected: {why}"
            s.flush()  # the live-record index must see the old one voided first
        row = InterventionReceipt(
            family_id=family.id,
            received=received,
            started_on=started_on,
            reason=reason,
            details=details,
            recorded_at=utcnow(),
            recorded_by_id=actor.user_id,
            corrects_id=corrects,
        )
        s.add(row)
        s.flush()
        return _view(row, family.trial_id, actor.name)


# --------------------------------------------------------------------------- reads


def _require_read(actor: Actor) -> None:
    actor.require(Capability.READ_TRIAL_DATA, "read intervention receipt records")
    actor.require(
        Capability.SEE_ARM,
        "read intervention receipt records (the start of the allocated service and the "
        "details can reveal the arm; blinded roles get the coded fields in the analysis "
        "datasets instead)",
    )


def _view(row: InterventionReceipt, family: str, recorded_by: str) -> ReceiptView:
    return ReceiptView(
        id=row.id,
        family=family,
        received=bool(row.received),
        started_on=row.started_on,
        reason=row.reason,
        reason_label=reason_label(row.reason),
        details=row.details,
        recorded_at=row.recorded_at,
        recorded_by=recorded_by,
        corrects=row.corrects_id,
        voided=row.voided_at is not None,
        void_reason=row.void_reason,
    )


def _status(current: ReceiptView | None) -> str:
    if current is None:
        return "not_recorded"
    return "received" if current.received else "not_received"


def get_receipt(db: Database, actor: Actor, family_trial_id: str) -> FamilyReceipt:
    """The family's current receipt record and its history (newest first)."""
    _require_read(actor)
    with db.read(actor) as s:
        family, site = family_for(s, actor, family_trial_id, "read intervention receipt of")
        randomised_at = s.scalar(
            select(Allocation.randomised_at).where(Allocation.family_id == family.id)
        )
        if randomised_at is None:
            raise NotFound(
                f"family {family.trial_id} has not been randomised: no intervention receipt"
            )
        rows = s.execute(
            select(InterventionReceipt, User.name)
            .join(User, User.id == InterventionReceipt.recorded_by_id)
            .where(InterventionReceipt.family_id == family.id)
            .order_by(InterventionReceipt.id.desc())
        ).all()
        views = tuple(_view(r, family.trial_id, name) for r, name in rows)
        current = next((v for v in views if not v.voided), None)
        return FamilyReceipt(
            family=family.trial_id,
            site=site.code,
            randomised_on=randomised_at.date(),
            status=_status(current),
            current=current,
            history=tuple(v for v in views if v is not current),
        )


def list_receipts(
    db: Database, actor: Actor, site: str | None = None, status: str | None = None
) -> list[ReceiptRow]:
    """Every randomised live family you may see with its receipt status (one query)."""
    _require_read(actor)
    if status is not None and status not in RECEIPT_STATUSES:
        raise ValidationError(
            Problem(
                "intervention receipt list",
                "status",
                status,
                "RCV-011",
                "one of " + ", ".join(RECEIPT_STATUSES),
            )
        )
    live = aliased(InterventionReceipt)
    stmt = (
        select(
            Family.trial_id,
            Site.code,
            Site.id,
            Allocation.randomised_at,
            live.id,
            live.received,
            live.started_on,
            live.reason,
        )
        .join(Site, Site.id == Family.site_id)
        .join(Allocation, Allocation.family_id == Family.id)
        .outerjoin(live, (live.family_id == Family.id) & live.voided_at.is_(None))
        .where(Family.voided_at.is_(None))
        .order_by(Family.trial_id)
    )
    out: list[ReceiptRow] = []
    with db.read(actor) as s:
        if site is not None:
            site_row = FamilyChecker(s).require_site(site)
            actor.require_site(site_row.id, site_row.code, "list intervention receipts")
            stmt = stmt.where(Family.site_id == site_row.id)
        elif not actor.all_sites:
            stmt = stmt.where(Family.site_id.in_(sorted(actor.site_ids)))
        for fam, code, _sid, at, rid, received, started, why in s.execute(stmt):
            state = "not_recorded" if rid is None else ("received" if received else "not_received")
            if status is not None and state != status:
                continue
            out.append(ReceiptRow(fam, code, at.date(), state, started, why, rid))
    return out
