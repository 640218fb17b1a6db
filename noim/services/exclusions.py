"""Post-randomisation exclusions: a randomised family (or one child) found ineligible.

The allocation stays and nothing is deleted: an exclusion is a record of its own,
and the excluded children's unfinished visits become not required (audited, with
the exclusion as the reason).  Coordinators of the family's site and
administrators record exclusions (the roles that write trial data).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from noim.db.base import utcnow
from noim.db.models import Allocation, Child, Family, PostRandomisationExclusion
from noim.db.session import Database
from noim.domain.exceptions import Problem, ValidationError
from noim.domain.roles import Actor, Capability
from noim.services.checks import require_reason
from noim.services.families import child_for, family_for
from noim.services.visits import mark_not_required


@dataclass(frozen=True)
class ExclusionView:
    family: str
    #: None when the whole family is excluded
    child: str | None
    identified_on: date
    reason: str
    children: tuple[str, ...]
    visits_not_required: int


def exclude_child(
    db: Database,
    actor: Actor,
    child_trial_id: str,
    identified_on: date,
    reason: str,
    today: date | None = None,
) -> ExclusionView:
    """Record that a randomised child was found ineligible on ``identified_on``."""
    actor.require(Capability.WRITE_TRIAL_DATA, "record post-randomisation exclusions")
    reason = require_reason(reason, f"excluding child {child_trial_id}")
    why = f"excluded after randomisation (identified {identified_on}): {reason}"
    with db.write(actor, reason=why) as s:
        child, family, _site = child_for(s, actor, child_trial_id, "exclude")
        return _exclude(s, actor, family, child, identified_on, reason, why, today)


def exclude_family(
    db: Database,
    actor: Actor,
    family_trial_id: str,
    identified_on: date,
    reason: str,
    today: date | None = None,
) -> ExclusionView:
    """Record that a randomised family was found ineligible on ``identified_on``."""
    actor.require(Capability.WRITE_TRIAL_DATA, "record post-randomisation exclusions")
    reason = require_reason(reason, f"excluding family {family_trial_id}")
    why = f"family excluded after randomisation (identified {identified_on}): {reason}"
    with db.write(actor, reason=why) as s:
        family, _site = family_for(s, actor, family_trial_id, "exclude")
        return _exclude(s, actor, family, None, identified_on, reason, why, today)


def _exclude(
    s: Session,
    actor: Actor,
    family: Family,
    child: Child | None,
    identified_on: date,
    reason: str,
    why: str,
    today: date | None,
) -> ExclusionView:
    today = today or utcnow().date()
    record = f"exclusion of {'child ' + child.trial_id if child else 'family ' + family.trial_id}"
    problems: list[Problem] = []
    if family.voided_at is not None or (child is not None and child.voided_at is not None):
        problems.append(
            Problem(record, "voided_at", "voided", "VIS-020", "a family and child not voided")
        )
    allocation = s.scalar(select(Allocation).where(Allocation.family_id == family.id))
    if allocation is None:
        problems.append(
            Problem(
                record,
                "family",
                "not randomised",
                "VIS-021",
                "a randomised family (before randomisation, record the child ineligible "
                "or void the family instead)",
            )
        )
    elif identified_on < allocation.randomised_at.date():
        problems.append(
            Problem(
                record,
                "identified_on",
                identified_on.isoformat(),
                "VIS-022",
                f"a date on or after randomisation ({allocation.randomised_at.date()})",
            )
        )
    if identified_on > today:
        problems.append(
            Problem(
                record,
                "identified_on",
                identified_on.isoformat(),
                "VIS-023",
                f"a date not after today ({today})",
            )
        )
    earlier = s.scalar(
        select(PostRandomisationExclusion).where(
            PostRandomisationExclusion.family_id == family.id,
            PostRandomisationExclusion.voided_at.is_(None),
            or_(
                PostRandomisationExclusion.child_id.is_(None),
                PostRandomisationExclusion.child_id == (child.id if child else None),
            ),
        )
    )
    if earlier is not None:
        who = "the family" if earlier.child_id is None else "the child"
        problems.append(
            Problem(
                record,
                "identified_on",
                identified_on.isoformat(),
                "VIS-024",
                f"a family or child not already excluded ({who} was excluded, identified "
                f"{earlier.identified_on})",
            )
        )
    if problems:
        raise ValidationError(problems)
    if child is not None:
        children = [child]
    else:
        children = list(
            s.scalars(
                select(Child)
                .where(Child.family_id == family.id, Child.voided_at.is_(None))
                .order_by(Child.child_number)
            )
        )
    s.add(
        PostRandomisationExclusion(
            family_id=family.id,
            child_id=child.id if child else None,
            identified_on=identified_on,
            reason=reason,
            decided_by_id=actor.user_id,
        )
    )
    s.flush()
    ended = mark_not_required(s, [c.id for c in children], why)
    return ExclusionView(
        family=family.trial_id,
        child=child.trial_id if child else None,
        identified_on=identified_on,
        reason=reason,
        children=tuple(c.trial_id for c in children),
        visits_not_required=ended,
    )
