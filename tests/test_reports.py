"""``noim report interim``: the open (pooled) and closed (by arm) interim reports.

One small trial (tests.factories.small_trial) per test; the reports are built through the
service (``noim.reports.render.produce``) and the CLI.  The open report's HTML, PDF (text of
its decompressed content streams), JSON and CSV files are searched for every arm code and
label of the trial definition.
"""

from __future__ import annotations

import json
import re
import zlib
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import event

from noim.cli import noim_cli
from noim.db.session import Database
from noim.domain.exceptions import PermissionDenied
from noim.extract import FreezeNotSupported
from noim.reports import render
from noim.domain.trialdef import default_definition
from tests.conftest import Actors
from tests.factories import SmallTrial, small_trial

AS_OF = date(2026, 6, 30)


@pytest.fixture
def trial(db: Database, actors: Actors) -> SmallTrial:
    return small_trial(db, actors, n_families=16)


def arm_words() -> tuple[set[str], set[str]]:
    """(arm codes, arm names and site labels) from the trial definition."""
    definition = default_definition()
    codes = {a.code for a in definition.arms}
    labels = {a.name for a in definition.arms}
    for a in definition.arms:
        labels |= set(a.labels.values())
    for site in definition.sites:  # the intervention and comparator teams name the arm
        for team in site.teams:
            if team.arm:
                codes.add(team.code)
                labels.add(team.name)
    return codes, labels


def test_smoke(db: Database, actors: Actors, trial: SmallTrial, tmp_path: Path) -> None:
    report, paths = render.produce(db, actors["unblinded_stat"], closed=True, out=tmp_path / "c", as_of=AS_OF)
    report, paths = render.produce(db, actors["statistician"], closed=False, out=tmp_path / "o", as_of=AS_OF)
    print(paths)
