"""Import kind ``families``: new families and their children, one row per child.

Columns: ``date_of_birth, sex, entered_care_on`` and optionally ``legal_route`` and
``child_number`` (the child); and for the family EITHER ``family_ref`` (a name local to
the file grouping the rows of a NEW family) with ``site``, ``local_authority`` and
``in_care_proceedings``, OR ``family_id`` (the trial ID of a registered family, to add
children to it).  The rules are those of ``noim family register`` and ``noim child add``
(``FamilyChecker``).  New families get the next trial IDs of their site, in the order
they first appear in the file; children are numbered 1, 2 ... in file order unless
``child_number`` says otherwise.

Already stored (the natural key; families have no column for the file's reference):
a row is a stored child when a live child of a live family at the same site has the
same date of birth, sex and date of entry to care (and child number when the row gives
one).  A ``family_ref`` group is already stored when EVERY row of the group is a stored
child of ONE registered family (it may have more children); when only some rows match,
or they match children of different families, the group is refused (IMP-066).  Children
of one family with the same date of birth, sex and entry date (twins) need distinct
``child_number`` s, otherwise the second row is a duplicate (IMP-011).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from noim.db.audit import insert_rows
from noim.db.base import utcnow
from noim.db.models import Child, Family, Site
from noim.domain import trial_ids
from noim.domain.roles import Actor
from noim.services.family_rules import (
    FamilyChecker,
    lock_sites,
    next_site_seqs,
    randomised_on,
    schedule_late_joiners,
)
from noim.services.imports.base import ImportContext, KindBase, Plan, chunks
from noim.services.imports.reader import Cells, CsvData

_Key = tuple[date, str, date]


@dataclass(frozen=True)
class _StoredFamily:
    id: int
    trial_id: str
    site_id: int
    site_code: str
    local_authority_id: int | None
    in_care_proceedings: bool | None
    voided: bool


@dataclass(frozen=True)
class _StoredChild:
    id: int
    trial_id: str
    family_id: int
    family_trial_id: str
    child_number: int
    key: _Key
    legal_route: str | None
    #: the family's local authority and care proceedings, as stored
    family_la: int | None
    family_icp: bool | None


@dataclass
class _Group:
    """The rows of one family: a new one (``family_ref``) or a registered one (``family_id``)."""

    #: "ref:<family_ref>" or "id:<family trial ID>"
    key: str
    label: str
    rows: list[int] = field(default_factory=list)
    site: Site | None = None
    family: _StoredFamily | None = None
    la_id: int | None = None
    in_care_proceedings: bool | None = None


class FamiliesKind(KindBase):
    name = "families"
    description = "families and their children (as `noim family register` and `noim child add`)"
    required: tuple[str, ...] = ("date_of_birth", "sex", "entered_care_on")
    optional: tuple[str, ...] = (
        "family_ref",
        "family_id",
        "site",
        "local_authority",
        "in_care_proceedings",
        "child_number",
        "legal_route",
    )

    def plan(self, s: Session, actor: Actor, data: CsvData, ctx: ImportContext) -> Plan:
        cells = Cells(data, ctx.dates, "IMP-060")
        checker = FamilyChecker(s)
        dobs = cells.date_column("date_of_birth")
        entered = cells.date_column("entered_care_on")
        sexes = [t.lower() for t in data.column("sex")]
        icps = cells.bool_column("in_care_proceedings", required=False)
        numbers = cells.int_column("child_number", required=False, minimum=1)
        for i, n in enumerate(numbers):
            if n is not None and n > 99:
                cells.problem(i, "child_number", n, "a child number from 1 to 99", "IMP-067")
                numbers[i] = None
        routes = [t or None for t in data.column("legal_route")]
        las = [t or None for t in data.column("local_authority")]
        groups = _groups(s, actor, cells, checker, las, icps)
        ctx.progress("checking rows", 0, data.n_rows)
        for g in groups:
            site = g.site
            jurisdiction = site.jurisdiction if site is not None else None
            for i in g.rows:
                dob, on = dobs[i], entered[i]
                if dob is not None and on is not None:
                    cells.problems += checker.child_problems(
                        data.record(i), dob, sexes[i], on, routes[i], jurisdiction
                    )
        ctx.progress("checking rows", data.n_rows, data.n_rows)
        bad = {p.record for p in cells.problems}
        ok_groups = [g for g in groups if all(data.record(i) not in bad for i in g.rows)]
        keys: list[_Key] = [
            (d, x, e) if d is not None and e is not None else (date.min, x, date.min)
            for d, x, e in zip(dobs, sexes, entered, strict=True)
        ]
        stored, taken = _stored_children(
            s, ok_groups, {keys[i][0] for g in ok_groups for i in g.rows}
        )
        la_codes = {la.id: la.code for la in checker.local_authorities()}
        matcher = _Matcher(cells, keys, numbers, routes, stored, taken, la_codes)
        for g in ok_groups:
            matcher.match(g)
        # new families: the next trial IDs of each site, in the order the file names them
        new_groups = [g for g in ok_groups if g.family is None and g.key in matcher.new_by_group]
        site_ids = sorted({g.site.id for g in new_groups if g.site is not None})
        lock_sites(s, site_ids)
        seqs = next_site_seqs(s, site_ids)
        family_rows: list[dict[str, object]] = []
        family_ids: dict[str, str] = dict(matcher.matched_families)
        now = utcnow()
        for g in new_groups:
            assert g.site is not None
            seq = seqs[g.site.id]
            seqs[g.site.id] += 1
            tid = trial_ids.family_id(g.site.id_prefix, seq)
            family_ids[g.label] = tid
            family_rows.append(
                {
                    "trial_id": tid,
                    "site_id": g.site.id,
                    "site_seq": seq,
                    "local_authority_id": g.la_id,
                    "in_care_proceedings": g.in_care_proceedings,
                    "registered_at": now,
                    "registered_by_id": actor.user_id,
                }
            )
        late = randomised_on(s, [g.family.id for g in ok_groups if g.family is not None])
        child_rows: list[dict[str, object]] = []
        #: per child row: the index of its new family, or None for a registered family
        new_family_of: list[int | None] = []
        late_dates: dict[int, date] = {}  # child row index -> its family's randomisation date
        child_ids: dict[str, str] = dict(matcher.matched_children)
        new_family_index = {g.key: n for n, g in enumerate(new_groups)}
        for g in ok_groups:
            fam_tid = g.family.trial_id if g.family is not None else family_ids.get(g.label)
            for i, number in matcher.new_by_group.get(g.key, []):
                assert fam_tid is not None
                dob, sex, on = keys[i]
                tid = trial_ids.child_id(fam_tid, number)
                child_ids[data.record(i)] = tid
                if g.family is not None and g.family.id in late:
                    late_dates[len(child_rows)] = late[g.family.id]
                new_family_of.append(new_family_index.get(g.key))
                child_rows.append(
                    {
                        "trial_id": tid,
                        "family_id": g.family.id if g.family is not None else None,
                        "child_number": number,
                        "date_of_birth": dob,
                        "sex": sex,
                        "entered_care_on": on,
                        "legal_route_code": routes[i],
                        "eligibility_status": "pending",
                        "joined_after_randomisation": len(child_rows) in late_dates,
                    }
                )

        def write() -> None:
            family_pks = insert_rows(s, Family, family_rows)
            for row, index in zip(child_rows, new_family_of, strict=True):
                if index is not None:
                    row["family_id"] = family_pks[index]
            child_pks = insert_rows(s, Child, child_rows)
            schedule_late_joiners(s, {child_pks[n]: on for n, on in late_dates.items()})

        plan = Plan(
            cells.problems,
            len(child_rows),
            matcher.unchanged,
            write,
            unit="child",
            details={"families": len(family_rows)} if family_rows else {},
        )
        first_row = {g.label: g.rows[0] for g in groups if g.key.startswith("ref:")}
        plan.family_ids = dict(sorted(family_ids.items(), key=lambda kv: first_row[kv[0]]))
        plan.child_ids = dict(sorted(child_ids.items(), key=lambda kv: int(kv[0].split()[1])))
        return plan


# --------------------------------------------------------------------------- the families


def _groups(
    s: Session,
    actor: Actor,
    cells: Cells,
    checker: FamilyChecker,
    las: list[str | None],
    icps: list[bool | None],
) -> list[_Group]:
    """Every row's family (in the order of first appearance), with its family-level problems."""
    data = cells.data
    refs, ids, sites = data.column("family_ref"), data.column("family_id"), data.column("site")
    registered = _registered_families(s, [t for t in ids if t])
    groups: dict[str, _Group] = {}
    for i in range(data.n_rows):
        ref, fid = refs[i], ids[i].strip().upper()
        if bool(ref) == bool(fid):
            cells.problem(
                i,
                "family_ref" if ref else "family_id",
                ref or "",
                "either a family_ref (a new family) or a family_id (a registered family), "
                "not both" + ("" if ref else " and not neither"),
                "IMP-061",
            )
            continue
        if fid:
            g = groups.setdefault("id:" + fid, _Group("id:" + fid, fid))
            if not g.rows:
                g.family = _registered(cells, i, fid, registered, actor)
                g.site = checker.sites.get(g.family.site_code) if g.family else None
            elif g.family is None:
                cells.problem(
                    i,
                    "family_id",
                    fid,
                    f"a usable family ID (see row {data.line(g.rows[0])})",
                    "IMP-065",
                )
            g.rows.append(i)
            if g.family is not None and g.site is not None:
                _same_as_stored(cells, checker, i, g.family, g.site, las[i], icps[i])
            continue
        g = groups.setdefault("ref:" + ref, _Group("ref:" + ref, ref))
        first = g.rows[0] if g.rows else None
        g.rows.append(i)
        site = _site_of_row(cells, checker, actor, i, sites[i])
        if first is None:
            g.site, g.la_id, g.in_care_proceedings = site, None, icps[i]
        else:
            for column, mine, theirs in (
                ("site", sites[i].upper(), sites[first].upper()),
                ("local_authority", las[i], las[first]),
                ("in_care_proceedings", icps[i], icps[first]),
            ):
                if mine != theirs:
                    cells.problem(
                        i,
                        column,
                        data.column(column)[i],
                        f"the same {column} in every row of family_ref {ref} "
                        f"(row {data.line(first)} has {data.column(column)[first] or 'none'})",
                        "IMP-064",
                    )
        if site is not None:
            problems, la_id = checker.family_problems(data.record(i), site, las[i], icps[i])
            cells.problems += problems
            if first is None:
                g.la_id = la_id
    return list(groups.values())


def _site_of_row(
    cells: Cells, checker: FamilyChecker, actor: Actor, i: int, text: str
) -> Site | None:
    if not text:
        cells.problem(
            i, "site", "", f"the site of the new family: {checker.known_sites()}", "IMP-062"
        )
        return None
    site = checker.site(text)
    if site is None:
        cells.problem(i, "site", text, f"a site: {checker.known_sites()}", "IMP-062")
        return None
    if not actor.can_see_site(site.id):
        cells.problem(
            i,
            "site",
            text,
            f"a site you work at ({', '.join(sorted(actor.site_codes)) or 'none'}); "
            f"you may not register families at {site.code}",
            "IMP-063",
        )
        return None
    return site


def _registered_families(s: Session, texts: list[str]) -> dict[str, _StoredFamily]:
    wanted = sorted({t.strip().upper() for t in texts if trial_ids.is_valid(t)})
    out: dict[str, _StoredFamily] = {}
    for chunk in chunks(wanted):
        for r in s.execute(
            select(
                Family.id,
                Family.trial_id,
                Family.site_id,
                Site.code,
                Family.local_authority_id,
                Family.in_care_proceedings,
                Family.voided_at,
            )
            .join(Site, Site.id == Family.site_id)
            .where(Family.trial_id.in_(chunk))
        ):
            out[r[1]] = _StoredFamily(*r[:6], voided=r[6] is not None)
    return out


def _registered(
    cells: Cells, i: int, fid: str, registered: dict[str, _StoredFamily], actor: Actor
) -> _StoredFamily | None:
    try:
        parsed = trial_ids.parse(fid)
    except ValueError as exc:
        cells.problem(i, "family_id", fid, str(exc).split(": ", 1)[-1], "ID-001")
        return None
    if parsed.child_number is not None:
        cells.problem(i, "family_id", fid, "a family ID such as G-0001-X, not a child ID", "ID-002")
        return None
    family = registered.get(fid)
    if family is None:
        cells.problem(i, "family_id", fid, "the trial ID of a registered family", "IMP-065")
        return None
    if not actor.can_see_site(family.site_id):
        cells.problem(
            i,
            "family_id",
            fid,
            f"a family at your site(s) ({', '.join(sorted(actor.site_codes)) or 'none'}); "
            f"{fid} is at {family.site_code} and you may not add children to it",
            "IMP-063",
        )
        return None
    if family.voided:
        cells.problem(i, "family_id", fid, "a family that is not voided", "FAM-003")
        return None
    return family


def _same_as_stored(
    cells: Cells,
    checker: FamilyChecker,
    i: int,
    family: _StoredFamily,
    site: Site,
    la: str | None,
    icp: bool | None,
) -> None:
    """Family columns on a ``family_id`` row are optional; when given they must agree."""
    data = cells.data
    stored_la = next(
        (x.code for x in checker.local_authorities() if x.id == family.local_authority_id), None
    )
    for column, mine, theirs in (
        ("site", (data.column("site")[i].upper() or None), site.code),
        ("local_authority", la, stored_la),
        ("in_care_proceedings", icp, family.in_care_proceedings),
    ):
        if data.column(column)[i] and mine != theirs:
            cells.problem(
                i,
                column,
                data.column(column)[i],
                f"the stored {column} of family {family.trial_id} ({theirs}), or an empty cell",
                "IMP-010",
            )


# --------------------------------------------------------------------------- the children


def _stored_children(
    s: Session, groups: list[_Group], dobs: set[date]
) -> tuple[dict[tuple[int, _Key], list[_StoredChild]], dict[int, set[int]]]:
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
    by_key: dict[tuple[int, _Key], list[_StoredChild]] = defaultdict(list)
    seen: set[int] = set()

    def add(rows: object) -> None:
        for r in rows:  # type: ignore[attr-defined]
            if r[0] not in seen:
                seen.add(r[0])
                child = _StoredChild(
                    r[0], r[1], r[2], r[9], r[3], (r[4], r[5], r[6]), r[7], r[10], r[11]
                )
                by_key[(r[8], child.key)].append(child)

    live = (Child.voided_at.is_(None), Family.voided_at.is_(None))
    site_ids = sorted({g.site.id for g in groups if g.family is None and g.site is not None})
    for chunk in chunks(sorted(dobs)):
        if site_ids:
            add(
                s.execute(
                    select(*cols)
                    .join(Family, Family.id == Child.family_id)
                    .where(*live, Family.site_id.in_(site_ids), Child.date_of_birth.in_(chunk))
                )
            )
    family_ids = sorted({g.family.id for g in groups if g.family is not None})
    taken: dict[int, set[int]] = defaultdict(set)
    for chunk in chunks(family_ids):
        add(
            s.execute(
                select(*cols)
                .join(Family, Family.id == Child.family_id)
                .where(*live, Child.family_id.in_(chunk))
            )
        )
        for fid, number in s.execute(
            select(Child.family_id, Child.child_number).where(Child.family_id.in_(chunk))
        ):
            taken[fid].add(number)
    for children in by_key.values():
        children.sort(key=lambda c: (c.family_id, c.child_number))
    return by_key, taken


class _Matcher:
    """Works out, group by group, which rows are stored children and numbers the new ones."""

    def __init__(
        self,
        cells: Cells,
        keys: list[_Key],
        numbers: list[int | None],
        routes: list[str | None],
        stored: dict[tuple[int, _Key], list[_StoredChild]],
        taken: dict[int, set[int]],
        la_codes: dict[int, str],
    ) -> None:
        self.cells, self.keys, self.numbers, self.routes = cells, keys, numbers, routes
        self.la_codes = la_codes
        self.stored, self.taken = stored, taken
        self.unchanged = 0
        self.matched_families: dict[str, str] = {}
        self.matched_children: dict[str, str] = {}
        #: group key -> [(row, child number)] of the children to add
        self.new_by_group: dict[str, list[tuple[int, int]]] = {}

    def _duplicates(self, g: _Group) -> list[int]:
        """The group's rows less those repeating a child (IMP-011) or a child number (IMP-067).

        Two rows with the same date of birth, sex and entry to care are one child unless
        both give a child number and the numbers differ (twins).
        """
        data, out = self.cells.data, []
        by_key: dict[_Key, list[int]] = defaultdict(list)
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

    def _candidates(self, site_id: int, i: int, family_id: int | None) -> list[_StoredChild]:
        number = self.numbers[i]
        return [
            c
            for c in self.stored.get((site_id, self.keys[i]), [])
            if (number is None or c.child_number == number)
            and (family_id is None or c.family_id == family_id)
        ]

    def _same(self, i: int, child: _StoredChild) -> None:
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

    def match(self, g: _Group) -> None:
        assert g.site is not None
        rows = self._duplicates(g)
        if len(rows) < len(g.rows):
            return
        fixed = g.family.id if g.family is not None else None
        found = {i: self._candidates(g.site.id, i, fixed) for i in rows}
        if g.family is None and any(found.values()):
            families = set.intersection(*({c.family_id for c in cs} for cs in found.values()))
            if len(families) != 1:
                self._partial(g, found)
                return
            (fixed,) = families
        pairs: dict[int, _StoredChild] = {}
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

    def _same_family(self, g: _Group, stored: _StoredChild) -> None:
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

    def _numbers(self, g: _Group, new: list[int], taken: set[int]) -> list[tuple[int, int]]:
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

    def _partial(self, g: _Group, found: dict[int, list[_StoredChild]]) -> None:
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


FAMILIES = FamiliesKind()
