"""Which rows of a ``families`` import are stored children, and the new children's numbers.

See ``noim.services.imports.families`` for the natural key this implements.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from noim.db.models import Child, Family, Site
from noim.services.imports.base import chunks
from noim.services.imports.reader import Cells

Key = tuple[date, str, date]


@dataclass(frozen=True)
class StoredFamily:
    id: int
    trial_id: str
    site_id: int
    site_code: str
    local_authority_id: int | None
    in_care_proceedings: bool | None
    voided: bool


@dataclass(frozen=True)
class StoredChild:
    id: int
    trial_id: str
    family_id: int
    family_trial_id: str
    child_number: int
    key: Key
    legal_route: str | None
    #: the family's local authority and care proceedings, as stored
    family_la: int | None
    family_icp: bool | None


@dataclass
class FamilyGroup:
    """The rows of one family: a new one (``family_ref``) or a registered one (``family_id``)."""

    #: "ref:<family_ref>" or "id:<family trial ID>"
    key: str
    label: str
    rows: list[int] = field(default_factory=list)
    site: Site | None = None
    family: StoredFamily | None = None
    la_id: int | None = None
    in_care_proceedings: bool | None = None


def stored_children(
    s: Session, groups: list[FamilyGroup], dobs: set[date]
) -> tuple[dict[tuple[int, Key], list[StoredChild]], dict[int, set[int]]]:
    """Live children of live families that rows may be (by site and key), and every
    registered family's used child numbers (voided children's too)."""
    cols = (
        Child.id,
        Child.trial_id,
        Child.family_id,
        Child.child_number,
        Child.date_of_birth,
        Child.sex,
        Child.entered_care_on,
        Child.legal_route_code,
        Family.site_id,
        Family.trial_id,
        Family.local_authority_id,
        Family.in_care_proceedings,
    )
    by_key: dict[tuple[int, Key], list[StoredChild]] = defaultdict(list)
    seen: set[int] = set()

    def add(*where: ColumnElement[bool]) -> None:
        stmt = select(*cols).join(Family, Family.id == Child.family_id).where(*live, *where)
        for r in s.execute(stmt):
            if r[0] not in seen:
                seen.add(r[0])
                child = StoredChild(
                    r[0], r[1], r[2], r[9], r[3], (r[4], r[5], r[6]), r[7], r[10], r[11]
                )
                by_key[(r[8], child.key)].append(child)

    live = (Child.voided_at.is_(None), Family.voided_at.is_(None))
    site_ids = sorted({g.site.id for g in groups if g.family is None and g.site is not None})
    for chunk in chunks(sorted(dobs)):
        if site_ids:
            add(Family.site_id.in_(site_ids), Child.date_of_birth.in_(chunk))
    family_ids = sorted({g.family.id for g in groups if g.family is not None})
    taken: dict[int, set[int]] = defaultdict(set)
    for chunk in chunks(family_ids):
        add(Child.family_id.in_(chunk))
        for fid, number in s.execute(
            select(Child.family_id, Child.child_number).where(Child.family_id.in_(chunk))
        ):
            taken[fid].add(number)
    for children in by_key.values():
        children.sort(key=lambda c: (c.family_id, c.child_number))
    return by_key, taken


class Matcher:
    """Works out, group by group, which rows are stored children and numbers the new ones."""

    def __init__(
        self,
        cells: Cells,
        keys: list[Key],
        numbers: list[int | None],
        routes: list[str | None],
        stored: dict[tuple[int, Key], list[StoredChild]],
        taken: dict[int, set[int]],
        la_codes: dict[int, str],
    ) -> None:
        self.cells, self.keys, self.numbers, self.routes = cells, keys, numbers, routes
        self.la_codes = la_codes
        #: rows refused by ``across_families``
        self.flagged: set[int] = set()
        self.stored, self.taken = stored, taken
        self.unchanged = 0
        self.matched_families: dict[str, str] = {}
        self.matched_children: dict[str, str] = {}
        #: group key -> [(row, child number)] of the children to add
        self.new_by_group: dict[str, list[tuple[int, int]]] = {}

    def _duplicates(self, g: FamilyGroup) -> list[int]:
        """The group's rows less those repeating a child (IMP-011) or a child number (IMP-067).

        Two rows with the same date of birth, sex and entry to care are one child unless
        both give a child number and the numbers differ (twins).
        """
        data, out = self.cells.data, []
        by_key: dict[Key, list[int]] = defaultdict(list)
        by_number: dict[int, int] = {}
        for i in g.rows:
            key, number = self.keys[i], self.numbers[i]
            same = next(
                (
                    j
                    for j in by_key[key]
                    if number is None or self.numbers[j] is None or self.numbers[j] == number
                ),
                None,
            )
            if same is not None:
                self.cells.problem(
                    i,
                    "date_of_birth",
                    key[0].isoformat(),
                    f"one row per child: row {data.line(same)} has a child of the same family "
                    "with the same date of birth, sex and entry to care (twins: give each a "
                    "different child_number)",
                    "IMP-011",
                )
                continue
            if number is not None and number in by_number:
                self.cells.problem(
                    i,
                    "child_number",
                    number,
                    f"a child number not used by another row of the family "
                    f"(row {data.line(by_number[number])})",
                    "IMP-067",
                )
                continue
            by_key[key].append(i)
            if number is not None:
                by_number[number] = i
            out.append(i)
        return out

    def across_families(self, groups: list[FamilyGroup]) -> None:
        """IMP-011 for a child of a new family that another family of the file also lists.

        The natural key (site, date of birth, sex, entry to care) must tell the families
        of a file apart, or a second import could not tell which stored family is which.
        """
        data = self.cells.data
        first: dict[tuple[int, Key], tuple[int, FamilyGroup]] = {}
        for g in groups:
            if g.site is None:
                continue
            for i in g.rows:
                j, other = first.setdefault((g.site.id, self.keys[i]), (i, g))
                if other is not g and (g.family is None or other.family is None):
                    self.flagged.add(i)
                    self.cells.problem(
                        i,
                        "date_of_birth",
                        self.keys[i][0].isoformat(),
                        f"one row per child: row {data.line(j)} (family {other.label}) has a "
                        "child at the same site with the same date of birth, sex and entry to "
                        "care; register one of the families with noim family register",
                        "IMP-011",
                    )

    def _candidates(self, site_id: int, i: int, family_id: int | None) -> list[StoredChild]:
        number = self.numbers[i]
        return [
            c
            for c in self.stored.get((site_id, self.keys[i]), [])
            if (number is None or c.child_number == number)
            and (family_id is None or c.family_id == family_id)
        ]

    def _same(self, i: int, child: StoredChild) -> None:
        self.unchanged += 1
        self.matched_children[self.cells.data.record(i)] = child.trial_id
        if self.routes[i] != child.legal_route:
            self.cells.problem(
                i,
                "legal_route",
                self.routes[i] or "",
                f"the stored legal route of child {child.trial_id} "
                f"({child.legal_route or 'none'}); correct stored data with a reason "
                "(noim child correct), not by importing over it",
                "IMP-010",
            )

    def match(self, g: FamilyGroup) -> None:
        assert g.site is not None
        rows = self._duplicates(g)
        if len(rows) < len(g.rows) or any(i in self.flagged for i in rows):
            return
        fixed = g.family.id if g.family is not None else None
        found = {i: self._candidates(g.site.id, i, fixed) for i in rows}
        if g.family is None and any(found.values()):
            families = set.intersection(*({c.family_id for c in cs} for cs in found.values()))
            if len(families) != 1:
                self._partial(g, found)
                return
            (fixed,) = families
        pairs: dict[int, StoredChild] = {}
        for i in rows:
            child = next(
                (c for c in found[i] if c.family_id == fixed and c not in pairs.values()), None
            )
            if child is not None:
                pairs[i] = child
        new = [i for i in rows if i not in pairs]
        if g.family is None and pairs and new:
            self._partial(g, found)
            return
        for i, child in pairs.items():
            self._same(i, child)
        if g.family is None and pairs:
            stored = next(iter(pairs.values()))
            self.matched_families[g.label] = stored.family_trial_id
            self._same_family(g, stored)
        if new:
            self.new_by_group[g.key] = self._numbers(g, new, self.taken.get(fixed or 0, set()))

    def _same_family(self, g: FamilyGroup, stored: StoredChild) -> None:
        """A stored family_ref group's local authority and care proceedings must agree."""
        data, first = self.cells.data, g.rows[0]
        la = self.la_codes.get(stored.family_la or 0)
        for column, mine, theirs, shown in (
            ("local_authority", g.la_id, stored.family_la, la),
            ("in_care_proceedings", g.in_care_proceedings, stored.family_icp, stored.family_icp),
        ):
            if mine != theirs:
                self.cells.problem(
                    first,
                    column,
                    data.column(column)[first],
                    f"{shown if shown is not None else 'an empty cell'}, as stored for family "
                    f"{stored.family_trial_id} (whose children these rows are); correct stored "
                    "data with a reason, not by importing over it",
                    "IMP-010",
                )

    def _numbers(self, g: FamilyGroup, new: list[int], taken: set[int]) -> list[tuple[int, int]]:
        """Child numbers of the new rows: as given, else the next free ones in file order."""
        given = {n for i in new if (n := self.numbers[i]) is not None}
        nxt = max(taken | given, default=0) + 1
        out = []
        for i in new:
            number = self.numbers[i]
            if number is not None and number in taken:
                self.cells.problem(
                    i,
                    "child_number",
                    number,
                    f"a child number not used by a stored child of family {g.label}",
                    "IMP-067",
                )
            if number is None:
                number, nxt = nxt, nxt + 1
                if number > 99:
                    self.cells.problem(
                        i, "child_number", number, "at most 99 children in a family", "IMP-067"
                    )
            out.append((i, number))
        return out

    def _partial(self, g: FamilyGroup, found: dict[int, list[StoredChild]]) -> None:
        data = self.cells.data
        matched = ", ".join(
            f"row {data.line(i)} is {cs[0].trial_id}" for i, cs in found.items() if cs
        )
        for i in g.rows:
            self.cells.problem(
                i,
                "family_ref",
                g.label,
                f"rows that are all new children or all children of ONE registered family "
                f"({matched}; the others are not); to add children to a registered family "
                "give its family_id instead of a family_ref",
                "IMP-066",
            )
