"""Dates of eligibility decisions and protocol deviations get the bounds other dates have:
not after today (ELG-003, DEV-003) and not before the child's life (ELG-001: on or after
entry to care; DEV-007: on or after the date of birth of the child concerned, or of the
family's eldest child).  Before issue 11 an eligibility decision dated 2099 and a deviation
dated 1900 were stored, by the service and by the import alike.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from noim.db.base import utcnow
from noim.db.models import Child, ProtocolDeviation
from noim.db.session import Database
from noim.domain.exceptions import ImportRejected, ValidationError
from noim.services import consent, safety
from noim.services.imports import run_import
from tests.conftest import Actors
from tests.factories import count_rows, family_with_children, rule_ids, write_csv

FAR_PAST, FAR_FUTURE = date(1900, 1, 1), date(2099, 1, 1)
ENTERED = date(2024, 3, 1)  # the children below were born 2023-05-01 (10 months) and 2021-09-01


def _found(exc: pytest.ExceptionInfo[ImportRejected]) -> set[tuple[str, str, str]]:
    return {(p.record, p.field, p.rule) for p in exc.value.problems}


def _status(db: Database, child: str) -> str:
    with db.read() as s:
        return str(s.scalar(select(Child.eligibility_status).where(Child.trial_id == child)))


# --------------------------------------------------------------------------- eligibility


def test_an_eligibility_decision_is_dated_from_entry_to_care_to_today(
    db: Database, actors: Actors
) -> None:
    coord = actors["coord_gla"]
    child = family_with_children(db, coord, "GLA", (10,), entered=ENTERED).children[0].trial_id
    tomorrow = utcnow().date() + timedelta(days=1)
    for day, rule in ((FAR_FUTURE, "ELG-003"), (tomorrow, "ELG-003"), (FAR_PAST, "ELG-001")):
        with pytest.raises(ValidationError) as err:
            consent.decide_eligibility(db, coord, child, True, day)
        assert rule_ids(err) == {rule}, day
        assert err.value.problems[0].field == "eligibility_decided_on"
        assert err.value.problems[0].value == day.isoformat()
    assert _status(db, child) == "pending"
    assert consent.decide_eligibility(db, coord, child, True, utcnow().date()) == "eligible"


def test_the_eligibility_import_refuses_implausible_dates(
    db: Database, actors: Actors, tmp_path: Path
) -> None:
    coord = actors["coord_gla"]
    kids = [
        c.trial_id
        for c in family_with_children(db, coord, "GLA", (10, 30), entered=ENTERED).children
    ]
    tomorrow = utcnow().date() + timedelta(days=1)
    f = write_csv(
        tmp_path / "eligibility.csv",
        "child_id,eligible,decided_on,reason",
        f"{kids[0]},yes,{FAR_FUTURE},\n"  # row 2: far in the future
        f"{kids[1]},no,{tomorrow},too old\n"  # row 3: tomorrow
        f"{kids[0]},yes,{FAR_PAST},\n",  # row 4: before entry to care
    )
    with pytest.raises(ImportRejected) as exc:
        run_import(db, coord, "eligibility", f)
    assert _found(exc) == {
        ("row 2", "eligibility_decided_on", "ELG-003"),
        ("row 3", "eligibility_decided_on", "ELG-003"),
        ("row 4", "eligibility_decided_on", "ELG-001"),
    }
    assert [_status(db, k) for k in kids] == ["pending", "pending"]


# --------------------------------------------------------------------------- deviations


def test_a_deviation_is_dated_from_birth_to_today(db: Database, actors: Actors) -> None:
    coord = actors["coord_gla"]
    fam = family_with_children(db, coord, "GLA", (10, 30), entered=ENTERED)
    younger, elder = (c.trial_id for c in fam.children)  # born 2023-05-01, 2021-09-01
    before = count_rows(db, ProtocolDeviation)
    with pytest.raises(ValidationError) as err:
        safety.add_deviation(db, coord, fam.trial_id, FAR_PAST, "consent", "minor", "old form")
    assert rule_ids(err) == {"DEV-007"}
    assert "the date of birth of the family's eldest child (2021-09-01)" in str(err.value)
    with pytest.raises(ValidationError) as err:  # before the birth of the child it concerns
        safety.add_deviation(
            db, coord, fam.trial_id, date(2022, 1, 1), "visit", "minor", "late", younger
        )
    assert rule_ids(err) == {"DEV-007"}
    assert f"the date of birth of child {younger} (2023-05-01)" in str(err.value)
    with pytest.raises(ValidationError) as err:
        safety.add_deviation(db, coord, fam.trial_id, FAR_FUTURE, "visit", "minor", "late")
    assert rule_ids(err) == {"DEV-003"}
    assert count_rows(db, ProtocolDeviation) == before
    # the bounds themselves are plausible dates
    safety.add_deviation(db, coord, fam.trial_id, date(2021, 9, 1), "consent", "minor", "x")
    safety.add_deviation(db, coord, fam.trial_id, date(2023, 5, 1), "visit", "minor", "y", younger)
    safety.add_deviation(db, coord, fam.trial_id, utcnow().date(), "visit", "minor", "z", elder)
    assert count_rows(db, ProtocolDeviation) == before + 3


def test_the_deviation_import_refuses_implausible_dates(
    db: Database, actors: Actors, tmp_path: Path
) -> None:
    coord = actors["coord_gla"]
    fam = family_with_children(db, coord, "GLA", (10, 30), entered=ENTERED)
    younger = fam.children[0].trial_id
    f = write_csv(
        tmp_path / "deviations.csv",
        "family_id,occurred_on,category,severity,description,child_id",
        f"{fam.trial_id},{FAR_PAST},consent,minor,x,\n"  # row 2: before the eldest's birth
        f"{fam.trial_id},2022-01-01,visit,minor,x,{younger}\n"  # row 3: before that child's
        f"{fam.trial_id},{FAR_FUTURE},visit,minor,x,\n"  # row 4: the future
        f"{fam.trial_id},2021-09-01,other,minor,x,\n",  # row 5: fine (the eldest's birth)
    )
    with pytest.raises(ImportRejected) as exc:
        run_import(db, coord, "deviations", f)
    assert _found(exc) == {
        ("row 2", "occurred_on", "DEV-007"),
        ("row 3", "occurred_on", "DEV-007"),
        ("row 4", "occurred_on", "DEV-003"),
    }
    assert count_rows(db, ProtocolDeviation) == 0
