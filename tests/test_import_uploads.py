"""Uploaded imports: preview keeps the file and writes nothing; commit imports exactly that file."""

from __future__ import annotations

from pathlib import Path

import pytest

from noim.db.models import AuditLog, ScreeningEntry
from noim.db.session import Database
from noim.domain.exceptions import ImportRejected, NotFound, PermissionDenied, ValidationError
from noim.services.imports import KIND_NAMES
from noim.services.imports.uploads import commit, offered_kinds, preview, upload_folder
from tests.conftest import Actors
from tests.factories import count_rows

HEADER = (
    "site,reference,screened_on,local_authority,n_children,eligible,ineligible_reason,"
    "declined,declined_reason\n"
)
GOOD = (
    HEADER + "GLA,S-1,2024-02-01,GCC,1,yes,,no,\nGLA,S-2,2024-02-03,,2,no,placed with a parent,,\n"
).encode()
BAD = (HEADER + "GLA,S-1,2024-02-01,GCC,1,yes,,no,\nGLA,S-2,31/02/2024,,two,no,,,\n").encode()


def test_kinds_offered_by_role(db: Database, actors: Actors) -> None:
    names = {n: [k.name for k in offered_kinds(actors[n])] for n in ("admin", "coord_gla")}
    assert names["admin"] == sorted(KIND_NAMES)
    assert "intervention" in names["coord_gla"]
    assert [k.name for k in offered_kinds(actors["research_gla"])] == [
        "assessments",
        "service-use",
    ]
    for blinded in ("datamanager", "statistician", "research_gla"):
        assert "intervention" not in [k.name for k in offered_kinds(actors[blinded])]
    # the data manager imports at every site, every kind but the arm-revealing one
    manager = [k.name for k in offered_kinds(actors["datamanager"])]
    assert "intervention" not in manager
    assert {"families", "consents", "assessments", "placements", "service-use"} <= set(manager)
    with pytest.raises(PermissionDenied):
        preview(db, actors["research_gla"], "intervention", "x.csv", b"family_id,received\n")
    with pytest.raises(NotFound):
        preview(db, actors["coord_gla"], "nonsense", "x.csv", b"a\n")


def test_preview_writes_nothing_and_commit_writes(
    db: Database, actors: Actors, tmp_path: Path
) -> None:
    coord = actors["coord_gla"]
    audit_rows = count_rows(db, AuditLog)
    shown = preview(db, coord, "screening", "log.csv", GOOD, folder=tmp_path)
    assert shown.ok and shown.report is not None and shown.report.new_records == 2
    assert shown.header[:2] == ("site", "reference") and shown.n_rows == 2
    assert shown.rows[1] == (
        3,
        ("GLA", "S-2", "2024-02-03", "", "2", "no", "placed with a parent", "", ""),
    )
    assert (count_rows(db, AuditLog), count_rows(db, ScreeningEntry)) == (audit_rows, 0)
    report = commit(db, coord, "screening", shown.sha256, folder=tmp_path)
    assert report.written and report.new_records == 2 and report.source.endswith("log.csv")
    assert count_rows(db, ScreeningEntry) == 2
    # the kept file is gone once imported: a second commit is refused
    with pytest.raises(ImportRejected) as exc:
        commit(db, coord, "screening", shown.sha256, folder=tmp_path)
    assert {p.rule for p in exc.value.problems} == {"IMP-100"}
    assert count_rows(db, ScreeningEntry) == 2


def test_a_file_changed_since_its_preview_is_refused(
    db: Database, actors: Actors, tmp_path: Path
) -> None:
    coord = actors["coord_gla"]
    shown = preview(db, coord, "screening", "log.csv", GOOD, folder=tmp_path)
    (kept,) = list(tmp_path.rglob("*.csv"))
    kept.write_bytes(GOOD.replace(b"S-2", b"S-9"))
    before = count_rows(db, AuditLog)
    with pytest.raises(ImportRejected) as exc:
        commit(db, coord, "screening", shown.sha256, folder=tmp_path)
    assert [(p.rule, p.field) for p in exc.value.problems] == [("IMP-100", "file")]
    assert (count_rows(db, AuditLog), count_rows(db, ScreeningEntry)) == (before, 0)


def test_only_the_uploader_commits_and_only_a_previewed_file(
    db: Database, actors: Actors, tmp_path: Path
) -> None:
    shown = preview(db, actors["coord_gla"], "screening", "log.csv", GOOD, folder=tmp_path)
    for who, sha in (("admin", shown.sha256), ("coord_gla", "0" * 64), ("coord_gla", "../x")):
        with pytest.raises(ImportRejected) as exc:
            commit(db, actors[who], "screening", sha, folder=tmp_path)
        assert {p.rule for p in exc.value.problems} == {"IMP-100"}
    assert count_rows(db, ScreeningEntry) == 0


def test_preview_lists_every_problem(db: Database, actors: Actors, tmp_path: Path) -> None:
    shown = preview(db, actors["coord_gla"], "screening", "bad.csv", BAD, folder=tmp_path)
    assert not shown.ok and shown.report is None
    where = {(p.record, p.field) for p in shown.problems}
    assert ("row 3", "screened_on") in where and ("row 3", "n_children") in where
    assert count_rows(db, ScreeningEntry) == 0
    not_utf8 = preview(
        db, actors["coord_gla"], "screening", "x.csv", b"site\n\xff\n", folder=tmp_path
    )
    assert [p.rule for p in not_utf8.problems] == ["IMP-001"]
    with pytest.raises(ValidationError) as exc:
        preview(db, actors["coord_gla"], "screening", "empty.csv", b"", folder=tmp_path)
    assert [(p.field, p.rule) for p in exc.value.problems] == [("file", "IMP-001")]


def test_upload_folder_is_beside_a_sqlite_file(db: Database) -> None:
    folder = upload_folder(db)
    if db.url.startswith("sqlite"):
        assert folder.parent == Path(db.url.split(":///", 1)[1]).resolve().parent
    assert "uploads" in folder.name


def test_problems_name_the_file_not_the_server_folder(
    db: Database, actors: Actors, tmp_path: Path
) -> None:
    shown = preview(
        db,
        actors["coord_gla"],
        "screening",
        "my log.csv",
        b"site,colour\nGLA,red\n",
        folder=tmp_path,
    )
    assert shown.problems and {p.rule for p in shown.problems} == {"IMP-002"}
    assert all(str(tmp_path) not in p.record for p in shown.problems)
    assert shown.filename == "my_log.csv"
