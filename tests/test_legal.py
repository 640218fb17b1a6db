"""Legal proceedings, events and decisions; permanence derived; the legal-events import."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from noim.db.models import AuditLog, LegalEvent, LegalProceedings
from noim.db.session import Database
from noim.domain.exceptions import ImportRejected, PermissionDenied, ReasonRequired, ValidationError
from noim.domain.legal import DECISION_TYPES
from noim.domain.permanence import DatedEvent, proceedings_kinds_for, summarise
from noim.domain.roles import Actor
from noim.services import legal, legal_rules
from noim.services.imports import run_import
from tests.conftest import Actors
from tests.factories import ENTERED, count_rows, problem_fields, trial_children, write_csv
from tests.test_cli import run

# --------------------------------------------------------------------------- domain


def test_permanence_is_derived_from_dated_events() -> None:
    def ev(i: int, on: str, code: str) -> DatedEvent:
        d = next(t for t in DECISION_TYPES if t.code == code)
        return DatedEvent(i, date.fromisoformat(on), code, d.kind, d.permanence_outcome)

    events = [
        ev(1, "2024-03-01", "sc.cpo"),
        ev(5, "2025-01-10", "any.reentry"),  # after the return home of 2024-09-01
        ev(2, "2024-06-01", "sc.cso"),
        ev(3, "2024-08-01", "sc.plan_return_home"),
        ev(4, "2024-09-01", "sc.return_home"),
        ev(6, "2025-02-01", "any.reentry"),  # no return home since the last re-entry
        ev(7, "2025-06-01", "sc.poa"),
    ]
    summary = summarise(events)
    assert summary.first_permanence is not None and summary.first_permanence.id == 3
    assert [e.id for e in summary.returns_home] == [4]
    assert [(r.event_id, r.after_return_home_on) for r in summary.reentries] == [
        (5, date(2024, 9, 1)),
        (6, None),
    ]
    assert summary.reentries_after_return_home == 1
    assert summarise([ev(1, "2024-03-01", "en.C1")]).first_permanence is None
    assert proceedings_kinds_for("scotland") == [
        "childrens_hearing",
        "permanence_application",
        "adoption_application",
        "other",
    ]


# --------------------------------------------------------------------------- services


def test_proceedings_events_and_history(db: Database, actors: Actors) -> None:
    gla = actors["coord_gla"]
    child = trial_children(db, actors)[0]
    p = legal.open_proceedings(db, gla, child, "childrens_hearing", date(2024, 3, 5), "Glasgow")
    assert (p.jurisdiction, p.ended_on) == ("scotland", None)
    legal.record_event(db, gla, child, "sc.icso", date(2024, 3, 8), p.id)
    legal.record_event(db, gla, child, "SC.PLAN_KINSHIP", date(2024, 7, 1), notes="panel")
    legal.record_event(db, gla, child, "sc.return_home", date(2024, 5, 1))
    legal.record_event(db, gla, child, "any.reentry", date(2024, 6, 1))
    ended = legal.end_proceedings(db, gla, p.id, date(2024, 9, 1))
    assert ended.ended_on == date(2024, 9, 1)
    h = legal.legal_history(db, gla, child)
    assert h.jurisdiction == "scotland"
    assert [e.event_type for e in h.events] == [
        "sc.icso",
        "sc.return_home",
        "any.reentry",
        "sc.plan_kinship",
    ]
    assert [(e.kind, e.permanence_outcome) for e in h.events] == [
        ("interim_order", None),
        ("care_status", "return_home"),
        ("care_status", None),
        ("decision", "kinship"),
    ]
    assert h.first_permanence is not None
    assert (h.first_permanence.event_type, h.first_permanence.outcome_label) == (
        "sc.return_home",
        "Return home",
    )
    assert h.reentries_after_return_home == 1
    assert [(t.on, t.record) for t in h.timeline][:2] == [
        (date(2024, 3, 5), "proceedings"),
        (date(2024, 3, 8), "event"),
    ]
    assert h.timeline[-1].what == "childrens_hearing ended"


def test_jurisdiction_vocabulary(db: Database, actors: Actors) -> None:
    gla, cro = trial_children(db, actors)[0], trial_children(db, actors, "CRO")[0]
    with pytest.raises(ValidationError) as caught:
        legal.record_event(db, actors["coord_cro"], cro, "sc.cso", date(2024, 4, 1))
    assert problem_fields(caught) == {("event_type", "LGL-005")}
    text = str(caught.value)
    assert "an event type of england_wales or any jurisdiction: en.V2, en.L1" in text
    assert "sc." not in text.split("expected", 1)[1]
    with pytest.raises(ValidationError) as caught:
        legal.record_event(db, actors["coord_gla"], gla, "en.E43", date(2024, 4, 1))
    assert "sc.cso" in str(caught.value) and "en.E43'" in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        legal.open_proceedings(db, actors["coord_gla"], gla, "care_proceedings", ENTERED)
    assert problem_fields(caught) == {("kind", "LGL-001")}
    with pytest.raises(ValidationError, match="LGL-001"):
        legal.open_proceedings(db, actors["coord_cro"], cro, "childrens_hearing", ENTERED)
    # the common types work in both, and each jurisdiction's own
    legal.record_event(db, actors["coord_cro"], cro, "en.E43", date(2024, 4, 1))
    legal.record_event(db, actors["coord_cro"], cro, "any.other_permanence", date(2024, 5, 1))
    legal.record_event(db, actors["coord_gla"], gla, "any.reentry", date(2024, 5, 1))
    assert legal.open_proceedings(
        db, actors["coord_cro"], cro, "care_proceedings", ENTERED
    ).jurisdiction == ("england_wales")
    vocab = legal_rules.vocabulary("england_wales")
    assert all(t.jurisdiction in ("england_wales", "any") for t in vocab.event_types)
    assert vocab.proceedings_kinds["england_wales"][0] == "care_proceedings"


def test_every_problem_is_reported_and_nothing_written(db: Database, actors: Actors) -> None:
    gla = actors["coord_gla"]
    child = trial_children(db, actors)[0]
    other = trial_children(db, actors)[0]
    theirs = legal.open_proceedings(db, gla, other, "childrens_hearing", ENTERED)
    with pytest.raises(ValidationError) as caught:
        legal.record_event(db, gla, child, "sc.nonsense", date(2020, 1, 1), theirs.id)
    assert problem_fields(caught) == {
        ("event_type", "LGL-005"),
        ("event_date", "LGL-002"),
        ("proceedings_id", "LGL-006"),
    }
    with pytest.raises(ValidationError) as caught:
        legal.record_event(db, gla, child, "sc.cso", date(2024, 3, 2), today=ENTERED)
    assert problem_fields(caught) == {("event_date", "LGL-003")}
    with pytest.raises(ValidationError) as caught:
        legal.open_proceedings(db, gla, child, "x", date(2020, 1, 1), "c" * 200)
    assert problem_fields(caught) == {
        ("kind", "LGL-001"),
        ("started_on", "LGL-002"),
        ("court_or_panel", "LGL-007"),
    }
    with pytest.raises(ValidationError) as caught:
        legal.end_proceedings(db, gla, theirs.id, date(2024, 1, 1))
    assert problem_fields(caught) == {("ended_on", "LGL-004")}
    assert count_rows(db, LegalEvent) == 0
    assert count_rows(db, LegalProceedings) == 1


def test_corrections_and_voids_are_audited_with_a_reason(db: Database, actors: Actors) -> None:
    gla = actors["coord_gla"]
    child = trial_children(db, actors)[0]
    p = legal.open_proceedings(db, gla, child, "childrens_hearing", ENTERED)
    e = legal.record_event(db, gla, child, "sc.icso", date(2024, 3, 8), p.id)
    assert count_rows(db, AuditLog, AuditLog.table_name == "legal_events") == 1
    with pytest.raises(ReasonRequired):
        legal.correct_event(db, gla, e.id, {"event_type": "sc.cso"}, "")
    with pytest.raises(ValidationError) as caught:
        legal.correct_event(db, gla, e.id, {"event_type": "en.C2", "colour": 1}, "x")
    assert problem_fields(caught) == {("colour", "LGL-021")}
    with pytest.raises(ValidationError) as caught:
        legal.correct_event(db, gla, e.id, {"event_type": "en.C2"}, "typo")
    assert problem_fields(caught) == {("event_type", "LGL-005")}
    fixed = legal.correct_event(db, gla, e.id, {"event_type": "sc.cso"}, "was the full order")
    assert fixed.kind == "order"
    fixed_p = legal.correct_proceedings(
        db, gla, p.id, {"court_or_panel": "Glasgow panel"}, "name added"
    )
    assert fixed_p.court_or_panel == "Glasgow panel"
    with pytest.raises(ValidationError, match="LGL-022"):
        legal.void_proceedings(db, gla, p.id, "duplicate")
    legal.void_event(db, gla, e.id, "entered for the wrong child")
    legal.void_proceedings(db, gla, p.id, "duplicate")
    with pytest.raises(ValidationError, match="LGL-008"):
        legal.correct_event(db, gla, e.id, {"notes": "x"}, "again")
    with pytest.raises(ValidationError, match="LGL-008"):
        legal.end_proceedings(db, gla, p.id, date(2024, 6, 1))
    with db.read() as s:
        rows = s.execute(
            select(AuditLog.table_name, AuditLog.action, AuditLog.field, AuditLog.reason).where(
                AuditLog.action.in_(["update", "void"])
            )
        ).all()
    got = {(r[0], r[1], r[2], r[3]) for r in rows}
    assert ("legal_events", "update", "event_type_code", "was the full order") in got
    assert ("legal_proceedings", "update", "court_or_panel", "name added") in got
    assert ("legal_events", "void", "void_reason", "entered for the wrong child") in got
    assert ("legal_proceedings", "void", "void_reason", "duplicate") in got
    assert legal.legal_history(db, gla, child).first_permanence is None


Call = Callable[[Database, Actor, str, int, int], Any]

CALLS: list[tuple[str, Call]] = [
    ("legal_history", lambda db, a, c, p, e: legal.legal_history(db, a, c)),
    (
        "open_proceedings",
        lambda db, a, c, p, e: legal.open_proceedings(db, a, c, "childrens_hearing", ENTERED),
    ),
    ("end_proceedings", lambda db, a, c, p, e: legal.end_proceedings(db, a, p, ENTERED)),
    (
        "correct_proceedings",
        lambda db, a, c, p, e: legal.correct_proceedings(db, a, p, {"court_or_panel": "X"}, "x"),
    ),
    (
        "record_event",
        lambda db, a, c, p, e: legal.record_event(db, a, c, "sc.hearing", ENTERED),
    ),
    (
        "correct_event",
        lambda db, a, c, p, e: legal.correct_event(db, a, e, {"notes": "x"}, "x"),
    ),
    ("void_event", lambda db, a, c, p, e: legal.void_event(db, a, e, "x")),
]


@pytest.mark.parametrize(("name", "call"), CALLS, ids=[n for n, _ in CALLS])
def test_croydon_coordinator_cannot_touch_glasgow_legal_records(
    db: Database, actors: Actors, name: str, call: Call
) -> None:
    child = trial_children(db, actors)[0]
    gla = actors["coord_gla"]
    p = legal.open_proceedings(db, gla, child, "childrens_hearing", ENTERED)
    e = legal.record_event(db, gla, child, "sc.hearing", date(2024, 3, 4), p.id)
    before = count_rows(db, AuditLog)
    with pytest.raises(PermissionDenied, match=r"coord_cro.*may not .* at site 'GLA'"):
        call(db, actors["coord_cro"], child, p.id, e.id)
    with pytest.raises(PermissionDenied):
        call(db, actors["research_cro"], child, p.id, e.id)
    assert count_rows(db, AuditLog) == before
    call(db, gla, child, p.id, e.id)


# --------------------------------------------------------------------------- CLI


def test_legal_commands(db: Database, actors: Actors, db_url: str) -> None:
    child = trial_children(db, actors, "CRO")[0]
    base = ("--database", db_url, "--user", "coord_cro")
    made = run(
        *base, "legal", "proceedings", child, "--kind", "care_proceedings", "--from",
        "2024-02-20", "--court", "Croydon FC", "--json",
    )  # fmt: skip
    assert made.exit_code == 0, made.stderr
    pid = str(json.loads(made.output)["id"])
    ok = run(*base, "legal", "event", child, "--type", "en.C1", "--on", "2024-03-01",
             "--proceedings", pid)  # fmt: skip
    assert ok.exit_code == 0, ok.stderr
    assert "en.C1 (Interim Care Order) on 2024-03-01" in ok.output
    run(*base, "legal", "event", child, "--type", "en.E43", "--on", "2024-08-01")
    bad = run(*base, "legal", "event", child, "--type", "sc.cso", "--on", "2024-04-01")
    assert bad.exit_code == 1 and "[rule LGL-005]" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    listed = json.loads(run(*base, "legal", "list", child, "--json").output)
    assert listed["first_permanence"]["event_type"] == "en.E43"
    assert listed["first_permanence"]["permanence_outcome"] == "kinship"
    table = run(*base, "legal", "list", child)
    assert "First permanence decision: 2024-08-01 en.E43" in table.output
    ended = run(*base, "legal", "end-proceedings", pid, "--on", "2024-08-01")
    assert ended.exit_code == 0, ended.stderr
    eid = str(listed["events"][0]["id"])
    fixed = run(*base, "legal", "correct-event", eid, "--notes", "ICO", "--reason", "note")
    assert fixed.exit_code == 0, fixed.stderr
    other = run("--database", db_url, "--user", "coord_gla", "legal", "list", child)
    assert other.exit_code == 1 and "may not" in other.stderr
    types = json.loads(run("legal", "types", "--jurisdiction", "scotland", "--json").output)
    codes = {t["code"] for t in types["event_types"]}
    assert "sc.cso" in codes and "any.reentry" in codes and "en.C2" not in codes
    assert run("legal", "types").exit_code == 0


# --------------------------------------------------------------------------- import


def _write(tmp_path: Path, body: str) -> Path:
    header = "child_id,event_type,event_date,proceedings_kind,proceedings_started_on,notes"
    return write_csv(tmp_path / "legal.csv", header, body)


def test_legal_events_import_creates_proceedings_once_and_is_idempotent(
    db: Database, actors: Actors, tmp_path: Path
) -> None:
    gla = actors["coord_gla"]
    a = trial_children(db, actors)[0]
    b = trial_children(db, actors)[0]
    stored = legal.open_proceedings(db, gla, b, "childrens_hearing", date(2024, 3, 2))
    f = _write(
        tmp_path,
        f"{a},sc.cpo,2024-03-01,,,\n"
        f"{a},sc.reporter_referral,2024-03-03,childrens_hearing,2024-03-03,\n"
        f"{a},SC.ICSO,2024-03-05,Childrens_Hearing,2024-03-03,first hearing\n"
        f"{b},sc.icso,2024-03-04,childrens_hearing,2024-03-02,\n",
    )
    dry = run_import(db, gla, "legal-events", f, dry_run=True)
    assert (dry.new_records, dry.details) == (4, {"new proceedings": 1})
    audit_before = count_rows(db, AuditLog)
    report = run_import(db, gla, "legal-events", f)
    assert (report.new_records, report.unchanged_records) == (4, 0)
    assert "added 4 legal event(s), 1 new proceedings" in report.summary
    assert count_rows(db, LegalProceedings) == 2
    assert count_rows(db, AuditLog) == audit_before + 5
    h = legal.legal_history(db, gla, a)
    assert [e.proceedings_id is not None for e in h.events] == [False, True, True]
    assert h.events[1].proceedings_id == h.events[2].proceedings_id
    assert h.proceedings[0].jurisdiction == "scotland"
    assert legal.legal_history(db, gla, b).events[0].proceedings_id == stored.id
    again = run_import(db, gla, "legal-events", f)
    assert (again.new_records, again.unchanged_records) == (0, 4)
    f = _write(tmp_path, f"{a},sc.icso,2024-03-05,childrens_hearing,2024-03-03,other notes\n")
    with pytest.raises(ImportRejected) as caught:
        run_import(db, gla, "legal-events", f)
    assert [(p.record, p.rule) for p in caught.value.problems] == [("row 2", "IMP-010")]


def test_every_bad_legal_row_is_reported(db: Database, actors: Actors, tmp_path: Path) -> None:
    gla = actors["coord_gla"]
    a = trial_children(db, actors)[0]
    cro = trial_children(db, actors, "CRO")[0]
    legal.open_proceedings(db, gla, a, "childrens_hearing", date(2024, 3, 2))
    legal.open_proceedings(db, gla, a, "childrens_hearing", date(2024, 3, 2))
    f = _write(
        tmp_path,
        f"{a},sc.cpo,2024-03-01,,,\n"  # row 2: good
        f"{a},sc.cpo,2024-03-01,,,\n"  # row 3: same as row 2
        f"{a},en.C2,2020-01-01,care_proceedings,2020-01-01,\n"  # row 4: 4 problems
        f"{a},sc.cso,2024-04-01,childrens_hearing,,\n"  # row 5: half a proceedings
        f"{cro},en.C1,2024-04-01,,,\n"  # row 6: another site
        f"{a},sc.cso,2024-13-01,,,\n"  # row 7: bad date
        f"{a},sc.cso,2024-05-01,childrens_hearing,2024-03-02,\n",  # row 8: ambiguous
    )
    with pytest.raises(ImportRejected) as caught:
        run_import(db, gla, "legal-events", f)
    got = {(p.record, p.field, p.rule) for p in caught.value.problems}
    assert got == {
        ("row 3", "event_type", "IMP-011"),
        ("row 4", "event_type", "LGL-005"),
        ("row 4", "event_date", "LGL-002"),
        ("row 4", "proceedings_kind", "LGL-001"),
        ("row 4", "proceedings_started_on", "LGL-002"),
        ("row 5", "proceedings_started_on", "IMP-020"),
        ("row 6", "child_id", "IMP-004"),
        ("row 7", "event_date", "IMP-005"),
        ("row 8", "proceedings_kind", "IMP-021"),
    }
    assert count_rows(db, LegalEvent) == 0
    assert count_rows(db, LegalProceedings) == 2


def test_legal_events_import_command(
    db: Database, actors: Actors, db_url: str, tmp_path: Path
) -> None:
    a = trial_children(db, actors, "CRO")[0]
    f = _write(tmp_path, f"{a},en.C1,2024-03-01,care_proceedings,2024-02-27,\n")
    base = ("--database", db_url, "--user", "coord_cro", "import", "legal-events", str(f))
    ok = run(*base)
    assert ok.exit_code == 0, ok.stderr
    assert "added 1 legal event(s), 1 new proceedings" in ok.output
    again = run(*base, "--json")
    assert json.loads(again.output)["unchanged_records"] == 1


@pytest.mark.sqlite_only
def test_example_files_import_into_their_registered_families(backend: str, empty_url: str) -> None:
    from noim.domain.trialdef import default_definition
    from noim.services.users import resolve_actor
    from tests.factories import registered_families

    registered_families(empty_url, default_definition())
    examples = Path(__file__).resolve().parent.parent / "examples"
    db = Database(empty_url)
    try:
        admin = resolve_actor(db, "admin")
        for kind, name in (("placements", "placements.csv"), ("legal-events", "legal-events.csv")):
            report = run_import(db, admin, kind, examples / name)
            assert report.written and report.new_records > 0, report.summary
            assert run_import(db, admin, kind, examples / name).new_records == 0
        h = legal.legal_history(db, admin, "G-0001-01-O")
        assert h.first_permanence is not None and h.reentries_after_return_home == 1
    finally:
        db.dispose()
