"""Import kind ``screening``: one row per screened family, optionally enrolling it.

Columns: ``site, reference, screened_on, n_children, eligible`` and optionally
``local_authority``, ``ineligible_reason``, ``declined`` (yes/no, default no),
``declined_reason`` and ``family_id`` (the trial ID of the family registered from the
entry: the row then also enrols it, as ``noim screening enrol``).  The entry rules are
those of ``noim screening add`` (``entry_problems``, ``local_authority_of``) and the
enrolment rules those of ``noim screening enrol`` (``enrol_problems``).

``reference`` (the screening log's own number, unique per site) tells the rows apart:
a row whose site and reference match a live stored entry with the same values is
skipped (a second import adds nothing); a stored entry not yet linked to a family is
enrolled when the row names one; any other difference is a conflict (IMP-010).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from noim.db.audit import insert_rows, update_rows
from noim.db.models import Family, ScreeningEntry, Site
from noim.domain import trial_ids
from noim.domain.roles import Actor
from noim.services.imports.base import ImportContext, KindBase, Plan, chunks
from noim.services.imports.reader import Cells, CsvData
from noim.services.screening import (
    EntryState,
    enrol_problems,
    entry_problems,
    local_authorities,
    local_authority_of,
)

#: the values of an entry compared with a stored one (all but the family link)
_Values = tuple[date, int, bool, str | None, bool, str | None, int | None]


class ScreeningKind(KindBase):
    name = "screening"
    description = (
        "screening-log entries, optionally enrolling families (as `noim screening add` / `enrol`)"
    )
    required: tuple[str, ...] = ("site", "reference", "screened_on", "n_children", "eligible")
    optional: tuple[str, ...] = (
        "local_authority",
        "ineligible_reason",
        "declined",
        "declined_reason",
        "family_id",
    )

    text_columns: Mapping[str, str] = {
        "reference": "screening_log.reference",
        "ineligible_reason": "screening_log.ineligible_reason",
        "declined_reason": "screening_log.declined_reason",
    }

    def plan(self, s: Session, actor: Actor, data: CsvData, ctx: ImportContext) -> Plan:
        cells = Cells(data, ctx.dates, "IMP-005")
        sites = {str(site.code): site for site in s.scalars(select(Site))}
        site_rows = _sites(cells, actor, sites)
        refs = [t.strip() or None for t in data.column("reference")]
        for i, ref in enumerate(refs):
            if ref is None:
                cells.problem(i, "reference", "", "a reference (the cell is empty)")
        screened = cells.date_column("screened_on")
        n_children = cells.int_column("n_children")
        eligible = cells.bool_column("eligible")
        declined = cells.bool_column("declined", required=False)
        ineligible = [t.strip() or None for t in data.column("ineligible_reason")]
        declined_reasons = [t.strip() or None for t in data.column("declined_reason")]
        la_codes = [t.strip().upper() or None for t in data.column("local_authority")]
        fids = [t.strip().upper() for t in data.column("family_id")]
        ctx.progress("checking screening entries", 0, data.n_rows)
        las = local_authorities(s)
        families = _families(s, fids)
        stored = _stored(
            s, sorted({(r.id, f) for r, f in zip(site_rows, refs, strict=True) if r and f})
        )
        linked_elsewhere = _linked(s, [f.id for f in families.values()])
        site_codes = {site.id: code for code, site in sites.items()}
        new_rows: list[dict[str, object]] = []
        enrolments: dict[int, dict[str, object]] = {}
        seen: dict[tuple[int, str], int] = {}
        seen_family: dict[str, int] = {}
        unchanged = 0
        for i in range(data.n_rows):
            site, ref, on, n, ok = site_rows[i], refs[i], screened[i], n_children[i], eligible[i]
            record = data.record(i)
            before = len(cells.problems)
            if on is not None and n is not None and ok is not None:
                cells.problems += entry_problems(
                    record,
                    on,
                    n,
                    ok,
                    ineligible[i],
                    bool(declined[i]),
                    declined_reasons[i],
                    ref,
                )
            la_id = None
            if site is not None:
                la_id, la_problems = local_authority_of(
                    record, la_codes[i], site.id, site.code, las
                )
                cells.problems += la_problems
            family = _family_of(cells, i, fids[i], families)
            if site is None or ref is None or on is None or n is None or ok is None:
                continue
            if len(cells.problems) > before:
                continue
            key = (site.id, ref)
            if key in seen:
                cells.problem(
                    i,
                    "reference",
                    ref,
                    f"one row per site and reference (row {data.line(seen[key])} has the same)",
                    "IMP-011",
                )
                continue
            seen[key] = i
            values: _Values = (
                on,
                n,
                ok,
                None if ok else ineligible[i],
                bool(declined[i]),
                declined_reasons[i] if declined[i] else None,
                la_id,
            )
            found = stored.get(key, [])
            if len(found) > 1:
                cells.problem(
                    i,
                    "reference",
                    ref,
                    f"a reference matching at most one stored entry of {site.code} "
                    f"(entries {', '.join(str(e[0]) for e in found)} have it)",
                    "IMP-083",
                )
                continue
            entry_id, entry_family = (found[0][0], found[0][2]) if found else (None, None)
            if found and found[0][1] != values:
                cells.problem(
                    i,
                    "reference",
                    ref,
                    f"the stored entry {entry_id} of {site.code} with this reference "
                    f"({_describe(found[0][1])}); correct or void stored entries with a reason, "
                    "not by importing over them",
                    "IMP-010",
                )
                continue
            if family is not None:
                if family.trial_id in seen_family:
                    cells.problem(
                        i,
                        "family_id",
                        family.trial_id,
                        f"each family enrolled once (row {data.line(seen_family[family.trial_id])} "
                        "enrols it too)",
                        "IMP-011",
                    )
                    continue
                seen_family[family.trial_id] = i
            if found and (family is None or entry_family == family.id):
                if family is None and entry_family is not None:
                    cells.problem(
                        i,
                        "family_id",
                        "",
                        f"the family stored as enrolled from entry {entry_id}; unlink stored "
                        "entries with a reason, not by importing over them",
                        "IMP-010",
                    )
                    continue
                unchanged += 1
                continue
            if family is not None:
                other = linked_elsewhere.get(family.id)
                linked_to = None
                if entry_family is not None:
                    linked_to = next(
                        (f.trial_id for f in families.values() if f.id == entry_family),
                        str(entry_family),
                    )
                cells.problems += enrol_problems(
                    record,
                    EntryState(None, ok, bool(declined[i]), on, site.id, site.code, linked_to),
                    family,
                    site_codes[family.site_id],
                    other if other != entry_id else None,
                )
                if len(cells.problems) > before:
                    continue
            if entry_id is not None:
                assert family is not None
                enrolments[entry_id] = {"family_id": family.id}
                continue
            new_rows.append(
                {
                    "site_id": site.id,
                    "local_authority_id": la_id,
                    "reference": ref,
                    "screened_on": on,
                    "n_children": n,
                    "eligible": ok,
                    "ineligible_reason": values[3],
                    "declined": values[4],
                    "declined_reason": values[5],
                    "family_id": family.id if family is not None else None,
                }
            )
        ctx.progress("checking screening entries", data.n_rows, data.n_rows)

        def write() -> None:
            insert_rows(s, ScreeningEntry, new_rows)
            update_rows(s, ScreeningEntry, enrolments)

        enrolled = sum(1 for r in new_rows if r["family_id"] is not None) + len(enrolments)
        return Plan(
            cells.problems,
            len(new_rows) + len(enrolments),
            unchanged,
            write,
            unit="screening entry",
            details={"families enrolled": enrolled} if enrolled else {},
        )


def _sites(cells: Cells, actor: Actor, sites: dict[str, Site]) -> list[Site | None]:
    """Every row's site: known (IMP-080) and one the actor works at (IMP-081)."""
    known = ", ".join(sorted(sites))
    out: list[Site | None] = []
    for i, text in enumerate(cells.data.column("site")):
        code = text.strip().upper()
        site = sites.get(code)
        if site is None:
            cells.problem(i, "site", text, f"a site: {known}", "IMP-080")
        elif not actor.can_see_site(site.id):
            cells.problem(
                i,
                "site",
                text,
                f"a site you work at ({', '.join(sorted(actor.site_codes)) or 'none'}); "
                f"you may not log screening at {site.code}",
                "IMP-081",
            )
            site = None
        out.append(site)
    return out


def _families(s: Session, fids: list[str]) -> dict[str, Family]:
    wanted = sorted({f for f in fids if f and trial_ids.is_valid(f)})
    out: dict[str, Family] = {}
    for chunk in chunks(wanted):
        for family in s.scalars(select(Family).where(Family.trial_id.in_(chunk))):
            out[family.trial_id] = family
    return out


def _family_of(cells: Cells, i: int, fid: str, families: dict[str, Family]) -> Family | None:
    if not fid:
        return None
    family = families.get(fid)
    if family is None:
        expected = (
            "the trial ID of a registered family"
            if trial_ids.is_valid(fid)
            else "a family trial ID with a valid check character, such as G-0001-X"
        )
        cells.problem(i, "family_id", cells.data.column("family_id")[i], expected, "IMP-082")
    return family


def _stored(
    s: Session, keys: list[tuple[int, str]]
) -> dict[tuple[int, str], list[tuple[int, _Values, int | None]]]:
    """Live stored entries by (site id, reference): (id, values, family id)."""
    out: dict[tuple[int, str], list[tuple[int, _Values, int | None]]] = {}
    refs = sorted({r for _s, r in keys})
    for chunk in chunks(refs):
        for e in s.scalars(
            select(ScreeningEntry)
            .where(ScreeningEntry.reference.in_(chunk), ScreeningEntry.voided_at.is_(None))
            .order_by(ScreeningEntry.id)
        ):
            values: _Values = (
                e.screened_on,
                e.n_children,
                e.eligible,
                e.ineligible_reason,
                e.declined,
                e.declined_reason,
                e.local_authority_id,
            )
            assert e.reference is not None
            out.setdefault((e.site_id, e.reference), []).append((e.id, values, e.family_id))
    return out


def _linked(s: Session, family_ids: list[int]) -> dict[int, int]:
    """The entry each family is already linked to, by family id."""
    out: dict[int, int] = {}
    for chunk in chunks(sorted(set(family_ids))):
        for entry_id, family_id in s.execute(
            select(ScreeningEntry.id, ScreeningEntry.family_id).where(
                ScreeningEntry.family_id.in_(chunk)
            )
        ):
            out[int(family_id or 0)] = int(entry_id)
    return out


def _describe(v: _Values) -> str:
    on, n, ok, why, declined, declined_why, _la = v
    state = "eligible" if ok else f"ineligible: {why}"
    if declined:
        state += f", declined: {declined_why}"
    return f"screened {on}, {n} child(ren), {state}"


SCREENING = ScreeningKind()
