"""Bad text is refused the same way on SQLite and PostgreSQL (issue 11, point 7).

PostgreSQL cannot store a NUL character and refuses a value longer than a ``VARCHAR(n)``;
SQLite stores both.  Before the text rules (``TXT-001`` no control characters, ``TXT-002``
no longer than the column; ``noim.domain.text``, limits from the models in
``noim.db.text_rules``) such input gave exit 70 ("internal error ... DataError") on
PostgreSQL and a database that could not be moved there from SQLite.  Each test runs on
both backends and asserts the exact same message: rule, row or record, column or field,
value (shortened), and that nothing was written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from noim.db import text_rules
from noim.db.audit import insert_rows, update_rows
from noim.db.audit_grouped import insert_columns
from noim.db.base import Base
from noim.db.bulk import reserve_ids
from noim.db.models import (
    AuditLog,
    Child,
    Consent,
    ItemResponse,
    ScreeningEntry,
    Site,
    Withdrawal,
)
from noim.db.session import Database
from noim.domain.exceptions import ImportRejected, Problem, ValidationError
from noim.domain.text import TextLimit
from noim.services import consent, economics, randomisation, safety, screening
from noim.services.imports import kinds, run_import
from tests.conftest import Actors, starting_from
from tests.factories import family_with_children
from tests.test_cli import run

ENTERED = date(2024, 3, 1)
NUL = "\x00"
MEGABYTE = "v" * 1_048_576


@dataclass(frozen=True)
class Trial:
    family: str
    child: str
    #: a child of another family, not yet decided eligible
    other: str


def _trial(db: Database, actors: Actors) -> Trial:
    """One GLA family of one child, randomised on 2024-04-01 (so visits and receipt apply),
    and a unit cost ``sw_hour``."""
    coord = actors["coord_gla"]
    fam = family_with_children(db, coord, "GLA", (10,), entered=ENTERED)
    child = fam.children[0].trial_id
    consent.decide_eligibility(db, coord, child, True, date(2024, 3, 10))
    consent.record_consent(db, coord, child, "local_authority", "v3", date(2024, 3, 11))
    randomisation.setup(db, actors["admin"], 7)
    randomisation.randomise(
        db, coord, fam.trial_id, randomised_at=datetime(2024, 4, 1, 10, tzinfo=UTC)
    )
    economics.add_unit_cost(
        db, actors["datamanager"], "sw_hour", "social work", "hour", Decimal(45), 2023
    )
    other = family_with_children(db, coord, "GLA", (10,), entered=ENTERED).children[0].trial_id
    return Trial(fam.trial_id, child, other)


#: a test given ``trial`` starts from a copy of ``_trial``'s database (built once per run)
prebuilt, db_url, trial = starting_from("text_input_trial", _trial)


def audit_rows(db: Database) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(AuditLog)) or 0)


def all_rows(db: Database) -> dict[str, int]:
    """Rows of every table: what "nothing was written" is checked against."""
    with db.read() as s:
        return {
            t.name: int(s.scalar(select(func.count()).select_from(t)) or 0)
            for t in Base.metadata.sorted_tables
        }


# --------------------------------------------------------------------------- the limits


def test_every_text_column_has_its_limit_from_the_models() -> None:
    assert text_rules.column_limit("consents.form_version") == TextLimit(32, multiline=False)
    assert text_rules.column_limit("withdrawals.reason") == TextLimit(None, multiline=True)
    assert text_rules.column_limit("screening_log.reference") == TextLimit(32, multiline=False)
    with pytest.raises(KeyError, match=r"consents\.consented_on is not a text column"):
        text_rules.column_limit("consents.consented_on")
    string_columns = [
        (t.name, c.name)
        for t in Base.metadata.sorted_tables
        for c in t.columns
        if c.type.python_type is str
    ]
    assert len(string_columns) > 100
    for table, column in string_columns:
        text_rules.column_limit(f"{table}.{column}")  # every one is known


def test_the_import_kinds_name_real_text_columns() -> None:
    for kind in kinds().values():
        for csv_column, stored in kind.text_columns.items():
            assert csv_column in (*kind.required, *kind.optional), (kind.name, csv_column)
            text_rules.column_limit(stored)


def test_a_long_value_is_shown_shortened() -> None:
    p = Problem("row 2", "reason", MEGABYTE, "TXT-002", "at most 32 characters")
    assert p.value == "v" * 40 + "… (1048576 characters)"
    assert len(str(p)) < 200
    assert Problem("r", "f", "short", "X", "y").value == "short"


# --------------------------------------------------------------------------- every import kind

#: kind -> (header, row with ``{bad}`` where the bad text goes, column named in the problem);
#: ``{child}``, ``{family}`` are the trial's child and family, ``{other}`` the other child.  Each row is valid otherwise.
ROWS: dict[str, tuple[str, str, str]] = {
    "families": (
        "family_ref,site,local_authority,date_of_birth,sex,entered_care_on",
        "F{bad},GLA,GCC,2022-06-01,male,2024-01-15",
        "family_ref",
    ),
    "screening": (
        "site,reference,screened_on,n_children,eligible,ineligible_reason",
        "GLA,S-{bad},2024-02-01,1,no,lives outside the area",
        "reference",
    ),
    "eligibility": (
        "child_id,eligible,decided_on,reason",
        "{other},no,2024-03-10,too old{bad}",
        "reason",
    ),
    "consents": (
        "child_id,consenter_type,form_version,consented_on",
        "{child},local_authority,3{bad}1,2024-03-12",
        "form_version",
    ),
    "assessments": (
        "child_id,timepoint,instrument,form,respondent,date,item,value",
        "{child},baseline,sdq{bad},2-4,carer,2024-03-20,1,0",
        "instrument",
    ),
    "placements": (
        "child_id,start_date,placement_type,local_authority",
        "{child},2024-03-01,foster,GCC{bad}",
        "local_authority",
    ),
    "legal-events": (
        "child_id,event_type,event_date,notes",
        "{child},sc.cpo,2024-03-05,hearing{bad}",
        "notes",
    ),
    "visits": ("child_id,timepoint,outcome,reason", "{child},15m,missed,moved{bad}", "reason"),
    "intervention": (
        "family_id,received,reason,details",
        "{family},no,other,moved{bad}",
        "details",
    ),
    "service-use": (
        "child_id,unit_cost,period_start,period_end,quantity,source",
        "{child},sw_hour,2024-04-01,2024-04-30,3,case notes{bad}",
        "source",
    ),
    "withdrawals": (
        "child_id,withdrawn_on,level,requested_by,reason",
        "{child},2024-05-01,intervention,carer,moved{bad}",
        "reason",
    ),
    "saes": (
        "child_id,onset_date,reported_on,category,description",
        "{child},2024-05-01,2024-05-02,hospitalisation,admitted{bad}",
        "description",
    ),
    "deviations": (
        "family_id,occurred_on,category,severity,description",
        "{family},2024-05-01,visit,minor,by phone{bad}",
        "description",
    ),
}


def test_every_import_kind_is_covered() -> None:
    assert set(ROWS) == set(kinds())


def _file(tmp_path: Path, kind: str, trial: Trial, bad: str) -> tuple[Path, str]:
    header, row, column = ROWS[kind]
    f = tmp_path / f"{kind}.csv"
    body = row.format(bad=bad, child=trial.child, family=trial.family, other=trial.other)
    f.write_text(f"{header}\n{body}\n", encoding="utf-8")
    return f, column


@pytest.mark.parametrize("kind", sorted(ROWS))
def test_a_nul_in_any_import_kind_is_refused_with_row_and_column(
    db: Database, db_url: str, actors: Actors, trial: Trial, tmp_path: Path, kind: str
) -> None:
    coord = actors["admin"] if kind == "families" else actors["coord_gla"]
    good, _ = _file(tmp_path, kind, trial, "")
    run_import(db, coord, kind, good, dry_run=True)  # the row is valid without the NUL
    f, column = _file(tmp_path, kind, trial, NUL)
    before = all_rows(db)
    with pytest.raises(ImportRejected) as caught:
        run_import(db, coord, kind, f)
    (p,) = caught.value.problems
    assert (p.record, p.field, p.rule) == ("row 2", column, "TXT-001")
    assert "found U+0000 at character" in p.expected
    assert all_rows(db) == before  # nothing written, not even an audit row
    user = "admin" if kind == "families" else "coord_gla"
    result = run("--database", db_url, "--user", user, "import", kind, str(f))
    assert result.exit_code == 1, result.output
    assert f"row 2, field {column}: got " in result.output
    assert "[rule TXT-001]" in result.output and "internal error" not in result.output
    assert all_rows(db) == before


def test_the_same_message_on_both_backends(
    db: Database, actors: Actors, trial: Trial, tmp_path: Path
) -> None:
    """Exact messages (asserted as literals, so both backends give these very strings)."""
    f, _ = _file(tmp_path, "consents", trial, NUL)
    with pytest.raises(ImportRejected) as caught:
        run_import(db, actors["coord_gla"], "consents", f)
    assert [str(p) for p in caught.value.problems] == [
        "row 2, field form_version: got '3\\x001'; expected single-line text without control "
        "characters; found U+0000 at character 2 [rule TXT-001]"
    ]
    f, _ = _file(tmp_path, "withdrawals", trial, "\x1b[2J")
    with pytest.raises(ImportRejected) as caught:
        run_import(db, actors["coord_gla"], "withdrawals", f)
    assert [str(p) for p in caught.value.problems] == [
        "row 2, field reason: got 'moved\\x1b[2J'; expected free text without control characters "
        "(tab, newline and carriage return are allowed); found U+001B at character 6 [rule TXT-001]"
    ]


def test_an_over_long_form_version_is_refused_by_import_and_command(
    db: Database, db_url: str, actors: Actors, trial: Trial, tmp_path: Path
) -> None:
    before = all_rows(db)
    f, _ = _file(tmp_path, "consents", trial, MEGABYTE)
    with pytest.raises(ImportRejected) as caught:
        run_import(db, actors["coord_gla"], "consents", f)
    assert [str(p) for p in caught.value.problems] == [
        "row 2, field form_version: got '3vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv… (1048578 "
        "characters)'; expected at most 32 characters; got 1048578 [rule TXT-002]"
    ]
    result = run("--database", db_url, "--user", "coord_gla", "import", "consents", str(f))
    assert result.exit_code == 1
    assert len(result.output) < 1000 and "[rule TXT-002]" in result.output
    json_out = run(
        "--database", db_url, "--user", "coord_gla", "import", "consents", str(f), "--json"
    )
    assert json_out.exit_code == 1 and len(json_out.output) < 1000
    # the single-record command: 33 characters, and a megabyte
    base = ("--database", db_url, "--user", "coord_gla", "consent", "add", trial.child)
    for value in ("x" * 33, MEGABYTE):
        result = run(*base, "--by", "carer", "--form-version", value, "--on", "2024-03-12")
        assert result.exit_code == 1, result.output
        assert "internal error" not in result.output and len(result.output) < 1000
        assert f"field form_version: got '{value[:40]}" in result.output
        assert f"expected at most 32 characters; got {len(value)} [rule TXT-002]" in result.output
    assert all_rows(db) == before


def test_a_nul_in_a_single_record_command(
    db: Database, db_url: str, actors: Actors, trial: Trial
) -> None:
    before = all_rows(db)
    base = ("--database", db_url, "--user", "coord_gla")
    result = run(
        *base, "consent", "add", trial.child, "--by", "local_authority",
        "--form-version", "3\x001", "--on", "2024-03-12",
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert result.output == (
        f"error: consent for child {trial.child}, field form_version: got '3\\x001'; expected "
        "single-line text without control characters; found U+0000 at character 2 "
        "[rule TXT-001]\n"
    )
    # free text checked by the unit of work's safety net, before any SQL
    with pytest.raises(ValidationError) as caught:
        safety.add_sae(
            db, actors["coord_gla"], trial.child, date(2024, 5, 1), date(2024, 5, 2),
            "hospitalisation", "admitted\x00",
        )  # fmt: skip
    assert [(p.record, p.field, p.rule) for p in caught.value.problems] == [
        ("new serious_adverse_events record", "description", "TXT-001")
    ]
    # a withdrawal's reason is also the change's reason in the audit trail
    with pytest.raises(ValidationError) as caught:
        consent.record_withdrawal(
            db,
            actors["coord_gla"],
            trial.child,
            date(2024, 5, 1),
            "intervention",
            "carer",
            "a\x00b",
        )
    assert [(p.record, p.field, p.rule) for p in caught.value.problems] == [
        ("this change", "reason", "TXT-001")
    ]
    # a value looked up (not stored) with a NUL: refused the same way on both backends
    with pytest.raises(ValidationError) as caught:
        screening.add_entry(db, actors["coord_gla"], "GL\x00A", date(2024, 2, 1), 1, True)
    assert [(p.rule, p.value) for p in caught.value.problems] == [("TXT-001", "GL\x00A")]
    assert all_rows(db) == before


def test_free_text_keeps_lines_and_tabs_single_line_text_does_not(
    db: Database, actors: Actors, trial: Trial, tmp_path: Path
) -> None:
    coord = actors["coord_gla"]
    reason = "moved away\r\n\tto Leeds"
    consent.record_withdrawal(
        db, coord, trial.child, date(2024, 5, 1), "intervention", "carer", reason
    )
    with db.read() as s:
        assert s.scalar(select(Withdrawal.reason)) == reason  # stored exactly, both backends
    with pytest.raises(ValidationError) as caught:
        screening.add_entry(db, coord, "GLA", date(2024, 2, 1), 1, True, reference="S-1\t2")
    assert [(p.field, p.rule) for p in caught.value.problems] == [("reference", "TXT-001")]
    f = tmp_path / "s.csv"  # a quoted multi-line cell: fine as a reason, not as a reference
    f.write_text(
        "site,reference,screened_on,n_children,eligible,ineligible_reason\n"
        'GLA,"S-1\nS-2",2024-02-01,1,no,"too old\nand far away"\n',
        encoding="utf-8",
    )
    with pytest.raises(ImportRejected) as rejected:
        run_import(db, coord, "screening", f)
    assert [(p.field, p.rule) for p in rejected.value.problems] == [("reference", "TXT-001")]
    f.write_text(f.read_text().replace("S-1\nS-2", "S-1"), encoding="utf-8")
    assert run_import(db, coord, "screening", f).new_records == 1
    with db.read() as s:
        assert s.scalar(select(ScreeningEntry.ineligible_reason)) == "too old\nand far away"


def test_a_bad_change_reason_is_refused(db: Database, actors: Actors, trial: Trial) -> None:
    audit_before = audit_rows(db)
    with pytest.raises(ValidationError) as caught, db.write(actors["coord_gla"], reason="a\x00b"):
        pass
    assert [(p.record, p.field, p.rule) for p in caught.value.problems] == [
        ("this change", "reason", "TXT-001")
    ]
    assert audit_rows(db) == audit_before


# --------------------------------------------------------------------------- the safety net


def test_the_bulk_paths_refuse_bad_text_before_any_sql(
    db: Database, actors: Actors, trial: Trial
) -> None:
    before = all_rows(db)
    coord = actors["coord_gla"]
    with db.read() as s:
        site_id = s.scalar(select(Site.id).where(Site.code == "GLA"))
        child_id = s.scalar(select(Child.id).where(Child.trial_id == trial.child))
    row = {
        "site_id": site_id,
        "screened_on": date(2024, 2, 1),
        "n_children": 1,
        "eligible": True,
        "declined": False,
        "recorded_at": datetime(2024, 2, 1, tzinfo=UTC),
        "recorded_by_id": coord.user_id,
    }
    with pytest.raises(ValidationError) as caught, db.write(coord) as s:
        insert_rows(s, ScreeningEntry, [{**row, "reference": "ok"}, {**row, "reference": "x" * 33}])
    assert [(p.record, p.field, p.rule) for p in caught.value.problems] == [
        ("new screening_log row 2 of 2", "reference", "TXT-002")
    ]
    with pytest.raises(ValidationError) as caught, db.write(coord) as s:
        update_rows(s, Child, {child_id: {"ineligibility_reason": "a\x00"}})
    assert [(p.record, p.field, p.rule) for p in caught.value.problems] == [
        (f"children {child_id}", "ineligibility_reason", "TXT-001")
    ]
    with pytest.raises(ValidationError) as caught, db.write(coord) as s:
        (key,) = reserve_ids(s.connection(), ItemResponse.__table__, 1)  # type: ignore[arg-type]
        insert_columns(
            s,
            ItemResponse,
            {"id": [key], "assessment_id": [1], "item": [1], "value": [None],
             "missing_reason": ["refused\x00"]},
        )  # fmt: skip
    assert [(p.field, p.rule) for p in caught.value.problems] == [("missing_reason", "TXT-001")]
    assert all_rows(db) == before


def test_the_flush_refuses_bad_text_of_any_model(
    db: Database, actors: Actors, trial: Trial
) -> None:
    before = all_rows(db)
    with db.read() as s:
        consent_id = s.scalar(select(Consent.id))
    with pytest.raises(ValidationError) as caught, db.write(actors["coord_gla"]) as s:
        c = s.get(Consent, consent_id)
        assert c is not None
        c.form_version = "y" * 40
        s.flush()
    (p,) = caught.value.problems
    assert (p.record, p.field, p.rule) == (f"consents {consent_id}", "form_version", "TXT-002")
    assert all_rows(db) == before


def test_a_statement_parameter_with_a_nul_is_refused(db: Database) -> None:
    with db.read() as s:
        with pytest.raises(ValidationError, match="TXT-001"):
            s.execute(select(Site.id).where(Site.code == "GLA\x00"))
        assert s.execute(text("SELECT 1")).scalar() == 1  # the connection is still usable
