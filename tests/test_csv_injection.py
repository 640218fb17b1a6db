"""Outputs cannot carry spreadsheet formulas, and HTML shows text as text (issue 11, point 8).

Free text recorded in the trial (a withdrawal reason ``=cmd|' /C calc'!A0``, a deviation
category ``@SUM(...)``) reaches the interim reports' tables.  Every CSV noim writes goes
through ``noim.reports.csvsafe.write_csv``, which prefixes a text cell starting with ``=``,
``+``, ``-``, ``@``, tab or carriage return with ``'`` (OWASP); numbers stay numbers.
"""

from __future__ import annotations

import csv
import re
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from noim.db.session import Database
from noim.reports import render
from noim.reports.csvsafe import FORMULA_STARTS, neutralise, write_csv
from noim.services import consent, safety, screening
from tests.conftest import Actors
from tests.factories import SmallTrial, small_trial_start

ROOT = Path(__file__).resolve().parent.parent
AS_OF = date(2026, 6, 30)

#: free text an attacker types, one per character OWASP lists (tab and CR lead free text only)
FORMULAS = [
    "=cmd|' /C calc'!A0",
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+9)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]
#: a plain number is safe: a spreadsheet reads it as that number
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def test_neutralise_prefixes_formula_text_only() -> None:
    for text in FORMULAS:
        assert neutralise(text) == "'" + text
    for text in ("plain", "", "'=already", " =x", "1-2", "a=b"):
        assert neutralise(text) == text
    for number in ("-1", "+2.5", "-1e-3", "-.5", "+0"):
        assert neutralise(number) == number  # a number, not a formula
    assert neutralise("-0.5 to 1.2") == "'-0.5 to 1.2"
    assert neutralise("-1+1") == "'-1+1"


def test_write_csv_keeps_numbers_and_neutralises_text(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "reason": ["=1+1", "-1", "@x", "fine", None],
            "mixed": ["+2", 3, -1.5, "-3 to 4", float("nan")],
            "value": [-1.5, 2.0, -3.25, 1e-12, float("nan")],
            "n": [-1, 0, 1, 2, 3],
            "=HYPERLINK(1)": ["a", "b", "c", "d", "e"],
        }
    )
    path = write_csv(frame, tmp_path / "t.csv")
    assert path.read_text(encoding="utf-8").splitlines() == [
        "reason,mixed,value,n,'=HYPERLINK(1)",
        "'=1+1,+2,-1.5,-1,a",
        "-1,3,2,0,b",
        "'@x,-1.5,-3.25,1,c",
        "fine,'-3 to 4,1e-12,2,d",
        ",,,3,e",
    ]
    back = pd.read_csv(path)
    assert back["value"].tolist()[:4] == [-1.5, 2.0, -3.25, 1e-12]  # numbers read as numbers
    assert frame["reason"].tolist()[0] == "=1+1"  # the caller's frame is not changed


def test_every_csv_writer_uses_the_helper() -> None:
    """No module of noim or analysis writes CSV but through ``noim.reports.csvsafe``."""
    writer = re.compile(r"\.to_csv\(|csv\.writer\(|csv\.DictWriter\(")
    offenders = []
    for folder in ("noim", "analysis", "scripts"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.name == "csvsafe.py":
                continue
            if writer.search(path.read_text(encoding="utf-8")):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def _is_safe(cell: str) -> bool:
    return not cell.startswith(FORMULA_STARTS) or bool(_PLAIN_NUMBER.fullmatch(cell))


def _cells(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as f:
        return [cell for row in csv.reader(f) for cell in row]


#: a test given ``small`` starts from a copy of the 16-family trial (built once per run)
prebuilt, db_url, small = small_trial_start(16, fixture="small")
#: the modules starting from it run in one worker: it builds the trial while the other runs
#: other tests (rather than both waiting for it)
pytestmark = pytest.mark.xdist_group("small_trial_16")


@pytest.fixture
def trial(db: Database, actors: Actors, small: SmallTrial) -> SmallTrial:
    """The tests' small trial, with formula text in withdrawal reasons, a deviation category
    and a screening reason, and markup in a reason."""
    built = small
    gla = actors["coord_gla"]
    kids = [k for f, ks in built.children.items() if f.startswith("G") for k in ks]
    for kid, reason in zip(kids, [*FORMULAS, "<script>alert(1)</script>"], strict=False):
        consent.record_withdrawal(db, gla, kid, date(2026, 1, 5), "intervention", "carer", reason)
    family = next(f for f in built.arms if f.startswith("G"))
    safety.add_deviation(db, gla, family, date(2026, 1, 6), "@SUM(1+9)", "minor", "=1+1")
    screening.add_entry(db, gla, "GLA", date(2025, 1, 5), 1, False, "=1+1 and $\\frac$")
    return built


@pytest.mark.parametrize("closed", [False, True], ids=["open", "closed"])
def test_no_report_csv_carries_a_formula_and_html_escapes_text(
    db: Database, actors: Actors, trial: SmallTrial, tmp_path: Path, closed: bool
) -> None:
    reader = actors["dmc_chair" if closed else "datamanager"]
    _, paths = render.produce(db, reader, closed=closed, out=tmp_path, as_of=AS_OF)
    csvs = [p for p in paths if p.suffix == ".csv"]
    assert len(csvs) > 10 and (tmp_path / "report.pdf").exists()  # PDF drew "$\frac$" as text
    for path in csvs:
        unsafe = [c for c in _cells(path) if not _is_safe(c)]
        assert unsafe == [], path.name
    reasons = _cells(tmp_path / "exit_reasons.csv")
    for text in FORMULAS:  # the service strips a reason's surrounding tab or CR
        assert "'" + text.strip() in reasons, text
    assert "'@SUM(1+9)" in _cells(tmp_path / "deviation_counts.csv")
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.sqlite_only
def test_analysis_tables_are_written_safely(
    db: Database, db_url: str, actors: Actors, tmp_path: Path
) -> None:
    sys.path.insert(0, str(ROOT / "analysis"))
    try:
        from _common import Run
    finally:
        sys.path.remove(str(ROOT / "analysis"))
    run = Run(
        "test", "test", db, actors["unblinded_stat"], AS_OF, tmp_path, seed=1, database_url=db_url
    )
    run.table("t", pd.DataFrame({"stage": ["=1+1", "ok"], "n": [-1, 2]}), "A table")
    assert (tmp_path / "t.csv").read_text().splitlines() == ["stage,n", "'=1+1,-1", "ok,2"]
    # a blinded run's tables start with the dummy-arms label, written as safely
    blind = Run(
        "test", "test", db, actors["statistician"], AS_OF, tmp_path, seed=1, database_url=db_url
    )
    blind.table("b", pd.DataFrame({"stage": ["=1+1"], "n": [-1]}), "A table")
    assert (tmp_path / "b.csv").read_text().splitlines() == [
        "arm_coding,stage,n",
        "DUMMY ARMS: not the allocation,'=1+1,-1",
    ]
