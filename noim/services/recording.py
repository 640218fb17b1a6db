"""Small checks shared by the recording services (screening, people, safety, economics).

Each check returns a list of ``Problem`` so a service can collect every
problem of a write before refusing it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from noim.db.base import utcnow
from noim.db.models import Child, Family, Site
from noim.domain.exceptions import NotFound, Problem
from noim.domain.roles import Actor
from noim.services.checks import refuse_voided_child
from noim.services.families import child_for

R = TypeVar("R")
_S = TypeVar("_S", bound=Select[*tuple[Any, ...]])


def today() -> date:
    """Today's date in UTC (the clock every "not in the future" rule uses)."""
    return utcnow().date()


def site_by_code(s: Session, code: str) -> Site:
    """The site with ``code``; ``NotFound`` listing the known sites otherwise."""
    site = s.scalar(select(Site).where(Site.code == code.strip().upper()))
    if site is None:
        known = ", ".join(s.scalars(select(Site.code).order_by(Site.code)))
        raise NotFound(f"no site {code!r}; expected one of {known}")
    return site


def site_for(s: Session, actor: Actor, code: str, action: str) -> Site:
    """The site with ``code``, if ``actor`` may ``action`` there."""
    site = site_by_code(s, code)
    actor.require_site(site.id, site.code, action)
    return site


def scoped_site_ids(s: Session, actor: Actor, site: str | None, action: str) -> list[int] | None:
    """The site ids a list may show: ``site`` if given (checked), else the actor's sites.

    ``None`` means every site (roles that are not site-scoped, no ``site`` given).
    """
    if site is not None:
        return [site_for(s, actor, site, action).id]
    if actor.all_sites:
        return None
    return sorted(actor.site_ids)


def live_child_for(
    s: Session, actor: Actor, trial_id: str, action: str, rule: str
) -> tuple[Child, Family, Site]:
    """The child ``trial_id`` (site scope checked for ``action``), refused under ``rule`` if voided."""
    child, family, site = child_for(s, actor, trial_id, action)
    refuse_voided_child(child, rule)
    return child, family, site


def via_child(stmt: _S, child_id: Any) -> _S:
    """``stmt`` joined to the child ``child_id`` names, its family and the family's site."""
    return (
        stmt.join(Child, Child.id == child_id)
        .join(Family, Family.id == Child.family_id)
        .join(Site, Site.id == Family.site_id)
    )


def child_record_for(
    s: Session, actor: Actor, model: type[R], record_id: int, missing: str, action: str
) -> tuple[R, Child, Site]:
    """Record ``record_id`` of a child-owned ``model``, with its child and site, site scope checked.

    ``NotFound(missing)`` when there is no such record; ``action`` (which may name
    ``{child}``, the child's trial id) is what the site check says was refused.
    """
    table: Any = model
    row = s.execute(
        via_child(select(table, Child, Site), table.child_id).where(table.id == record_id)
    ).one_or_none()
    if row is None:
        raise NotFound(missing)
    record, child, site = row
    actor.require_site(site.id, site.code, action.format(child=child.trial_id))
    return record, child, site


def one_of(
    record: str, field: str, value: object, codes: tuple[str, ...], rule: str
) -> list[Problem]:
    """``value`` must be one of ``codes``."""
    if value in codes:
        return []
    return [Problem(record, field, value, rule, "one of " + ", ".join(codes))]


def text_given(
    record: str, field: str, value: str | None, rule: str, max_length: int | None = None
) -> list[Problem]:
    """``value`` must be non-blank text of at most ``max_length`` characters."""
    if value is None or not value.strip():
        limit = f" (at most {max_length} characters)" if max_length else ""
        return [Problem(record, field, value, rule, f"a non-empty text{limit}")]
    return short_enough(record, field, value, rule, max_length)


def short_enough(
    record: str, field: str, value: str | None, rule: str, max_length: int | None
) -> list[Problem]:
    """``value``, when given, must fit its column."""
    if value is not None and max_length is not None and len(value) > max_length:
        return [
            Problem(
                record,
                field,
                value,
                rule,
                f"at most {max_length} characters (got {len(value)})",
            )
        ]
    return []


def not_future(record: str, field: str, value: date | None, rule: str) -> list[Problem]:
    """``value``, when given, must not be after today."""
    if value is not None and value > today():
        return [
            Problem(record, field, value.isoformat(), rule, f"a date not after today ({today()})")
        ]
    return []


def not_before(
    record: str, field: str, value: date | None, bound: date | None, what: str, rule: str
) -> list[Problem]:
    """``value`` must not be before ``bound`` (``what`` names the bound, e.g. "date of birth")."""
    if value is not None and bound is not None and value < bound:
        return [
            Problem(record, field, value.isoformat(), rule, f"a date on or after {what} ({bound})")
        ]
    return []


def live(
    record: str, voided_at: datetime | None, rule: str, what: str | None = None
) -> list[Problem]:
    """The record (or the one it belongs to, ``what``) must not be voided."""
    if voided_at is None:
        return []
    target = what or "the record"
    return [
        Problem(
            record,
            "voided_at",
            voided_at.isoformat(timespec="seconds"),
            rule,
            f"{target} not voided",
        )
    ]
