"""The rules for registering families and adding children, checked set-based.

``FamilyChecker`` holds ONE implementation of each rule (FAM-001, FAM-002, CHD-001 to
CHD-005) used by ``noim family register`` / ``noim child add`` / ``noim child correct``
(one record) and by the ``families`` import (many rows): the sites, their local
authorities and the legal routes into care are loaded once (three small queries), so
checking a million rows costs no query per row.  ``next_site_seqs`` reserves the next
family sequence numbers of many sites at once, and ``schedule_late_joiners`` gives
children who join an already randomised family their follow-up visits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from noim.db.base import utcnow
from noim.db.models import Allocation, Child, DecisionType, Family, LocalAuthority, Site
from noim.domain.exceptions import NotFound, Problem
from noim.domain.legal import ANY_JURISDICTION
from noim.domain.participants import check_child


class FamilyChecker:
    """Family and child rules over data loaded once per unit of work (lazily, per table)."""

    def __init__(self, s: Session, today: date | None = None) -> None:
        self.s = s
        self.today = today or utcnow().date()
        self._sites: dict[str, Site] | None = None
        self._las: list[LocalAuthority] | None = None
        self._routes: list[DecisionType] | None = None

    # ----------------------------------------------------------------- reference data

    @property
    def sites(self) -> dict[str, Site]:
        """Every site by code."""
        if self._sites is None:
            self._sites = {x.code: x for x in self.s.scalars(select(Site).order_by(Site.code))}
        return self._sites

    def site(self, code: str) -> Site | None:
        return self.sites.get(code.strip().upper()) or self.sites.get(code.strip())

    def known_sites(self) -> str:
        return ", ".join(sorted(self.sites))

    def require_site(self, code: str) -> Site:
        """The site ``code``; ``NotFound`` listing the sites when there is none."""
        site = self.site(code)
        if site is None:
            raise NotFound(f"no site {code!r}; expected one of {self.known_sites()}")
        return site

    def local_authorities(self) -> list[LocalAuthority]:
        if self._las is None:
            self._las = list(self.s.scalars(select(LocalAuthority).order_by(LocalAuthority.id)))
        return self._las

    def local_authority(self, code: str) -> LocalAuthority | None:
        return next((la for la in self.local_authorities() if la.code == code), None)

    def _entry_routes(self) -> list[DecisionType]:
        if self._routes is None:
            self._routes = list(
                self.s.scalars(
                    select(DecisionType)
                    .where(DecisionType.entry_route)
                    .order_by(DecisionType.sort_order)
                )
            )
        return self._routes

    def entry_routes(self, jurisdiction: str) -> list[DecisionType]:
        """The legal routes into care a child may have in ``jurisdiction`` (CHD-005)."""
        return [
            d for d in self._entry_routes() if d.jurisdiction in (jurisdiction, ANY_JURISDICTION)
        ]

    # ----------------------------------------------------------------- rules

    def family_problems(
        self,
        record: str,
        site: Site,
        local_authority: str | None,
        in_care_proceedings: bool | None,
    ) -> tuple[list[Problem], int | None]:
        """Problems of a new family at ``site`` (FAM-001, FAM-002) and its local authority's id."""
        problems: list[Problem] = []
        la_id = None
        if local_authority is not None:
            la = self.local_authority(local_authority)
            if la is None or la.site_id != site.id:
                known = ", ".join(x.code for x in self.local_authorities() if x.site_id == site.id)
                problems.append(
                    Problem(
                        record,
                        "local_authority",
                        local_authority,
                        "FAM-001",
                        f"a local authority of site {site.code}: {known}",
                    )
                )
            else:
                la_id = la.id
        if site.requires_care_proceedings and in_care_proceedings is False:
            problems.append(
                Problem(
                    record,
                    "in_care_proceedings",
                    False,
                    "FAM-002",
                    f"a family in care proceedings (required at site {site.code})",
                )
            )
        return problems, la_id

    def legal_route_problems(
        self, record: str, code: str | None, jurisdiction: str
    ) -> list[Problem]:
        """CHD-005: ``code`` is a legal route into care in ``jurisdiction`` (None is fine)."""
        if code is None:
            return []
        allowed = [d.code for d in self.entry_routes(jurisdiction)]
        if code in allowed:
            return []
        return [
            Problem(
                record,
                "legal_route",
                code,
                "CHD-005",
                f"a legal route into care in {jurisdiction}: {', '.join(allowed)}",
            )
        ]

    def child_problems(
        self,
        record: str,
        date_of_birth: date,
        sex: str,
        entered_care_on: date,
        legal_route: str | None,
        jurisdiction: str | None,
    ) -> list[Problem]:
        """Problems of a child's details (CHD-001 to CHD-005; no CHD-005 without a jurisdiction)."""
        problems = check_child(record, date_of_birth, sex, entered_care_on, self.today)
        if jurisdiction is None:
            return problems
        return problems + self.legal_route_problems(record, legal_route, jurisdiction)


def lock_sites(s: Session, site_ids: Iterable[int]) -> None:
    """Lock the rows of ``site_ids`` until the unit of work ends (serialises ID allocation)."""
    ids = sorted(set(site_ids))
    if ids:
        s.execute(select(Site.id).where(Site.id.in_(ids)).with_for_update()).all()


def next_site_seqs(s: Session, site_ids: Iterable[int]) -> dict[int, int]:
    """The next free family sequence number of each site (one query; lock the sites first)."""
    ids = sorted(set(site_ids))
    out = dict.fromkeys(ids, 1)
    if ids:
        for site_id, top in s.execute(
            select(Family.site_id, func.max(Family.site_seq))
            .where(Family.site_id.in_(ids))
            .group_by(Family.site_id)
        ):
            out[site_id] = int(top or 0) + 1
    return out


def randomised_on(s: Session, family_ids: Iterable[int]) -> dict[int, date]:
    """The randomisation date of each of ``family_ids`` that is randomised."""
    ids = sorted(set(family_ids))
    out: dict[int, date] = {}
    for start in range(0, len(ids), 900):
        for fid, at in s.execute(
            select(Allocation.family_id, Allocation.randomised_at).where(
                Allocation.family_id.in_(ids[start : start + 900])
            )
        ):
            out[fid] = at.date()
    return out


def schedule_late_joiners(s: Session, children: Mapping[int, date]) -> int:
    """Schedule the visits of children (id -> their family's randomisation date) who joined late."""
    if not children:
        return 0
    from noim.services.setup import stored_definition
    from noim.services.visits import schedule_children

    definition = stored_definition(s)
    by_date: dict[date, list[Child]] = defaultdict(list)
    ids = sorted(children)
    for start in range(0, len(ids), 900):
        for child in s.scalars(select(Child).where(Child.id.in_(ids[start : start + 900]))):
            by_date[children[child.id]].append(child)
    return sum(schedule_children(s, definition, kids, on) for on, kids in by_date.items())
