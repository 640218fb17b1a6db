"""The import framework (reading, atomicity, idempotency, every bad row), shown on consents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from noim.db.models import AuditLog, Consent
from noim.db.session import Database
from noim.domain.exceptions import ImportRejected, PermissionDenied
from noim.services.imports import run_import
from noim.services.imports.reader import parse_date, read_csv
from tests.conftest import Actors
from tests.factories import family_with_children
from tests.test_cli import run


def _count(db: Database, model: type) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _children(db: Database, actors: Actors, site: str = "GLA") -> list[str]:
    actor = actors["coord_gla" if site == "GLA" else "coord_cro"]
    fam = family_with_children(db, actor, site=site, ages_months=(10, 30))
    return [c.trial_id for c in fam.children]


def test_reader_bom_settings_and_line_numbers(tmp_path: Path) -> None:
    f = tmp_path / "c.csv"
    f.write_bytes("\ufeff# noim-import: dates=dmy\nChild_ID , x\n a ,1\n\nb,2\n".encode())
    data = read_csv(f)
    assert data.header == ["child_id", "x"]
    assert data.settings["dates"] == "dmy"
    assert data.columns["child_id"] == ["a", "b"]
    assert data.line(0) == 3
    assert parse_date("31/01/2024", "dmy") is not None
    assert parse_date("31/01/2024", "iso") is None
    assert parse_date("2024-02-30", "iso") is None


def test_consents_import_is_atomic_idempotent_and_audited(
    db: Database, actors: Actors, tmp_path: Path
) -> None:
    a, b = _children(db, actors)
    f = tmp_path / "consents.csv"
    f.write_text(
        "child_id,consenter_type,form_version,consented_on\n"
        f"{a},local_authority,3.1,2024-03-05\n"
        f"{b},local_authority,3.1,2024-03-05\n",
        encoding="utf-8",
    )
    audit_before = _count(db, AuditLog)
    dry = run_import(db, actors["coord_gla"], "consents", f, dry_run=True)
    assert (dry.new_records, dry.written) == (2, False)
    assert _count(db, Consent) == 0
    report = run_import(db, actors["coord_gla"], "consents", f)
    assert (report.new_records, report.unchanged_records, report.written) == (2, 0, True)
    assert _count(db, Consent) == 2
    assert _count(db, AuditLog) == audit_before + 2
    with db.read() as s:
        reasons = s.scalars(select(AuditLog.reason).where(AuditLog.table_name == "consents")).all()
    assert len(reasons) == 2
    assert all(r.startswith("import of consents from consents.csv (sha256 ") for r in reasons)
    again = run_import(db, actors["coord_gla"], "consents", f)
    assert (again.new_records, again.unchanged_records) == (0, 2)
    assert "nothing new" in again.summary
    assert _count(db, Consent) == 2


def test_every_bad_row_is_reported_and_nothing_written(
    db: Database, actors: Actors, tmp_path: Path
) -> None:
    a, b = _children(db, actors)
    (cro,) = _children(db, actors, "CRO")[:1]
    f = tmp_path / "bad.csv"
    f.write_text(
        "child_id,consenter_type,form_version,consented_on\n"
        f"{a},local_authority,3.1,2024-03-05\n"  # good
        f"{b},grandmother,3.1,2024-03-05\n"  # bad code
        f"{a[:-1]}Q,local_authority,3.1,2024-03-05\n"  # bad check character
        f"{b},local_authority,,05/03/2024\n"  # empty version, undeclared UK date
        f"{cro},local_authority,3.1,2024-03-05\n"  # other site
        f"{b},local_authority,3.1,1999-01-01\n",  # before birth
        encoding="utf-8",
    )
    with pytest.raises(ImportRejected) as caught:
        run_import(db, actors["coord_gla"], "consents", f)
    got = {(p.record, p.field, p.rule) for p in caught.value.problems}
    assert ("row 3", "consenter_type", "CNS-001") in got
    assert ("row 4", "child_id", "IMP-004") in got
    assert ("row 5", "form_version", "IMP-005") in got
    assert ("row 5", "consented_on", "IMP-005") in got
    assert ("row 6", "child_id", "IMP-004") in got
    assert ("row 7", "consented_on", "CNS-004") in got
    assert not any(p.record == "row 2" for p in caught.value.problems)
    assert _count(db, Consent) == 0


def test_conflict_with_stored_data_is_an_error(
    db: Database, actors: Actors, tmp_path: Path
) -> None:
    a, _b = _children(db, actors)
    f = tmp_path / "c.csv"
    f.write_text(
        f"# dates=dmy\nchild_id,consenter_type,form_version,consented_on\n{a},local_authority,3.1,05/03/2024\n",
        encoding="utf-8",
    )
    run_import(db, actors["coord_gla"], "consents", f)
    f.write_text(
        f"child_id,consenter_type,form_version,consented_on\n{a},local_authority,3.2,2024-03-05\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportRejected) as caught:
        run_import(db, actors["coord_gla"], "consents", f)
    assert [(p.record, p.rule) for p in caught.value.problems] == [("row 2", "IMP-010")]


def test_header_problems_and_roles(db: Database, actors: Actors, tmp_path: Path) -> None:
    f = tmp_path / "h.csv"
    f.write_text("child,consenter_type\nx,y\n", encoding="utf-8")
    with pytest.raises(ImportRejected) as caught:
        run_import(db, actors["coord_gla"], "consents", f)
    text = " ".join(p.expected for p in caught.value.problems)
    assert "missing column(s) child_id, form_version, consented_on" in text
    assert "unknown column(s) child" in text
    with pytest.raises(PermissionDenied):
        run_import(db, actors["statistician"], "consents", f)


def test_import_command(db: Database, actors: Actors, db_url: str, tmp_path: Path) -> None:
    a, _b = _children(db, actors)
    f = tmp_path / "c.csv"
    f.write_text(
        f"child_id,consenter_type,form_version,consented_on\n{a},local_authority,3.1,2024-03-05\n"
        f"{a},nobody,3.1,2024-03-06\n",
        encoding="utf-8",
    )
    base = ("--database", db_url, "--user", "coord_gla")
    bad = run(*base, "import", "consents", str(f), "--json")
    assert bad.exit_code == 1
    problems = json.loads(bad.output)["problems"]
    assert problems == [
        {
            "row": "row 3",
            "column": "consenter_type",
            "value": "nobody",
            "rule": "CNS-001",
            "expected": "one of birth_parent, carer, local_authority, other",
        }
    ]
    f.write_text(
        f"child_id,consenter_type,form_version,consented_on\n{a},local_authority,3.1,2024-03-05\n",
        encoding="utf-8",
    )
    ok = run(*base, "import", "consents", str(f))
    assert ok.exit_code == 0, ok.stderr
    assert "added 1 consent(s)" in ok.output
    again = run(*base, "import", "consents", str(f))
    assert "nothing new" in again.output


def test_cross_record_rule_at_commit_names_the_file_rows(
    db: Database, actors: Actors, tmp_path: Path
) -> None:
    from noim.db.models import Placement

    a, _b = _children(db, actors)
    f = tmp_path / "p.csv"
    f.write_text(
        "child_id,start_date,end_date,placement_type,end_reason\n"
        f"{a},2024-03-01,,foster,\n"
        f"{a},2024-04-01,,kinship,\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportRejected) as caught:
        run_import(db, actors["coord_gla"], "placements", f)
    (problem,) = caught.value.problems
    assert (problem.record, problem.rule) == ("rows 2, 3", "PLC-010")
    assert f"({a})" in problem.expected
    assert _count(db, Placement) == 0


def test_the_command_line_knows_every_kind_by_name() -> None:
    """``noim import`` lists the kinds without loading them (start-up cost)."""
    from noim.services import imports

    assert tuple(sorted(imports.kinds())) == imports.KIND_NAMES
