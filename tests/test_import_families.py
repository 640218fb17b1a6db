"""The ``families`` import: new families and children in one file, through the family rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from noim.db.models import AuditLog, Child, Family, FollowUpVisit
from noim.db.session import Database
from noim.domain import trial_ids
from noim.domain.exceptions import ImportRejected
from noim.services import families, randomisation
from noim.services.imports import run_import
from tests.conftest import Actors
from tests.factories import family_with_children
from tests.test_cli import run
from tests.test_randomisation import SEED, ready_family

HEADER = (
    "family_ref,family_id,site,local_authority,in_care_proceedings,child_number,"
    "date_of_birth,sex,entered_care_on,legal_route\n"
)
GOOD = (
    HEADER + "A,,GLA,GCC,yes,,2024-02-14,female,2025-03-03,sc.cpo\n"
    "A,,GLA,GCC,yes,,2022-07-09,male,2025-03-03,sc.cpo\n"
    "B,,CRO,CROY,yes,,2024-11-21,male,2025-04-10,en.C1\n"
    "C,,GLA,REN,,,2025-01-02,female,2025-06-20,\n"
)


def _count(db: Database, model: type) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _file(tmp_path: Path, text: str, name: str = "families.csv") -> Path:
    f = tmp_path / name
    f.write_text(text, encoding="utf-8")
    return f


def _rejected(db: Database, actor_name: str, actors: Actors, f: Path) -> set[tuple[str, str, str]]:
    with pytest.raises(ImportRejected) as caught:
        run_import(db, actors[actor_name], "families", f)
    return {(p.record, p.field, p.rule) for p in caught.value.problems}


def test_two_sites_as_admin_in_site_sequence_audited_and_idempotent(
    db: Database, actors: Actors, tmp_path: Path
) -> None:
    before = families.register_family(db, actors["coord_gla"], "GLA", "GCC")  # G-0001
    audit_before = _count(db, AuditLog)
    f = _file(tmp_path, GOOD)
    dry = run_import(db, actors["admin"], "families", f, dry_run=True)
    assert (dry.new_records, dry.written, dry.details) == (4, False, {"families": 3})
    assert _count(db, Family) == 1
    report = run_import(db, actors["admin"], "families", f)
    assert (report.new_records, report.unchanged_records, report.written) == (4, 0, True)
    assert report.family_ids == {
        "A": trial_ids.family_id("G", 2),
        "B": trial_ids.family_id("L", 1),
        "C": trial_ids.family_id("G", 3),
    }
    a = report.family_ids["A"]
    assert report.child_ids == {
        "row 2": trial_ids.child_id(a, 1),
        "row 3": trial_ids.child_id(a, 2),
        "row 4": trial_ids.child_id(report.family_ids["B"], 1),
        "row 5": trial_ids.child_id(report.family_ids["C"], 1),
    }
    assert before.trial_id == trial_ids.family_id("G", 1)
    view = families.get_family(db, actors["coord_gla"], a)
    assert view.local_authority == "GCC" and view.in_care_proceedings is True
    assert [(c.sex, c.legal_route, c.eligibility) for c in view.children] == [
        ("female", "sc.cpo", "pending"),
        ("male", "sc.cpo", "pending"),
    ]
    # one audit row per family and per child, in one transaction
    with db.read() as s:
        audited = s.execute(
            select(AuditLog.table_name, AuditLog.tx_id, AuditLog.user_name).where(
                AuditLog.seq > audit_before
            )
        ).all()
    assert sorted(t for t, _tx, _u in audited) == ["children"] * 4 + ["families"] * 3
    assert len({(tx, u) for _t, tx, u in audited}) == 1  # one unit of work, by admin
    again = run_import(db, actors["admin"], "families", f)
    assert (again.new_records, again.unchanged_records, again.written) == (0, 4, False)
    assert again.family_ids == report.family_ids and again.child_ids == report.child_ids
    assert "nothing new" in again.summary
    assert (_count(db, Family), _count(db, Child)) == (4, 4)
    # registering by hand afterwards continues the site sequence
    after = families.register_family(db, actors["coord_gla"], "GLA", "GCC")
    assert after.trial_id == trial_ids.family_id("G", 4)


def test_add_children_to_registered_families_twins_and_late_joiners(
    db: Database, actors: Actors, tmp_path: Path
) -> None:
    coord = actors["coord_gla"]
    randomisation.setup(db, actors["admin"], SEED)
    fam = ready_family(db, coord, "GLA", (10,))
    randomisation.randomise(db, coord, fam)
    plain = family_with_children(db, coord, "GLA", (20,)).trial_id
    visits_before = _count(db, FollowUpVisit)
    f = _file(
        tmp_path,
        HEADER + f",{fam},,,,,2024-05-01,male,2024-09-01,sc.cpo\n"
        f",{plain},GLA,GCC,,5,2024-06-01,female,2024-09-02,\n"
        f",{plain},,,,6,2024-06-01,female,2024-09-02,\n",
    )
    report = run_import(db, coord, "families", f)
    assert report.new_records == 3 and report.family_ids == {}
    assert report.child_ids["row 3"] == trial_ids.child_id(plain, 5)
    late = families.get_family(db, coord, fam).children[-1]
    assert late.child_number == 2 and late.joined_after_randomisation
    assert _count(db, FollowUpVisit) > visits_before  # its visits were scheduled
    twins = families.get_family(db, coord, plain).children
    assert [c.child_number for c in twins] == [1, 5, 6]
    assert not any(c.joined_after_randomisation for c in twins)
    again = run_import(db, coord, "families", f)
    assert (again.new_records, again.unchanged_records) == (0, 3)


def test_coordinator_scope_refused_per_row_for_read_and_write(
    db: Database, actors: Actors, tmp_path: Path
) -> None:
    cro_family = family_with_children(db, actors["coord_cro"], "CRO", (10,)).trial_id
    f = _file(
        tmp_path,
        GOOD + f",{cro_family},,,,,2024-05-01,male,2024-09-01,\n",
    )
    for dry_run in (True, False):  # a dry run reads, the import writes: both refused
        with pytest.raises(ImportRejected) as caught:
            run_import(db, actors["coord_gla"], "families", f, dry_run=dry_run)
        got = {(p.record, p.field, p.rule) for p in caught.value.problems}
        assert got == {("row 4", "site", "IMP-063"), ("row 6", "family_id", "IMP-063")}
    assert (_count(db, Family), _count(db, Child)) == (1, 1)
    # the CRO coordinator is refused the GLA rows in the same way
    got = _rejected(db, "coord_cro", actors, _file(tmp_path, GOOD))
    assert got == {(f"row {n}", "site", "IMP-063") for n in (2, 3, 5)}


def test_every_rule_is_reported_by_row_and_nothing_is_written(
    db: Database, actors: Actors, tmp_path: Path
) -> None:
    coord = actors["admin"]
    voided = families.register_family(db, coord, "GLA", "GCC").trial_id
    families.void_family(db, coord, voided, "registered twice")
    child_id = trial_ids.child_id(voided, 1)
    audit_before = _count(db, AuditLog)
    rows = [
        "A,,GLA,GCC,yes,,2024-02-14,female,2025-03-03,sc.cpo",  # 2 good
        "B,,GLA,CROY,,,2024-02-14,female,2025-03-03,",  # 3 LA of another site
        "C,,CRO,CROY,no,,2024-02-14,female,2025-03-03,",  # 4 London, not in proceedings
        ",G-0001-Q,,,,,2024-02-14,female,2025-03-03,",  # 5 bad check character
        f",{child_id},,,,,2024-02-14,female,2025-03-03,",  # 6 a child ID
        f",{voided},,,,,2024-02-14,female,2025-03-03,",  # 7 voided family
        f",{trial_ids.family_id('G', 77)},,,,,2024-02-14,female,2025-03-03,",  # 8 unknown
        "D,,GLA,,,,2025-03-04,female,2025-03-03,",  # 9 born after entering care
        "E,,GLA,,,,2018-01-01,female,2024-04-01,",  # 10 older than 60 months
        "F,,GLA,,,,2030-01-01,female,2030-02-01,",  # 11 in the future
        "G,,GLA,,,,2024-02-14,girl,2025-03-03,",  # 12 bad sex
        "H,,GLA,,,,2024-02-14,female,2025-03-03,en.C1",  # 13 an English route in Scotland
        "I,,GLA,,maybe,0,14/02/2024,female,,",  # 14 unreadable cells
        "J,G-0001-Z,GLA,,,,2024-02-14,female,2025-03-03,",  # 15 both ref and id
        ",,GLA,,,,2024-02-14,female,2025-03-03,",  # 16 neither
        "K,,,,,,2024-02-14,female,2025-03-03,",  # 17 no site
        "L,,XYZ,,,,2024-02-14,female,2025-03-03,",  # 18 unknown site
        "A,,GLA,REN,no,,2023-02-14,female,2025-03-03,sc.cpo",  # 19 disagrees with row 2
        "M,,GLA,,,,2024-03-14,female,2025-03-03,",  # 20
        "M,,GLA,,,,2024-03-14,female,2025-03-03,",  # 21 the same child again
        "N,,GLA,,,3,2024-04-14,female,2025-03-03,",  # 22
        "N,,GLA,,,3,2023-04-14,male,2025-03-03,",  # 23 the same child number
        "O,,GLA,,,100,2024-02-14,female,2025-03-03,",  # 24 child number out of range
        "P,,GLA,,,,2020-02-14,female,2025-03-03,",  # 25
        "Q,,GLA,,,,2020-02-14,female,2025-03-03,",  # 26 the same child in another family
    ]
    got = _rejected(db, "admin", actors, _file(tmp_path, HEADER + "\n".join(rows) + "\n"))
    expected = {
        ("row 3", "local_authority", "FAM-001"),
        ("row 4", "in_care_proceedings", "FAM-002"),
        ("row 5", "family_id", "ID-001"),
        ("row 6", "family_id", "ID-002"),
        ("row 7", "family_id", "FAM-003"),
        ("row 8", "family_id", "IMP-065"),
        ("row 9", "entered_care_on", "CHD-001"),
        ("row 10", "entered_care_on", "CHD-002"),
        ("row 11", "date_of_birth", "CHD-003"),
        ("row 12", "sex", "CHD-004"),
        ("row 13", "legal_route", "CHD-005"),
        ("row 14", "in_care_proceedings", "IMP-060"),
        ("row 14", "child_number", "IMP-060"),
        ("row 14", "date_of_birth", "IMP-060"),
        ("row 14", "entered_care_on", "IMP-060"),
        ("row 15", "family_ref", "IMP-061"),
        ("row 16", "family_id", "IMP-061"),
        ("row 17", "site", "IMP-062"),
        ("row 18", "site", "IMP-062"),
        ("row 19", "local_authority", "IMP-064"),
        ("row 19", "in_care_proceedings", "IMP-064"),
        ("row 21", "date_of_birth", "IMP-011"),
        ("row 23", "child_number", "IMP-067"),
        ("row 24", "child_number", "IMP-067"),
        ("row 26", "date_of_birth", "IMP-011"),
    }
    assert expected <= got, expected - got
    assert not any(r in ("row 2", "row 20", "row 22") for r, _f, _rule in got)
    assert (_count(db, Family), _count(db, Child)) == (1, 0)
    assert _count(db, AuditLog) == audit_before


def test_conflicts_and_partial_matches_with_stored_families(
    db: Database, actors: Actors, tmp_path: Path
) -> None:
    coord = actors["coord_gla"]
    f = _file(tmp_path, GOOD.replace("B,,CRO,CROY,yes,,2024-11-21,male,2025-04-10,en.C1\n", ""))
    first = run_import(db, coord, "families", f)
    a = first.family_ids["A"]
    # the same children with another legal route: a conflict, not an overwrite
    got = _rejected(db, "coord_gla", actors, _file(tmp_path, GOOD.replace("sc.cpo", "sc.s25")))
    assert {("row 2", "legal_route", "IMP-010"), ("row 3", "legal_route", "IMP-010")} <= got
    # family C again, now said to be at another local authority
    got = _rejected(db, "coord_gla", actors, _file(tmp_path, GOOD.replace("REN", "GCC")))
    assert ("row 5", "local_authority", "IMP-010") in got
    # family A again with a third child: only part of the group is stored
    f3 = _file(
        tmp_path,
        HEADER + "A,,GLA,GCC,yes,,2024-02-14,female,2025-03-03,sc.cpo\n"
        "A,,GLA,GCC,yes,,2023-01-01,female,2025-03-03,sc.cpo\n",
    )
    got = _rejected(db, "coord_gla", actors, f3)
    assert got == {("row 2", "family_ref", "IMP-066"), ("row 3", "family_ref", "IMP-066")}
    # a family_id row whose local authority disagrees with the stored family's
    wrong_la = HEADER + f",{a},GLA,REN,,,2024-01-01,male,2025-03-03,\n"
    got = _rejected(db, "coord_gla", actors, _file(tmp_path, wrong_la))
    assert got == {("row 2", "local_authority", "IMP-010")}
    # a new child given the number of a stored child
    taken = HEADER + f",{a},GLA,GCC,yes,1,2024-01-01,male,2025-03-03,\n"
    got = _rejected(db, "coord_gla", actors, _file(tmp_path, taken))
    assert got == {("row 2", "child_number", "IMP-067")}
    assert _count(db, Child) == 3


def test_import_families_command_json(
    db: Database, actors: Actors, db_url: str, tmp_path: Path
) -> None:
    base = ("--database", db_url, "--user", "coord_gla")
    bad = _file(tmp_path, HEADER + "A,,GLA,GCC,,,2024-02-14,girl,2025-03-03,\n", "bad.csv")
    out = run(*base, "import", "families", str(bad), "--json")
    assert out.exit_code == 1
    (problem,) = json.loads(out.output)["problems"]
    assert (problem["row"], problem["column"], problem["rule"]) == ("row 2", "sex", "CHD-004")
    good = _file(tmp_path, GOOD.replace("B,,CRO,CROY,yes,,2024-11-21,male,2025-04-10,en.C1\n", ""))
    ok = run(*base, "import", "families", str(good), "--json")
    assert ok.exit_code == 0, ok.stderr
    body = json.loads(ok.output)
    assert body["new_records"] == 3 and body["details"] == {"families": 2}
    assert body["family_ids"] == {"A": "G-0001-Z", "C": trial_ids.family_id("G", 2)}
    assert body["child_ids"]["row 3"] == trial_ids.child_id("G-0001-Z", 2)
    text = run(*base, "import", "families", str(good))
    assert text.exit_code == 0 and "nothing new" in text.output
    assert "A: G-0001-Z" in text.output and "row 2: G-0001-01-" in text.output


def test_example_file_imports_into_a_fresh_trial(db: Database, actors: Actors) -> None:
    coord_cro = actors["coord_cro"]
    family_with_children(db, actors["coord_gla"], "GLA", (10,))  # the example adds to G-0001-Z
    family_with_children(db, coord_cro, "CRO", (10,))
    example = Path(__file__).parent.parent / "examples" / "families.csv"
    report = run_import(db, actors["admin"], "families", example)
    assert report.new_records == 5 and report.details == {"families": 3}
