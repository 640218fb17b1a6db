"""Follow-up visits: scheduled at randomisation, listed for coordinators to chase."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from noim.db.audit import insert_rows
from noim.db.base import utcnow
from noim.db.models import Child, Family, FollowUpVisit, Site
from noim.db.session import Database
from noim.domain.exceptions import NotFound
from noim.domain.roles import Actor, Capability
from noim.domain.schedule import plan_visits, visit_status
from noim.domain.trialdef import TrialDefinition


def schedule_children(
    s: Session, definition: TrialDefinition, children: list[Child], randomised_on: date
) -> int:
    """Create the visits each child is due (skipping those it already has); returns how many."""
    have = {
        (v.child_id, v.timepoint_code)
        for v in s.scalars(
            select(FollowUpVisit).where(FollowUpVisit.child_id.in_([c.id for c in children]))
        )
    }
    rows = []
    for child in children:
        for v in plan_visits(definition.timepoints, child.entered_care_on, randomised_on):
            if (child.id, v.timepoint) not in have:
                rows.append(
                    {
                        "child_id": child.id,
                        "timepoint_code": v.timepoint,
                        "anchor_date": v.anchor_date,
                        "target_date": v.target_date,
                        "window_start": v.window_start,
                        "window_end": v.window_end,
                        "status": "scheduled",
                    }
                )
    insert_rows(s, FollowUpVisit, rows)
    return len(rows)


@dataclass(frozen=True)
class DueVisit:
    child: str
    family: str
    site: str
    timepoint: str
    target_date: date
    window_start: date
    window_end: date
    status: str


def due(
    db: Database,
    actor: Actor,
    site: str | None = None,
    within_days: int | None = None,
    today: date | None = None,
) -> list[DueVisit]:
    """Visits to chase (due or overdue, or opening within ``within_days``), soonest first."""
    actor.require(Capability.READ_TRIAL_DATA, "list follow-ups")
    today = today or utcnow().date()
    horizon = today + timedelta(days=within_days or 0)
    with db.read(actor) as s:
        stmt = (
            select(FollowUpVisit, Child.trial_id, Family.trial_id, Site.code)
            .join(Child, Child.id == FollowUpVisit.child_id)
            .join(Family, Family.id == Child.family_id)
            .join(Site, Site.id == Family.site_id)
            .where(
                FollowUpVisit.status == "scheduled",
                FollowUpVisit.voided_at.is_(None),
                Child.voided_at.is_(None),
                FollowUpVisit.window_start <= horizon,
            )
            .order_by(FollowUpVisit.window_end, FollowUpVisit.target_date, Child.trial_id)
        )
        if site is not None:
            site_row = s.scalar(select(Site).where(Site.code == site))
            if site_row is None:
                raise NotFound(f"no site {site!r}")
            actor.require_site(site_row.id, site_row.code, "list follow-ups")
            stmt = stmt.where(Family.site_id == site_row.id)
        elif not actor.all_sites:
            stmt = stmt.where(Family.site_id.in_(actor.site_ids))
        return [
            DueVisit(
                child=child,
                family=family,
                site=site_code,
                timepoint=v.timepoint_code,
                target_date=v.target_date,
                window_start=v.window_start,
                window_end=v.window_end,
                status=visit_status(v.status, v.window_start, v.window_end, v.completed_on, today),
            )
            for v, child, family, site_code in s.execute(stmt)
        ]
