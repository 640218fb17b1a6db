"""Import kinds ``screening`` and ``eligibility``: the services' rules, atomic, idempotent, site scope."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from noim.db.models import AuditLog, Child, ScreeningEntry
from noim.db.session import Database
from noim.domain.exceptions import ImportRejected, ValidationError
from noim.services import consent, screening
from noim.services.imports import run_import
from tests.conftest import Actors
from tests.factories import family_with_children
from tests.test_cli import run

HEADER = (
    "site,reference,screened_on,local_authority,n_children,eligible,ineligible_reason,"
    "declined,declined_reason,family_id\n"
)


def _count(db: Database, model: type, *where: object) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)  # type: ignore[arg-type]


def _problems(exc: pytest.ExceptionInfo[ImportRejected]) -> set[tuple[str, str, str]]:
    return {(p.record, p.field, p.rule) for p in exc.value.problems}


def test_screening_import_logs_and_enrols(db: Database, actors: Actors, tmp_path: Path) -> None:
    coord = actors["coord_gla"]
    fam = family_with_children(db, coord, "GLA", (10,)).trial_id
    later = family_with_children(db, coord, "GLA", (20,)).trial_id
    f = tmp_path / "screening.csv"
    f.write_text(
        HEADER + "GLA,S-1,2024-02-01,GCC,1,yes,,no,,"
        f"{fam}\n"
        "GLA,S-2,2024-02-03,,2,no,placed with a parent,,,\n"
        "gla,S-3,2024-02-05,REN,1,yes,,yes,carer declined,\n"
        "GLA,S-4,2024-02-07,GCC,1,yes,,,,\n",
        encoding="utf-8",
    )
    dry = run_import(db, coord, "screening", f, dry_run=True)
    assert (dry.new_records, dry.written) == (4, False)
    assert _count(db, ScreeningEntry) == 0
    report = run_import(db, coord, "screening", f)
    assert (report.new_records, report.details) == (4, {"families enrolled": 1})
    log = screening.list_entries(db, coord)
    assert (log.counts.screened, log.counts.eligible, log.counts.declined) == (4, 3, 1)
    assert log.counts.enrolled == 1 and log.counts.children_screened == 5
    assert {e.reference: e.family for e in log.entries}["S-1"] == fam
    with db.read() as s:
        reasons = set(
            s.scalars(select(AuditLog.reason).where(AuditLog.table_name == "screening_log"))
        )
    assert len(reasons) == 1 and reasons.pop().startswith("import of screening from screening.csv")
    again = run_import(db, coord, "screening", f)
    assert (again.new_records, again.unchanged_records) == (0, 4)
    # a later file enrols the stored entry S-4 (one update), the rest unchanged
    f.write_text(
        f.read_text().replace(
            "GLA,S-4,2024-02-07,GCC,1,yes,,,,", f"GLA,S-4,2024-02-07,GCC,1,yes,,,,{later}"
        )
    )
    enrol = run_import(db, coord, "screening", f)
    assert (enrol.new_records, enrol.unchanged_records) == (1, 3)
    assert _count(db, ScreeningEntry, ScreeningEntry.family_id.is_not(None)) == 2
    assert _count(db, ScreeningEntry) == 4


def test_screening_import_reports_every_bad_row_and_writes_nothing(
    db: Database, actors: Actors, tmp_path: Path
) -> None:
    coord = actors["coord_gla"]
    fam = family_with_children(db, coord, "GLA", (10,)).trial_id
    linked = family_with_children(db, coord, "GLA", (12,)).trial_id
    cro = family_with_children(db, actors["coord_cro"], "CRO", (10,)).trial_id
    stored = screening.add_entry(db, coord, "GLA", date(2024, 1, 5), 1, True, reference="OLD-1")
    screening.enrol(db, coord, stored.id, linked)
    before = _count(db, ScreeningEntry)
    f = tmp_path / "bad.csv"
    f.write_text(
        HEADER
        + "XXX,B-1,2024-02-01,,1,yes,,,,\n"  # row 2: unknown site
        + "CRO,B-2,2024-02-01,,1,yes,,,,\n"  # row 3: not the coordinator's site
        + "GLA,B-3,2024-02-31,,1,yes,,,,\n"  # row 4: no such date
        + "GLA,B-4,2024-02-01,,1,yes,too old,,,\n"  # row 5: eligible with a reason
        + "GLA,B-5,2024-02-01,,1,no,too old,yes,carer declined,\n"  # row 6: ineligible declined
        + "GLA,B-6,2024-02-01,CROY,1,yes,,,,\n"  # row 7: Croydon's local authority
        + "GLA,B-7,2024-02-01,,1,yes,,,,G-9999-G\n"  # row 8: unknown family
        + f"GLA,B-8,2024-02-01,,1,yes,,,,{cro}\n"  # row 9: a family of another site
        + f"GLA,B-9,2024-02-01,,1,yes,,,,{linked}\n"  # row 10: already enrolled elsewhere
        + "GLA,B-10,2024-02-01,,0,yes,,,,\n"  # row 11: no children
        + f"GLA,B-11,2024-02-01,,1,yes,,,,{fam}\n"  # row 12: fine ...
        + "GLA,B-11,2024-02-02,,1,yes,,,,\n"  # row 13: ... but the same reference again
        + "GLA,OLD-1,2024-01-06,,1,yes,,,,\n"  # row 14: differs from the stored entry
        + "GLA,,2024-02-01,,1,yes,,,,\n",  # row 15: no reference
        encoding="utf-8",
    )
    with pytest.raises(ImportRejected) as caught:
        run_import(db, coord, "screening", f)
    found = _problems(caught)
    expected = {
        ("row 2", "site", "IMP-080"),
        ("row 3", "site", "IMP-081"),
        ("row 4", "screened_on", "IMP-005"),
        ("row 5", "ineligible_reason", "SCR-003"),
        ("row 6", "declined", "SCR-004"),
        ("row 7", "local_authority", "SCR-006"),
        ("row 8", "family_id", "IMP-082"),
        ("row 9", "family", "SCR-009"),
        ("row 10", "family", "SCR-010"),
        ("row 11", "n_children", "SCR-002"),
        ("row 13", "reference", "IMP-011"),
        ("row 14", "reference", "IMP-010"),
        ("row 15", "reference", "IMP-005"),
    }
    assert expected <= found, expected - found
    assert not any(r == "row 12" for r, _f, _rule in found)
    by_row = {p.record: p for p in caught.value.problems}
    assert by_row["row 2"].value == "XXX" and "GLA" in by_row["row 2"].expected
    assert _count(db, ScreeningEntry) == before


def test_croydon_coordinator_cannot_import_glasgow_rows(
    db: Database, actors: Actors, db_url: str, tmp_path: Path
) -> None:
    f = tmp_path / "s.csv"
    f.write_text(HEADER + "GLA,S-1,2024-02-01,,1,yes,,,,\n", encoding="utf-8")
    with pytest.raises(ImportRejected) as caught:
        run_import(db, actors["coord_cro"], "screening", f)
    assert _problems(caught) == {("row 2", "site", "IMP-081")}
    base = ("--database", db_url, "--user", "coord_gla")
    ok = run(*base, "import", "screening", str(f), "--json")
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["new_records"] == 1


def test_eligibility_import(db: Database, actors: Actors, tmp_path: Path) -> None:
    coord = actors["coord_gla"]
    kids = [c.trial_id for c in family_with_children(db, coord, "GLA", (10, 30)).children]
    other = family_with_children(db, coord, "GLA", (5,)).children[0].trial_id
    decided = family_with_children(db, coord, "GLA", (7,)).children[0].trial_id
    consent.decide_eligibility(db, coord, decided, True, date(2024, 3, 10))
    cro = family_with_children(db, actors["coord_cro"], "CRO", (10,)).children[0].trial_id
    f = tmp_path / "eligibility.csv"
    f.write_text(
        "child_id,eligible,decided_on,reason\n"
        f"{kids[0]},yes,2024-03-20,\n"
        f"{kids[1]},no,2024-03-20,placed with a parent\n"
        f"{decided},yes,2024-03-10,\n",
        encoding="utf-8",
    )
    report = run_import(db, coord, "eligibility", f)
    assert (report.new_records, report.unchanged_records) == (2, 1)
    with db.read() as s:
        status = {
            str(tid): str(st)
            for tid, st in s.execute(
                select(Child.trial_id, Child.eligibility_status).where(Child.trial_id.in_(kids))
            )
        }
    assert status == {kids[0]: "eligible", kids[1]: "ineligible"}
    again = run_import(db, coord, "eligibility", f)
    assert (again.new_records, again.unchanged_records) == (0, 3)
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "child_id,eligible,decided_on,reason\n"
        f"{other},yes,2024-02-01,\n"  # row 2: before entry to care (2024-03-01)
        f"{other},no,2024-03-20,\n"  # row 3: ineligible without a reason
        f"{decided},no,2024-03-20,too old\n"  # row 4: differs from the stored decision
        f"{cro},yes,2024-03-20,\n"  # row 5: a Croydon child
        f"{other},maybe,2024-03-20,\n",  # row 6: not yes or no
        encoding="utf-8",
    )
    with pytest.raises(ImportRejected) as caught:
        run_import(db, coord, "eligibility", bad)
    assert _problems(caught) == {
        ("row 2", "eligibility_decided_on", "ELG-001"),
        ("row 3", "ineligibility_reason", "ELG-002"),
        ("row 4", "eligible", "IMP-010"),
        ("row 5", "child_id", "IMP-004"),
        ("row 6", "eligible", "IMP-005"),
    }
    with db.read() as s:
        assert (
            s.scalar(select(Child.eligibility_status).where(Child.trial_id == other)) == "pending"
        )
    twice = tmp_path / "twice.csv"
    twice.write_text(
        f"child_id,eligible,decided_on\n{other},yes,2024-03-20\n{other},yes,2024-03-21\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportRejected) as caught:
        run_import(db, coord, "eligibility", twice)
    assert _problems(caught) == {("row 3", "child_id", "IMP-011")}


def test_consent_by_a_named_carer(db: Database, actors: Actors) -> None:
    """The consent rules load the named person (a result read as pairs, not as a mapping)."""
    from noim.services import people

    coord = actors["coord_gla"]
    child = family_with_children(db, coord, "GLA", (10,)).children[0].trial_id
    carer = people.add_carer(db, coord, "GLA", "foster").id
    view = consent.record_consent(db, coord, child, "carer", "3.1", date(2024, 3, 21), carer)
    assert view.consenter_type == "carer"
    with pytest.raises(ValidationError, match="CNS-003"):
        consent.record_consent(db, coord, child, "carer", "3.1", date(2024, 3, 22), carer + 99)
