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
``child_number`` s, otherwise the second row is a duplicate (IMP-011); a child of a new
family that another family of the file also lists is refused (IMP-011), so a second
import can tell the families apart.  Formats and rule ids: docs/import-formats.md.
"""

from __future__ import annotations

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
from noim.services.imports.families_match import (
    FamilyGroup,
    Key,
    Matcher,
    StoredFamily,
    stored_children,
)
from noim.services.imports.reader import Cells, CsvData


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
        keys: list[Key] = [
            (d, x, e) if d is not None and e is not None else (date.min, x, date.min)
            for d, x, e in zip(dobs, sexes, entered, strict=True)
        ]
        stored, taken = stored_children(
            s, ok_groups, {keys[i][0] for g in ok_groups for i in g.rows}
        )
        la_codes = {la.id: la.code for la in checker.local_authorities()}
        matcher = Matcher(cells, keys, numbers, routes, stored, taken, la_codes)
        matcher.across_families(ok_groups)
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
) -> list[FamilyGroup]:
    """Every row's family (in the order of first appearance), with its family-level problems."""
    data = cells.data
    refs, ids, sites = data.column("family_ref"), data.column("family_id"), data.column("site")
    registered = _registered_families(s, [t for t in ids if t])
    groups: dict[str, FamilyGroup] = {}
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
            g = groups.setdefault("id:" + fid, FamilyGroup("id:" + fid, fid))
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
        g = groups.setdefault("ref:" + ref, FamilyGroup("ref:" + ref, ref))
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


def _registered_families(s: Session, texts: list[str]) -> dict[str, StoredFamily]:
    wanted = sorted({t.strip().upper() for t in texts if trial_ids.is_valid(t)})
    out: dict[str, StoredFamily] = {}
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
            out[r[1]] = StoredFamily(*r[:6], voided=r[6] is not None)
    return out


def _registered(
    cells: Cells, i: int, fid: str, registered: dict[str, StoredFamily], actor: Actor
) -> StoredFamily | None:
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
    family: StoredFamily,
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


FAMILIES = FamiliesKind()
