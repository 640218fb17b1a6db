"""Interim reports and analysis datasets as one-file downloads, with blinding applied."""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

import pytest

from noim.db.session import Database
from noim.domain.exceptions import NotFound, PermissionDenied
from noim.reports.download import DATASET_NAMES, dataset_csv, interim_report
from noim.services import freezes
from tests.conftest import Actors, starting_from
from tests.factories import frozen_small_trial
from tests.test_reports import arm_words, found

#: a test given ``frozen`` (a freeze id) starts from a copy of a frozen six-family trial
#: (built once per run and backend)
prebuilt, db_url, frozen = starting_from(
    "small_trial_6_frozen", frozen_small_trial, fixture="frozen"
)


def test_reports_by_role(
    db: Database,
    actors: Actors,
    frozen: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    codes, labels = arm_words()
    closed = interim_report(db, actors["dmc_chair"], "closed", "html", freeze=frozen)
    assert closed.filename == f"noim-closed-interim-report-freeze{frozen}.html"
    assert closed.media_type.startswith("text/html")
    assert found(closed.content.decode(), codes, labels)  # by arm
    opened = interim_report(db, actors["statistician"], "open", "zip", freeze=frozen)
    with zipfile.ZipFile(io.BytesIO(opened.content)) as z:
        names = {Path(n).name for n in z.namelist()}
        assert {"report.html", "report.pdf", "report.json", "flow.csv"} <= names
        for name in z.namelist():
            if not name.endswith(".pdf"):
                assert found(z.read(name).decode(), codes, labels) == [], name
    pdf = interim_report(db, actors["datamanager"], "open", "pdf", freeze=frozen)
    assert pdf.content.startswith(b"%PDF") and pdf.filename.endswith(".pdf")
    # a blinded reader is refused the closed report before anything is built
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    for who in ("statistician", "datamanager", "coord_gla", "research_gla"):
        with pytest.raises(PermissionDenied, match="read_closed_report"):
            interim_report(db, actors[who], "closed", "html", freeze=frozen)
    assert list(temp.iterdir()) == []
    with pytest.raises(NotFound):
        interim_report(db, actors["dmc_chair"], "secret", "html", freeze=frozen)
    with pytest.raises(NotFound):
        interim_report(db, actors["dmc_chair"], "open", "docx", freeze=frozen)


def test_datasets_by_role(db: Database, actors: Actors, frozen: int) -> None:
    codes, labels = arm_words()
    for name in DATASET_NAMES:
        blinded = dataset_csv(db, actors["statistician"], name, freeze=frozen)
        assert blinded.filename == f"noim-{name}-freeze{frozen}.csv"
        text = blinded.content.decode()
        assert text.splitlines()[0].split(",")[0] and found(text, codes, labels) == [], name
    unblinded = dataset_csv(db, actors["unblinded_stat"], "children", freeze=frozen).content
    assert found(unblinded.decode(), codes, set())  # the arm codes
    live = dataset_csv(db, actors["statistician"], "children")
    assert (
        live.filename.startswith("noim-children-live-")
        and found(live.content.decode(), codes, labels) == []
    )
    for who in ("dmc_chair", "datamanager", "coord_gla"):
        with pytest.raises(PermissionDenied, match="analyse"):
            dataset_csv(db, actors[who], "children", freeze=frozen)
    with pytest.raises(NotFound):
        dataset_csv(db, actors["statistician"], "allocations", freeze=frozen)


def test_report_readers_list_freezes(db: Database, actors: Actors) -> None:
    made = freezes.create_freeze(db, actors["datamanager"], label="DMC 1")
    for who in ("dmc_chair", "statistician", "unblinded_stat", "datamanager"):
        assert [f.id for f in freezes.list_freezes(db, actors[who])] == [made.id]
        assert freezes.show_freeze(db, actors[who], made.id).label == "DMC 1"
    for who in ("coord_gla", "research_cro"):
        with pytest.raises(PermissionDenied):
            freezes.list_freezes(db, actors[who])
