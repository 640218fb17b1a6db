"""Placements: add, end, move, correct, void, moves counted; the placements import."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from noim.db.models import AuditLog, Child, Placement
from noim.db.session import Database
from noim.domain.exceptions import (
    ImportRejected,
    NotFound,
    PermissionDenied,
    ReasonRequired,
    ValidationError,
)
from noim.domain.roles import Actor
from noim.services import people, placements, voiding
from noim.services.imports import run_import
from tests.conftest import Actors
from tests.factories import ENTERED, count_rows, problem_fields, trial_children, write_csv
from tests.test_cli import run


def _carer(db: Database, actor: Actor, site: str) -> int:
    return people.add_carer(db, actor, site, "foster").id


# --------------------------------------------------------------------------- services


def test_add_move_end_and_moves_counted(db: Database, actors: Actors) -> None:
    gla = actors["coord_gla"]
    (child, other) = trial_children(db, actors, n=2)
    carer = _carer(db, gla, "GLA")
    first = placements.add_placement(db, gla, child, ENTERED, "foster", carer, "GCC")
    assert (first.end_date, first.local_authority, first.carer_id) == (None, "GCC", carer)
    move = placements.move_child(db, gla, child, date(2024, 6, 1), "kinship", "planned_move")
    assert move.ended.id == first.id
    assert (move.ended.end_date, move.ended.end_reason) == (date(2024, 6, 1), "planned_move")
    assert (move.started.start_date, move.started.end_date) == (date(2024, 6, 1), None)
    placements.move_child(
        db, gla, child, date(2024, 9, 1), "foster", "disruption", local_authority="REN"
    )
    listed = placements.list_placements(db, gla, child)
    assert [p.placement_type for p in listed.placements] == ["foster", "kinship", "foster"]
    assert [p.end_date is None for p in listed.placements] == [False, False, True]
    assert listed.moves == 2
    last = listed.placements[-1]
    ended = placements.end_placement(db, gla, last.id, date(2024, 12, 1), "return_home")
    assert ended.end_reason == "return_home"
    with db.read() as s:
        ids = {r.trial_id: r.id for r in s.execute(select(Child.trial_id, Child.id))}
        assert placements.moves_by_child(s, [ids[child], ids[other]]) == {
            ids[child]: 2,
            ids[other]: 0,
        }
        assert placements.moves_by_child(s) == {ids[child]: 2}
    # a voided placement is not a move
    placements.void_placement(db, gla, last.id, "entered twice")
    assert placements.list_placements(db, gla, child).moves == 1
    # a carer named by a live placement is not voided
    with pytest.raises(ValidationError) as caught:
        voiding.void_record(db, gla, "carers", carer, "entered twice")
    assert problem_fields(caught) == {("placements", "PPL-017")}


def test_move_ends_exactly_one_open_placement(db: Database, actors: Actors) -> None:
    gla = actors["coord_gla"]
    (child,) = trial_children(db, actors)
    with pytest.raises(ValidationError) as caught:
        placements.move_child(db, gla, child, date(2024, 6, 1), "foster", "planned_move")
    assert problem_fields(caught) == {("placement", "PLC-021")}
    first = placements.add_placement(db, gla, child, ENTERED, "foster")
    # a bad new placement: nothing is written, the open placement stays open
    with pytest.raises(ValidationError) as caught:
        placements.move_child(
            db, gla, child, date(2024, 2, 1), "tent", "whim", local_authority="CROY"
        )
    assert problem_fields(caught) == {
        ("end_date", "PLC-004"),
        ("end_reason", "PLC-005"),
        ("placement_type", "PLC-001"),
        ("local_authority", "PLC-008"),
    }
    assert count_rows(db, Placement) == 1
    assert placements.list_placements(db, gla, child).placements[0].end_date is None
    placements.end_placement(db, gla, first.id, date(2024, 5, 1), "return_home")
    with pytest.raises(ValidationError, match="PLC-021"):
        placements.end_placement(db, gla, first.id, date(2024, 5, 2), "return_home")


def test_every_problem_is_reported_and_nothing_written(db: Database, actors: Actors) -> None:
    gla = actors["coord_gla"]
    (child,) = trial_children(db, actors)
    cro_carer = _carer(db, actors["coord_cro"], "CRO")
    with pytest.raises(ValidationError) as caught:
        placements.add_placement(db, gla, child, date(2020, 1, 1), "castle", cro_carer, "CROY")
    assert problem_fields(caught) == {
        ("placement_type", "PLC-001"),
        ("start_date", "PLC-002"),
        ("carer_id", "PLC-007"),
        ("local_authority", "PLC-008"),
    }
    text = str(caught.value)
    assert "got 'castle'; expected one of foster, kinship" in text
    assert "a date on or after the child's date of birth (2023-05-01)" in text
    with pytest.raises(ValidationError) as caught:
        placements.add_placement(db, gla, child, date(2024, 3, 2), "foster", today=ENTERED)
    assert problem_fields(caught) == {("start_date", "PLC-003")}
    assert count_rows(db, Placement) == 0
    p = placements.add_placement(db, gla, child, ENTERED, "foster")
    with pytest.raises(ValidationError) as caught:
        placements.end_placement(db, gla, p.id, date(2024, 1, 1), "bored")
    assert problem_fields(caught) == {("end_date", "PLC-004"), ("end_reason", "PLC-005")}
    assert placements.list_placements(db, gla, child).placements[0].end_date is None


def test_corrections_are_audited_with_a_reason(db: Database, actors: Actors) -> None:
    gla = actors["coord_gla"]
    (child,) = trial_children(db, actors)
    p = placements.add_placement(db, gla, child, ENTERED, "foster")
    assert (
        count_rows(db, AuditLog, AuditLog.table_name == "placements", AuditLog.action == "insert")
        == 1
    )
    with pytest.raises(ReasonRequired):
        placements.correct_placement(db, gla, p.id, {"placement_type": "kinship"}, " ")
    with pytest.raises(ValidationError) as caught:
        placements.correct_placement(
            db, gla, p.id, {"start_date": date(2020, 1, 1), "colour": "red"}, "typo"
        )
    assert problem_fields(caught) == {("colour", "PLC-023")}
    with pytest.raises(ValidationError) as caught:
        placements.correct_placement(db, gla, p.id, {"end_date": date(2024, 4, 1)}, "typo")
    assert problem_fields(caught) == {("end_reason", "PLC-006")}
    fixed = placements.correct_placement(
        db, gla, p.id, {"placement_type": "kinship", "start_date": date(2024, 3, 2)}, "typo"
    )
    assert (fixed.placement_type, fixed.start_date) == ("kinship", date(2024, 3, 2))
    with db.read() as s:
        rows = s.execute(
            select(AuditLog.field, AuditLog.old_value, AuditLog.new_value, AuditLog.reason).where(
                AuditLog.table_name == "placements", AuditLog.action == "update"
            )
        ).all()
    assert {(r[0], json.loads(r[1]), json.loads(r[2]), r[3]) for r in rows} == {
        ("placement_type", "foster", "kinship", "typo"),
        ("start_date", "2024-03-01", "2024-03-02", "typo"),
    }
    placements.void_placement(db, gla, p.id, "wrong child")
    with pytest.raises(ValidationError, match="PLC-022"):
        placements.correct_placement(db, gla, p.id, {"placement_type": "foster"}, "again")
    with pytest.raises(NotFound):
        placements.end_placement(db, gla, 9999, ENTERED, "other")


Call = Callable[[Database, Actor, str, int], Any]

CALLS: list[tuple[str, Call]] = [
    ("list_placements", lambda db, a, c, p: placements.list_placements(db, a, c)),
    ("add_placement", lambda db, a, c, p: placements.add_placement(db, a, c, ENTERED, "foster")),
    (
        "move_child",
        lambda db, a, c, p: placements.move_child(db, a, c, date(2024, 5, 1), "foster", "other"),
    ),
    (
        "end_placement",
        lambda db, a, c, p: placements.end_placement(db, a, p, date(2024, 5, 1), "other"),
    ),
    (
        "correct_placement",
        lambda db, a, c, p: placements.correct_placement(
            db, a, p, {"placement_type": "kinship"}, "x"
        ),
    ),
    ("void_placement", lambda db, a, c, p: placements.void_placement(db, a, p, "x")),
]


@pytest.mark.parametrize(("name", "call"), CALLS, ids=[n for n, _ in CALLS])
def test_croydon_coordinator_cannot_touch_glasgow_placements(
    db: Database, actors: Actors, name: str, call: Call
) -> None:
    (child,) = trial_children(db, actors)
    p = placements.add_placement(db, actors["coord_gla"], child, ENTERED, "foster")
    before = count_rows(db, AuditLog)
    with pytest.raises(PermissionDenied, match=r"coord_cro.*may not .* at site 'GLA'"):
        call(db, actors["coord_cro"], child, p.id)
    assert count_rows(db, AuditLog) == before
    with pytest.raises(PermissionDenied):
        call(db, actors["research_cro"], child, p.id)
    if name == "add_placement":  # coord_gla may add; the rules then refuse the overlap with p
        with pytest.raises(ValidationError, match="PLC-010"):
            call(db, actors["coord_gla"], child, p.id)
    else:
        call(db, actors["coord_gla"], child, p.id)


def test_read_only_roles_cannot_write(db: Database, actors: Actors) -> None:
    (child,) = trial_children(db, actors)
    with pytest.raises(PermissionDenied, match="lacks 'write_trial_data'"):
        placements.add_placement(db, actors["statistician"], child, ENTERED, "foster")
    assert placements.list_placements(db, actors["research_gla"], child).moves == 0


# --------------------------------------------------------------------------- CLI


def test_placement_commands(db: Database, actors: Actors, db_url: str) -> None:
    (child,) = trial_children(db, actors)
    base = ("--database", db_url, "--user", "coord_gla")
    ok = run(*base, "placement", "add", child, "--from", "2024-03-01", "--type", "foster")
    assert ok.exit_code == 0, ok.stderr
    assert "foster from 2024-03-01 (open)" in ok.output
    moved = run(
        *base, "placement", "move", child, "--on", "2024-07-01", "--type", "kinship",
        "--reason", "planned_move", "--json",
    )  # fmt: skip
    assert moved.exit_code == 0, moved.stderr
    data = json.loads(moved.output)
    assert data["ended"]["end_date"] == "2024-07-01"
    assert data["started"]["placement_type"] == "kinship"
    listed = json.loads(run(*base, "placement", "list", child, "--json").output)
    assert listed["moves"] == 1 and len(listed["placements"]) == 2
    table = run(*base, "placement", "list", child)
    assert "1 move(s)" in table.output
    pid = data["started"]["id"]
    bad = run(*base, "placement", "end", str(pid), "--on", "2024-01-01", "--reason", "bored")
    assert bad.exit_code == 1
    assert bad.stderr.startswith("error: 2 problems:") and "PLC-005" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    fixed = run(*base, "placement", "correct", str(pid), "--type", "foster", "--reason", "typo")
    assert fixed.exit_code == 0, fixed.stderr
    nothing = run(*base, "placement", "correct", str(pid), "--reason", "typo")
    assert nothing.exit_code == 2
    other = run("--database", db_url, "--user", "coord_cro", "placement", "list", child)
    assert other.exit_code == 1 and "may not" in other.stderr
    void = run(*base, "placement", "void", str(pid), "--reason", "duplicate")
    assert void.exit_code == 0 and "[VOID]" in void.output


# --------------------------------------------------------------------------- import


def _write(tmp_path: Path, body: str) -> Path:
    header = "child_id,start_date,end_date,placement_type,end_reason,carer_id,local_authority"
    return write_csv(tmp_path / "placements.csv", header, body)


def test_placements_import_is_atomic_idempotent_and_audited(
    db: Database, actors: Actors, tmp_path: Path
) -> None:
    a, b = trial_children(db, actors, n=2)
    carer = _carer(db, actors["coord_gla"], "GLA")
    f = _write(
        tmp_path,
        f"{a},2024-03-01,2024-06-01,foster,planned_move,{carer},GCC\n"
        f"{a},2024-06-01,,Kinship,,,gcc\n"
        f"{b},2024-03-01,,foster,,,\n",
    )
    gla = actors["coord_gla"]
    dry = run_import(db, gla, "placements", f, dry_run=True)
    assert (dry.new_records, dry.written) == (3, False)
    assert count_rows(db, Placement) == 0
    audit_before = count_rows(db, AuditLog)
    report = run_import(db, gla, "placements", f)
    assert (report.new_records, report.unchanged_records) == (3, 0)
    assert count_rows(db, AuditLog) == audit_before + 3
    listed = placements.list_placements(db, gla, a)
    assert listed.moves == 1
    assert [(p.placement_type, p.local_authority) for p in listed.placements] == [
        ("foster", "GCC"),
        ("kinship", "GCC"),
    ]
    again = run_import(db, gla, "placements", f)
    assert (again.new_records, again.unchanged_records) == (0, 3)
    assert "nothing new" in again.summary
    # the file now ends a placement stored open: a conflict, not an overwrite
    f = _write(tmp_path, f"{b},2024-03-01,2024-08-01,foster,disruption,,\n")
    with pytest.raises(ImportRejected) as caught:
        run_import(db, gla, "placements", f)
    assert [(p.record, p.field, p.rule) for p in caught.value.problems] == [
        ("row 2", "start_date", "IMP-010")
    ]
    assert count_rows(db, Placement, Placement.end_date.is_not(None)) == 1


def test_every_bad_placement_row_is_reported(db: Database, actors: Actors, tmp_path: Path) -> None:
    a, b = trial_children(db, actors, n=2)
    (cro,) = trial_children(db, actors, "CRO")
    cro_carer = _carer(db, actors["coord_cro"], "CRO")
    f = _write(
        tmp_path,
        f"{a},2024-03-01,,foster,,,\n"  # row 2: good
        f"{a},2024-03-01,,foster,,,\n"  # row 3: same key as row 2
        f"{b},2024-03-01,2024-02-01,tent,,{cro_carer},CROY\n"  # row 4: five problems
        f"{cro},2024-03-01,,foster,,,\n"  # row 5: another site's child
        f"{b},01/04/2024,,foster,planned_move,x,\n"  # row 6: undeclared UK date, bad id
        f"{b},2020-01-01,2099-01-01,foster,nope,,\n",  # row 7: before birth, future, bad code
    )
    with pytest.raises(ImportRejected) as caught:
        run_import(db, actors["coord_gla"], "placements", f)
    got = {(p.record, p.field, p.rule) for p in caught.value.problems}
    assert got == {
        ("row 3", "start_date", "IMP-011"),
        ("row 4", "end_date", "PLC-004"),
        ("row 4", "placement_type", "PLC-001"),
        ("row 4", "end_reason", "PLC-006"),
        ("row 4", "carer_id", "PLC-007"),
        ("row 4", "local_authority", "PLC-008"),
        ("row 5", "child_id", "IMP-004"),
        ("row 6", "start_date", "IMP-005"),
        ("row 6", "carer_id", "IMP-005"),
        ("row 6", "end_reason", "PLC-006"),
        ("row 7", "start_date", "PLC-002"),
        ("row 7", "end_date", "PLC-003"),
        ("row 7", "end_reason", "PLC-005"),
    }
    assert count_rows(db, Placement) == 0


def test_placements_import_command(
    db: Database, actors: Actors, db_url: str, tmp_path: Path
) -> None:
    (a,) = trial_children(db, actors)
    f = _write(tmp_path, f"{a},01/03/2024,,foster,,,\n")
    base = ("--database", db_url, "--user", "coord_gla", "import", "placements", str(f))
    bad = run(*base, "--json")
    assert bad.exit_code == 1
    assert [p["rule"] for p in json.loads(bad.output)["problems"]] == ["IMP-005"]
    ok = run(*base, "--dates", "dmy")
    assert ok.exit_code == 0, ok.stderr
    assert "added 1 placement(s)" in ok.output
