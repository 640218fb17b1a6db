"""Import of assessments (long and wide): every bad row, atomic, idempotent, scored, audited
with one grouped audit row per assessment, linked to follow-up visits."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from noim import instruments
from noim.db import bulk
from noim.db.audit import update_rows
from noim.db.audit_grouped import GROUPED_FIELD, expand_audit_row
from noim.db.audit_verify import verify_chain, verify_data
from noim.db.base import utcnow
from noim.db.models import (
    Assessment,
    AuditLog,
    DerivedScore,
    FollowUpVisit,
    ItemResponse,
)
from noim.db.session import Database
from noim.domain.durations import add_months
from noim.domain.exceptions import ImportRejected
from noim.services import assessments, consent, randomisation
from noim.services.imports import run_import
from tests.conftest import Actors
from tests.dbutil import drop_protection, raw
from tests.factories import family_with_children
from tests.test_cli import run

HEADER = "child_id,timepoint,instrument,form,respondent,date,item,value,missing_reason\n"
TODAY = utcnow().date()


@pytest.fixture(autouse=True)
def _today() -> None:
    """Today as each test starts (a run that crosses midnight UTC randomises on the new day)."""
    global TODAY
    TODAY = utcnow().date()


def _count(db: Database, model: type) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def randomised_children(db: Database, actors: Actors, n: int = 2) -> list[str]:
    """Children of a family randomised today, in care for 15 months (the 15m window is open)."""
    coord = actors["coord_gla"]
    entered = add_months(TODAY, -15)
    fam = family_with_children(db, coord, "GLA", (10, 30)[:n], entered=entered)
    for child in fam.children:
        consent.decide_eligibility(db, coord, child.trial_id, True, entered + timedelta(days=5))
        consent.record_consent(
            db, coord, child.trial_id, "local_authority", "v3.1", entered + timedelta(days=6)
        )
    randomisation.setup(db, actors["admin"], 20240501)
    randomisation.randomise(db, coord, fam.trial_id)
    return [c.trial_id for c in fam.children]


def long_rows(
    child: str,
    tp: str,
    on: date | str,
    values: dict[int, object],
    form: str = "2-4",
    respondent: str = "carer",
) -> str:
    out = []
    for item, v in values.items():
        reason = ""
        if isinstance(v, str) and not v.isdigit():
            v, reason = "", v
        out.append(
            f"{child},{tp},sdq,{form},{respondent},{on},{item},{'' if v is None else v},{reason}\n"
        )
    return "".join(out)


def sdq(seed: int) -> dict[int, object]:
    return {i: (i * 7 + seed) % 3 for i in range(1, 26)}


def test_long_import_scores_links_visits_and_is_idempotent(
    db: Database, actors: Actors, tmp_path: Path
) -> None:
    a, b = randomised_children(db, actors)
    first = sdq(1)
    first[3] = "dont_know"  # missing with a reason
    first[8] = None  # missing, not answered
    second = sdq(2)
    del second[25]  # absent: stored as not answered, as record_assessment does
    f = tmp_path / "long.csv"
    baseline = add_months(TODAY, -15) + timedelta(days=40)
    f.write_text(
        HEADER
        + long_rows(a, "15m", TODAY, first)
        + long_rows(b, "15m", TODAY, second, respondent="teacher")
        + long_rows(a, "baseline", baseline, sdq(3)),
        encoding="utf-8",
    )
    actor = actors["research_gla"]
    dry = run_import(db, actor, "assessments", f, dry_run=True)
    assert (dry.new_records, dry.written) == (3, False)
    assert _count(db, Assessment) == 0
    report = run_import(db, actor, "assessments", f)
    assert (report.new_records, report.unchanged_records) == (3, 0)
    assert report.details["item responses"] == 75
    assert _count(db, ItemResponse) == 75
    # scores equal noim.instruments.score of each assessment, with the scoring version
    with db.read() as s:
        for (a_id,) in s.execute(select(Assessment.id)):
            responses = {
                r.item: (None if r.value is None else int(r.value))
                for r in s.scalars(select(ItemResponse).where(ItemResponse.assessment_id == a_id))
            }
            expected = instruments.score("sdq", responses, "2-4")
            stored = {
                d.scale: d.score
                for d in s.scalars(select(DerivedScore).where(DerivedScore.assessment_id == a_id))
            }
            assert stored == expected
            versions = s.scalars(
                select(DerivedScore.scoring_version).where(DerivedScore.assessment_id == a_id)
            )
            assert set(versions) == {"sdq-2024.1"}
        missing = s.execute(
            select(ItemResponse.item, ItemResponse.missing_reason).where(
                ItemResponse.value.is_(None)
            )
        ).all()
        assert sorted(missing) == [(3, "dont_know"), (8, "not_answered"), (25, "not_answered")]
        # each assessment linked to its visit; the 15m visits are completed today
        linked = s.execute(
            select(
                Assessment.timepoint_code, FollowUpVisit.timepoint_code, Assessment.out_of_window
            ).join(FollowUpVisit, FollowUpVisit.id == Assessment.visit_id)
        ).all()
        assert sorted(linked) == [("15m", "15m", False)] * 2 + [("baseline", "baseline", False)]
        done = s.execute(
            select(FollowUpVisit.timepoint_code, FollowUpVisit.completed_on).where(
                FollowUpVisit.status == "completed"
            )
        ).all()
        assert sorted(done) == [("15m", TODAY), ("15m", TODAY), ("baseline", baseline)]
    # one audit row per assessment: its row, its item responses and its scores; it verifies
    with db.read() as s:
        grouped = s.scalars(
            select(AuditLog.new_value).where(
                AuditLog.table_name == "assessments", AuditLog.field == GROUPED_FIELD
            )
        ).all()
        assert len(grouped) == 3
        first = json.loads(grouped[0])
        assert sorted(first) == ["row", "tables"]
        assert sorted(first["tables"]) == ["derived_scores", "item_responses"]
        assert len(first["tables"]["item_responses"]["rows"]) == 25
        assert len(first["tables"]["derived_scores"]["rows"]) == 8
        assert grouped[0] == bulk.dump(first)  # canonical JSON
        tables = s.scalars(
            select(AuditLog.table_name).where(
                AuditLog.table_name.in_(["assessments", "item_responses", "derived_scores"])
            )
        ).all()
        assert tables == ["assessments"] * 3
    with db.engine.connect() as conn:
        assert verify_chain(conn).ok
        assert verify_data(conn).ok
    # idempotent
    audit_rows = _count(db, AuditLog)
    again = run_import(db, actor, "assessments", f)
    assert (again.new_records, again.unchanged_records) == (0, 3)
    assert "nothing new" in again.summary
    assert _count(db, AuditLog) == audit_rows


def test_out_of_window_is_flagged_and_single_record_links_too(
    db: Database, actors: Actors, tmp_path: Path
) -> None:
    a, b = randomised_children(db, actors)
    late_baseline = add_months(TODAY, -15) + timedelta(days=200)  # window is 4-14 weeks
    f = tmp_path / "late.csv"
    f.write_text(HEADER + long_rows(a, "baseline", late_baseline, sdq(0)), encoding="utf-8")
    report = run_import(db, actors["coord_gla"], "assessments", f)
    assert report.details["flagged out of window"] == 1
    assert "1 flagged out of window" in report.summary
    view = assessments.record_assessment(
        db,
        actors["coord_gla"],
        b,
        "15m",
        "sdq",
        TODAY,
        dict.fromkeys(range(1, 26), 1),
        "carer",
        "2-4",
    )
    assert view.out_of_window is False
    with db.read() as s:
        flags = dict(s.execute(select(Assessment.id, Assessment.out_of_window)).all())
        assert flags[view.id] is False and sorted(flags.values()) == [False, True]
        statuses = s.execute(
            select(
                FollowUpVisit.child_id, FollowUpVisit.timepoint_code, FollowUpVisit.status
            ).where(FollowUpVisit.status == "completed")
        ).all()
        assert sorted(t for _c, t, _s in statuses) == ["15m", "baseline"]
        visit = s.scalar(select(Assessment.visit_id).where(Assessment.id == view.id))
        assert visit is not None
    (late_id,) = [k for k, v in flags.items() if v]
    assert assessments.get_assessment(db, actors["coord_gla"], late_id).out_of_window is True


def test_every_bad_row_is_reported_and_nothing_written(
    db: Database, actors: Actors, tmp_path: Path
) -> None:
    a, b = randomised_children(db, actors)
    before_randomisation = TODAY - timedelta(days=3)
    f = tmp_path / "bad.csv"
    body = (
        long_rows(a, "15m", TODAY, {1: 1, 2: 2})  # rows 2-3 good
        + f"{a[:-1]}Q,15m,sdq,2-4,carer,{TODAY},1,1,\n"  # 4 bad check character
        + f"{a},week2,sdq,2-4,carer,{TODAY},1,1,\n"  # 5 bad timepoint
        + f"{b},15m,sdq,2-4,carer,{TODAY},40,1,\n"  # 6 item out of range
        + f"{b},15m,sdq,2-4,carer,{TODAY},2,7,\n"  # 7 value not allowed
        + f"{a},15m,sdq,2-4,carer,{TODAY},2,0,\n"  # 8 duplicate item (row 3)
        + f"{b},15m,sdq,2-4,carer,{before_randomisation},1,1,\n"  # 9 follow-up before rand.
        + f"{b},baseline,sdq,2-4,carer,05/03/2024,1,1,\n"  # 10 undeclared UK date
        + f"{b},15m,sdq,2-4,neighbour,{TODAY},3,x,lost\n"  # 11 respondent, value, reason
    )
    f.write_text(HEADER + body, encoding="utf-8")
    with pytest.raises(ImportRejected) as caught:
        run_import(db, actors["coord_gla"], "assessments", f)
    got = {(p.record, p.field, p.rule) for p in caught.value.problems}
    expected = {
        ("row 4", "child_id", "IMP-004"),
        ("row 5", "timepoint", "ASM-006"),
        ("row 6", "item", "ASM-002"),
        ("row 7", "value", "ASM-002"),
        ("row 8", "item", "IMP-011"),
        ("row 9", "date", "ASM-008"),
        ("row 10", "date", "IMP-005"),
        ("row 11", "respondent", "ASM-003"),
        ("row 11", "value", "IMP-005"),
        ("row 11", "missing_reason", "ASM-004"),
    }
    assert got == expected
    dup = next(p for p in caught.value.problems if p.rule == "IMP-011")
    assert "row 3" in dup.expected
    assert _count(db, Assessment) == 0 and _count(db, ItemResponse) == 0


def test_conflict_with_stored_assessment(db: Database, actors: Actors, tmp_path: Path) -> None:
    a, _b = randomised_children(db, actors)
    f = tmp_path / "c.csv"
    f.write_text(HEADER + long_rows(a, "15m", TODAY, sdq(1)), encoding="utf-8")
    run_import(db, actors["coord_gla"], "assessments", f)
    changed = sdq(1)
    changed[5] = (int(changed[5]) + 1) % 3  # type: ignore[call-overload]
    f.write_text(HEADER + long_rows(a, "15m", TODAY, changed), encoding="utf-8")
    with pytest.raises(ImportRejected) as caught:
        run_import(db, actors["coord_gla"], "assessments", f)
    assert [(p.record, p.field, p.rule) for p in caught.value.problems] == [
        ("row 6", "value", "IMP-010")
    ]
    assert _count(db, Assessment) == 1


def test_wide_format_bom_and_dmy_dates(db: Database, actors: Actors, tmp_path: Path) -> None:
    a, b = randomised_children(db, actors)
    items = ",".join(f"item_{i}" for i in range(1, 26))
    on = TODAY.strftime("%d/%m/%Y")
    row_a = ",".join(str(v) for v in sdq(1).values())
    values_b = [str(v) for v in sdq(2).values()]
    values_b[2] = "refused"
    values_b[3] = ""
    f = tmp_path / "wide.csv"
    f.write_bytes(
        (
            "\ufeff# noim-import: dates=dmy\n"
            f"child_id,timepoint,instrument,form,respondent,date,{items}\n"
            f"{a},15m,sdq,2-4,carer,{on},{row_a}\n"
            f"{b},15m,SDQ,,teacher,{on},{','.join(values_b)}\n"
        ).encode()
    )
    report = run_import(db, actors["coord_gla"], "assessments", f)
    assert (report.new_records, report.details["item responses"]) == (2, 50)
    with db.read() as s:
        missing = s.execute(
            select(ItemResponse.item, ItemResponse.missing_reason).where(
                ItemResponse.value.is_(None)
            )
        ).all()
        assert sorted(missing) == [(3, "refused"), (4, "not_answered")]
    # the same assessments in long format are already stored
    long = tmp_path / "long.csv"
    long.write_text(HEADER + long_rows(a, "15m", TODAY, sdq(1)), encoding="utf-8")
    again = run_import(db, actors["coord_gla"], "assessments", long)
    assert (again.new_records, again.unchanged_records) == (0, 1)
    bad = tmp_path / "bad-wide.csv"
    bad.write_text(
        f"child_id,timepoint,instrument,form,respondent,date,item_1,item_2\n"
        f"{a},15m,sdq,2-4,carer,{TODAY},1,9\n"
        f"{a},15m,sdq,2-4,carer,{TODAY},1,1\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportRejected) as caught:
        run_import(db, actors["coord_gla"], "assessments", bad)
    got = {(p.record, p.field, p.rule) for p in caught.value.problems}
    assert got == {("row 2", "item_2", "ASM-002"), ("row 3", "child_id", "IMP-011")}


def test_grouped_audit_detects_a_changed_added_or_removed_response(
    db: Database, actors: Actors, tmp_path: Path, backend: str
) -> None:
    a, _b = randomised_children(db, actors)
    f = tmp_path / "a.csv"
    f.write_text(HEADER + long_rows(a, "15m", TODAY, sdq(1)), encoding="utf-8")
    run_import(db, actors["coord_gla"], "assessments", f)
    with db.engine.connect() as conn:
        assert verify_data(conn).ok
    with raw(db.url) as conn:
        drop_protection(conn, "item_responses")
        conn.execute(
            text(
                "UPDATE item_responses SET value = CASE WHEN value = 0 THEN 1 ELSE 0 END WHERE item = 4"
            )
        )
        conn.execute(
            text(
                "INSERT INTO item_responses (assessment_id, item, value) "
                "SELECT assessment_id, 26, 1 FROM item_responses WHERE item = 1"
            )
        )
    with db.engine.connect() as conn:
        report = verify_data(conn)
        assert report.total_problems == 2, report.problems
        assert any("item_responses row" in p and "field value" in p for p in report.problems)
        assert any("no audit record" in p for p in report.problems)
        assert verify_chain(conn).ok
    with raw(db.url) as conn:
        conn.execute(text("DELETE FROM item_responses WHERE item = 6"))
    with db.engine.connect() as conn:
        report = verify_data(conn)
        assert any("deleted behind" in p for p in report.problems)


def test_permissions_and_command(db: Database, actors: Actors, db_url: str, tmp_path: Path) -> None:
    a, _b = randomised_children(db, actors)
    f = tmp_path / "a.csv"
    f.write_text(HEADER + long_rows(a, "15m", TODAY, sdq(1)), encoding="utf-8")
    with pytest.raises(ImportRejected) as caught:  # another site's child
        run_import(db, actors["coord_cro"], "assessments", f)
    assert {p.rule for p in caught.value.problems} == {"IMP-004"}
    base = ("--database", db_url, "--user", "research_gla")
    dry = run(*base, "import", "assessments", str(f), "--dry-run", "--json")
    assert dry.exit_code == 0, dry.stderr
    assert json.loads(dry.output)["new_records"] == 1
    ok = run(*base, "import", "assessments", str(f))
    assert ok.exit_code == 0, ok.stderr
    assert "added 1 assessment(s), 25 item responses" in ok.output


def test_fast_reader_reads_as_the_csv_module(monkeypatch: pytest.MonkeyPatch) -> None:
    from noim.services.imports import reader

    body = "".join(f"G-0001-0{i % 9 + 1}-7 , 15m,{i}, x\n" for i in range(300))
    tight = body.replace(" ", "")
    texts = {
        "plain": "Child_ID,tp,item,v\n" + body,
        "blank rows": "a,b,c,d\n" + body + "\n ,  , ,\n\n" + body,
        "short row": "a,b,c,d\n" + body + "1,2,3\n" + body,
        "long row": "a,b,c,d\n" + body + "1,2,3,4,5\n",
        "quoted": 'a,b,c,d\n"1,5",2,3,4\n' + body,
        "crlf": ("a,b,c,d\n" + body).replace("\n", "\r\n"),
        "no edge spaces": "a,b,c,d\n" + tight,
        "crlf, no spaces": ("a,b,c,d\n" + tight).replace("\n", "\r\n"),
        "tab at an edge": "a,b,c,d\n" + tight + "x,\ty,z,w\n" + tight,
        "inner spaces only": "a,b,c,d\n" + tight.replace("15m", "1 5\tm"),
        "no-break space at an edge": "a,b,c,d\n" + tight + "x,\u00a0y,z,w\n" + tight,
        "space ends the file": "a,b,c,d\n" + tight + "x,y,z,w ",
        "cells equal once stripped": "a,b,c,d\n" + tight + " x,y ,z,w\nx,y,z,w\n" + body,
        "blank row first": "a,b,c,d\n , , ,\n" + tight + "\n,,,\n" + body,
    }
    for name, text_ in texts.items():
        monkeypatch.setattr(reader, "_FAST_MIN_CHARS", 10)
        fast = reader.read_csv("f.csv", text=text_)
        monkeypatch.setattr(reader, "_FAST_MIN_CHARS", 10**12)
        slow = reader.read_csv("f.csv", text=text_)
        assert fast == slow, name
        fast_codes = {h: fast.factorized(h) for h in fast.header}
        assert fast.codes or name in ("quoted", "short row", "long row"), name
        for h in fast.header:
            assert list(fast.cells(h)) == slow.column(h) == list(slow.cells(h)), (name, h)
        for h, (codes, uniques) in fast_codes.items():  # the parser's codes give the cells
            assert [uniques[c] for c in codes.tolist()] == slow.column(h), (name, h)
            assert sorted(uniques) == sorted(set(slow.column(h))), (name, h)


def test_problems_of_a_file_read_by_the_fast_reader_show_the_cells(
    db: Database, actors: Actors, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from noim.services.imports import reader

    a, _b = randomised_children(db, actors)
    values = sdq(1)
    values[4] = "9x"  # neither a number nor a missing-data code
    rows = long_rows(a, "15m", TODAY, values)
    # an answered item with a missing reason, and a bad date
    rows = rows.replace(f",{TODAY},6,", f",{TODAY},6,1,refused\n{a},15m,sdq,2-4,carer,{TODAY},27,")
    rows += f"{a},baseline,sdq,2-4,carer,2024-02-30,1,1,\n"
    f = tmp_path / "big.csv"
    f.write_text(HEADER + rows, encoding="utf-8")
    problems = []
    for size in (10, 10**12):  # the C parser's codes, then the csv module
        monkeypatch.setattr(reader, "_FAST_MIN_CHARS", size)
        assert bool(reader.read_csv(f).codes) == (size == 10)
        with pytest.raises(ImportRejected) as caught:
            run_import(db, actors["coord_gla"], "assessments", f)
        problems.append(caught.value.problems)
    assert problems[0] == problems[1]
    got = {(p.field, str(p.value), p.rule) for p in problems[0]}
    assert {("missing_reason", "9x", "ASM-004"), ("missing_reason", "refused", "ASM-005")} <= got
    assert any(p.field == "date" and p.value == "2024-02-30" for p in problems[0])


def test_fast_reader_reads_files_with_a_bom_and_settings_as_the_csv_module(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from noim.services.imports import reader

    body = "".join(f"G-0001-0{i % 9 + 1}-7,15m,{i},x\n" for i in range(300))
    contents = {
        "bom.csv": b"\xef\xbb\xbfa,b,c,d\n" + body.encode(),
        "settings.csv": b"# noim-import: dates=dmy\na,b,c,d\n" + body.encode(),
        "both.csv": b"\xef\xbb\xbf# noim-import: dates=dmy\r\na,b,c,d\r\n" + body.encode(),
    }
    for name, content in contents.items():
        f = tmp_path / name
        f.write_bytes(content)
        monkeypatch.setattr(reader, "_FAST_MIN_CHARS", 10)
        fast = reader.read_csv(f)
        monkeypatch.setattr(reader, "_FAST_MIN_CHARS", 10**12)
        slow = reader.read_csv(f)
        assert fast.codes and fast == slow, name
        assert fast.header == ["a", "b", "c", "d"] and fast.n_rows == 300, name


def test_audit_history_of_an_item_response_shows_its_grouped_row(
    db: Database, actors: Actors, tmp_path: Path
) -> None:
    from noim.services import audit

    a, _b = randomised_children(db, actors)
    f = tmp_path / "a.csv"
    f.write_text(HEADER + long_rows(a, "15m", TODAY, sdq(1)), encoding="utf-8")
    run_import(db, actors["coord_gla"], "assessments", f)
    with db.read() as s:
        item_id, assessment_id = s.execute(
            select(ItemResponse.id, ItemResponse.assessment_id).where(ItemResponse.item == 7)
        ).one()
    (row,) = audit.history(db, actors["admin"], "item_responses", str(item_id))
    # the assessment's one audit row holds its item responses and scores
    assert (row.action, row.table, row.field, row.key) == (
        "insert",
        "assessments",
        GROUPED_FIELD,
        str(assessment_id),
    )
    held = expand_audit_row(row.table, row.key, row.new or "")
    assert next((t, k) for t, k, _r in held) == ("assessments", str(assessment_id))
    expanded = {k: r for t, k, r in held if t == "item_responses"}
    assert len(expanded) == 25
    assert expanded[str(item_id)] == {
        "id": item_id,
        "assessment_id": assessment_id,
        "item": 7,
        "value": float(sdq(1)[7]),  # type: ignore[arg-type]
        "missing_reason": None,  # one value for every row: held once, in "group"
    }
    assert sum(t == "derived_scores" for t, _k, _r in held) == 8
    (scores,) = audit.history(db, actors["admin"], "derived_scores", "1")
    assert scores.seq == row.seq
    group = json.loads(scores.new or "")["tables"]["derived_scores"]["group"]
    assert group["scoring_version"] == "sdq-2024.1" and group["assessment_id"] == assessment_id
    # the assessment's history is that same row; its row is the assessment as stored
    (insert,) = audit.history(db, actors["admin"], "assessments", str(assessment_id))
    assert insert.seq == row.seq
    assert json.loads(insert.new or "")["row"]["timepoint_code"] == "15m"
    # a later correction of a response is an ordinary update on the response's own key
    with db.write(actors["coord_gla"], reason="typo") as s:
        update_rows(s, ItemResponse, {item_id: {"value": 0.0}})
    history = audit.history(db, actors["admin"], "item_responses", str(item_id))
    assert [(r.action, r.table) for r in history] == [
        ("insert", "assessments"),
        ("update", "item_responses"),
    ]
    # a response of another assessment is not in this one's row
    other = audit.history(db, actors["admin"], "item_responses", str(item_id + 100))
    assert other == []


def test_insert_columns_grouped_unnumbered_and_per_row_verify(
    db: Database, actors: Actors, tmp_path: Path
) -> None:
    from noim.db import bulk
    from noim.db.audit_grouped import insert_columns
    from noim.services import audit

    a, _b = randomised_children(db, actors)
    f = tmp_path / "a.csv"
    f.write_text(HEADER + long_rows(a, "15m", TODAY, sdq(1)), encoding="utf-8")
    run_import(db, actors["coord_gla"], "assessments", f)
    with db.write(actors["coord_gla"], reason="test") as s:
        aid = s.scalar(select(Assessment.id))
        ids = bulk.reserve_ids(s.connection(), ItemResponse.__table__, 5)  # type: ignore[arg-type]
        insert_columns(  # keys not consecutive: written out in each row
            s,
            ItemResponse,
            {
                "id": [ids[0], ids[2]],
                "assessment_id": [aid, aid],
                "item": [26, 28],
                "value": [1.0, None],
                "missing_reason": [None, "refused"],
            },
            group_by="assessment_id",
        )
        insert_columns(  # one audit row per row, as insert_rows writes
            s,
            ItemResponse,
            {
                "id": [ids[3], ids[4]],
                "assessment_id": [aid, aid],
                "item": [29, 30],
                "value": [0.0, 3.0],
                "missing_reason": [None, None],
            },
        )
    with db.read() as s:
        last = s.execute(
            select(AuditLog.field, AuditLog.new_value).order_by(AuditLog.seq.desc()).limit(3)
        ).all()
    assert [r[0] for r in last] == [None, None, GROUPED_FIELD]
    columns = json.loads(last[2][1] or "")["columns"]
    assert columns == ["id", "item", "missing_reason", "value"]
    (row,) = audit.history(db, actors["admin"], "item_responses", str(ids[4]))
    assert row.field is None and json.loads(row.new or "")["item"] == 30
    with db.engine.connect() as conn:
        assert verify_chain(conn).ok
        report = verify_data(conn)
        assert report.ok, report.problems
