"""What every extract shares: who may extract, the censoring date, and the children in scope.

:func:`cohort` reads every randomised child with its allocation (arm masked for blinded
roles), its analysis-set flags and its end of follow-up in a fixed number of set-based
statements (one per table it aggregates), whatever the number of families.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, func, null, select
from sqlalchemy.orm import Session

from noim.db.models import (
    Allocation,
    Arm,
    Child,
    Family,
    FollowUpVisit,
    LossToFollowUp,
    PostRandomisationExclusion,
    ProtocolDeviation,
    Site,
    Withdrawal,
)
from noim.domain.durations import months_between
from noim.domain.exceptions import NoimError
from noim.domain.roles import Actor, Capability

#: a withdrawal's breadth: the widest live one is the child's level
WITHDRAWAL_ORDER = {"intervention": 1, "follow_up": 2, "data": 3}


class FreezeNotSupported(NoimError):
    """``freeze=`` was given with something extraction from a freeze cannot honour
    (an ``as_of`` as well: a freeze is read as of the date it was made)."""


@dataclass(frozen=True)
class Cutoff:
    """The date the data are read as of, or the data freeze they are read from."""

    as_of: date
    freeze: int | None = None

    @property
    def day_after(self) -> datetime:
        """The first instant after ``as_of`` (UTC), for timestamps."""
        return datetime.combine(self.as_of + timedelta(days=1), time(), tzinfo=UTC)


def begin(actor: Actor, what: str, freeze: object | None, as_of: date | None) -> Cutoff:
    """Check the actor may extract and resolve the censoring date."""
    actor.require(Capability.ANALYSE, f"extract the {what} analysis dataset")
    if freeze is not None:
        if as_of is not None:
            raise FreezeNotSupported(
                f"freeze={freeze!r} and as_of={as_of.isoformat()}: a freeze is read as of the "
                "date it was made; expected one of freeze= or as_of="
            )
        if isinstance(freeze, bool) or not isinstance(freeze, int | str):
            raise FreezeNotSupported(f"freeze={freeze!r}: expected a freeze id (an integer)")
        try:
            return Cutoff(date.today(), int(freeze))
        except ValueError:
            raise FreezeNotSupported(
                f"freeze={freeze!r}: expected a freeze id (an integer)"
            ) from None
    return Cutoff(as_of if as_of is not None else date.today())


def sees_arm(actor: Actor) -> bool:
    """The same rule as the services: the arm for SEE_ARM roles, else the masked code."""
    return actor.can(Capability.SEE_ARM)


@dataclass
class Kid:
    """One child in scope, with what every extract needs about it."""

    id: int
    child_id: str
    family_id: str
    family_pk: int
    site: str
    arm: str
    arm_label: str | None
    stratum: str
    factors: dict[str, Any]
    sex: str
    date_of_birth: date
    entered_care_on: date
    randomised_on: date
    joined_after_randomisation: bool
    family_voided: bool
    end_of_follow_up: date
    end_reason: str
    withdrawn_level: str | None
    withdrawn_on: date | None
    lost: bool
    excluded: bool
    major_deviation: bool

    @property
    def age_at_entry_months(self) -> int:
        return months_between(self.date_of_birth, self.entered_care_on)

    @property
    def itt(self) -> bool:
        return not self.family_voided and self.withdrawn_level != "data"

    @property
    def per_protocol(self) -> bool:
        return (
            self.itt
            and not self.excluded
            and not self.major_deviation
            and self.withdrawn_level is None
        )


def scope_ids(actor: Actor, cutoff: Cutoff) -> Select[Any]:
    """The ids of the children in scope: live children of families randomised by ``as_of``
    (the actor's sites only, for site-scoped roles)."""
    stmt = (
        select(Child.id)
        .join(Family, Family.id == Child.family_id)
        .join(Allocation, Allocation.family_id == Family.id)
        .where(Child.voided_at.is_(None), Allocation.randomised_at < cutoff.day_after)
    )
    if not actor.all_sites:
        stmt = stmt.where(Family.site_id.in_(sorted(actor.site_ids)))
    return stmt


def _on_or_before(column: Any, cutoff: Cutoff) -> Any:
    return column <= cutoff.as_of


def cohort(s: Session, actor: Actor, cutoff: Cutoff) -> list[Kid]:
    """Every child in scope, ordered by child trial ID (6 statements)."""
    ids = scope_ids(actor, cutoff)
    masked = not sees_arm(actor)
    stmt = (
        select(
            Child.id,
            Child.trial_id,
            Family.trial_id,
            Family.id,
            Site.code,
            Allocation.masked_code if masked else Allocation.arm_code,
            null() if masked else Arm.name,  # blinded roles never fetch the arm
            Allocation.stratum,
            Allocation.factors,
            Child.sex,
            Child.date_of_birth,
            Child.entered_care_on,
            Allocation.randomised_at,
            Child.joined_after_randomisation,
            Family.voided_at.is_not(None),
        )
        .join(Family, Family.id == Child.family_id)
        .join(Site, Site.id == Family.site_id)
        .join(Allocation, Allocation.family_id == Family.id)
        .where(Child.id.in_(ids))
        .order_by(Child.trial_id)
    )
    if not masked:
        stmt = stmt.join(Arm, Arm.code == Allocation.arm_code)
    rows = s.execute(stmt).all()
    # the widest live withdrawal by as_of (ties: the earliest)
    withdrawals: dict[int, tuple[str, date]] = {}
    stops: dict[int, date] = {}  # follow-up ends at the first withdrawal from follow-up or data
    for cid, level, on in s.execute(
        select(Withdrawal.child_id, Withdrawal.level, Withdrawal.withdrawn_on)
        .where(
            Withdrawal.child_id.in_(ids),
            Withdrawal.voided_at.is_(None),
            _on_or_before(Withdrawal.withdrawn_on, cutoff),
        )
        .order_by(Withdrawal.withdrawn_on, Withdrawal.id)
    ):
        if level in ("follow_up", "data"):
            stops.setdefault(cid, on)
        held = withdrawals.get(cid)
        if held is None or WITHDRAWAL_ORDER[level] > WITHDRAWAL_ORDER[held[0]]:
            withdrawals[cid] = (level, on)
    lost: dict[int, date] = {}
    for cid, declared, last_contact in s.execute(
        select(
            LossToFollowUp.child_id, LossToFollowUp.declared_on, LossToFollowUp.last_contact_on
        ).where(
            LossToFollowUp.child_id.in_(ids),
            LossToFollowUp.voided_at.is_(None),
            _on_or_before(LossToFollowUp.declared_on, cutoff),
        )
    ):
        on = last_contact if last_contact is not None else declared
        lost[cid] = min(on, lost.get(cid, on))
    schedule_end = dict(
        s.execute(
            select(FollowUpVisit.child_id, func.max(FollowUpVisit.window_end))
            .where(FollowUpVisit.child_id.in_(ids), FollowUpVisit.voided_at.is_(None))
            .group_by(FollowUpVisit.child_id)
        ).all()
    )
    family_ids = select(Child.family_id).where(Child.id.in_(ids))
    excluded_children: set[int] = set()
    excluded_families: set[int] = set()
    for fid, one in s.execute(
        select(PostRandomisationExclusion.family_id, PostRandomisationExclusion.child_id).where(
            PostRandomisationExclusion.family_id.in_(family_ids),
            PostRandomisationExclusion.voided_at.is_(None),
            _on_or_before(PostRandomisationExclusion.identified_on, cutoff),
        )
    ):
        if one is None:
            excluded_families.add(fid)
        else:
            excluded_children.add(one)
    deviant_children: set[int] = set()
    deviant_families: set[int] = set()
    for fid, one in s.execute(
        select(ProtocolDeviation.family_id, ProtocolDeviation.child_id).where(
            ProtocolDeviation.family_id.in_(family_ids),
            ProtocolDeviation.voided_at.is_(None),
            ProtocolDeviation.severity == "major",
            _on_or_before(ProtocolDeviation.occurred_on, cutoff),
        )
    ):
        if one is None:
            deviant_families.add(fid)
        else:
            deviant_children.add(one)

    kids = []
    for r in rows:
        cid, fpk = r[0], r[3]
        ends = [(cutoff.as_of, "as_of")]
        if cid in schedule_end:
            ends.append((schedule_end[cid], "schedule_end"))
        if cid in lost:
            ends.append((lost[cid], "lost"))
        if cid in stops:
            ends.append((stops[cid], "withdrawal"))
        # the earliest date; on a tie the more specific reason (listed later) wins
        end_on = min(d for d, _ in ends)
        end_reason = [why for d, why in ends if d == end_on][-1]
        withdrawal = withdrawals.get(cid)
        kids.append(
            Kid(
                id=cid,
                child_id=r[1],
                family_id=r[2],
                family_pk=fpk,
                site=r[4],
                arm=r[5],
                arm_label=None if masked else r[6],
                stratum=r[7],
                factors=dict(r[8] or {}),
                sex=r[9],
                date_of_birth=r[10],
                entered_care_on=r[11],
                randomised_on=r[12].date(),
                joined_after_randomisation=bool(r[13]),
                family_voided=bool(r[14]),
                end_of_follow_up=end_on,
                end_reason=end_reason,
                withdrawn_level=withdrawal[0] if withdrawal else None,
                withdrawn_on=withdrawal[1] if withdrawal else None,
                lost=cid in lost,
                excluded=cid in excluded_children or fpk in excluded_families,
                major_deviation=cid in deviant_children or fpk in deviant_families,
            )
        )
    return kids


def analysable(kids: list[Kid]) -> list[Kid]:
    """The children whose data may be used: all but those withdrawn from use of data."""
    return [k for k in kids if k.withdrawn_level != "data"]


def keys(kids: list[Kid], masked: bool) -> dict[str, list[Any]]:
    """The key columns every dataset starts with."""
    return {
        "child_id": [k.child_id for k in kids],
        "family_id": [k.family_id for k in kids],
        "site": [k.site for k in kids],
        "arm": [k.arm for k in kids],
        "arm_masked": [masked] * len(kids),
    }
