"""Import kinds ``withdrawals``, ``saes`` and ``deviations``: the single services' rules and
side effects, atomic, idempotent, site-scoped, audited with the import's reason."""

from __future__ import annotations

from dataclasses import fields
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from noim.db.models import (
    AuditLog,
    Child,
    FollowUpVisit,
    ProtocolDeviation,
    SeriousAdverseEvent,
    Withdrawal,
)
from noim.db.session import Database
from noim.domain.exceptions import ImportRejected
from noim.services import consent, safety
from noim.services.imports import run_import
from tests.conftest import Actors
from tests.factories import count_rows, trial_children, write_csv
from tests.test_visits import randomised_family

WDR = "child_id,withdrawn_on,level,requested_by,reason"
SAE = "child_id,onset_date,reported_on,category,description,relatedness,expected,outcome,complete"
DEV = "family_id,occurred_on,category,severity,description,child_id"


def _found(exc: pytest.ExceptionInfo[ImportRejected]) -> set[tuple[str, str, str]]:
    return {(p.record, p.field, p.rule) for p in exc.value.problems}


def _visits(db: Database, child: str) -> dict[str, tuple[str, str | None]]:
    with db.read() as s:
        rows = s.execute(
            select(FollowUpVisit.timepoint_code, FollowUpVisit.status, FollowUpVisit.status_reason)
            .join(Child, Child.id == FollowUpVisit.child_id)
            .where(Child.trial_id == child)
        ).all()
    return {t: (status, reason) for t, status, reason in rows}


def _reasons(db: Database, table: str) -> set[str | None]:
    with db.read() as s:
        return set(s.scalars(select(AuditLog.reason).where(AuditLog.table_name == table)))


# --------------------------------------------------------------------------- withdrawals


def test_withdrawals_import_ends_visits_as_the_single_service(
    db: Database, actors: Actors, tmp_path: Path
) -> None:
    coord = actors["coord_gla"]
    one = randomised_family(db, coord)
    two = randomised_family(db, coord, n_children=2, setup=False)
    on = one.randomised_on
    (single,) = one.children
    imported, stays = two.children
    before = _visits(db, imported)
    consent.record_withdrawal(db, coord, single, on, "follow_up", "carer", "moved away")
    f = write_csv(
        tmp_path / "withdrawals.csv",
        WDR,
        f"{imported},{on},follow_up,carer,moved away\n{stays},{on},Intervention,CARER,no time\n",
    )
    report = run_import(db, coord, "withdrawals", f)
    assert (report.new_records, report.unit) == (2, "withdrawal")
    after = _visits(db, imported)
    assert after != before
    assert after == _visits(db, single)  # same visits not required, with the same reason
    assert report.details["visits not required"] == sum(
        status == "not_required" for status, _ in after.values()
    )
    assert {s for s, _ in _visits(db, stays).values()} == {"scheduled"}  # intervention only
    reasons = _reasons(db, "withdrawals") | _reasons(db, "follow_up_visits")
    assert any(r and r.startswith("import of withdrawals from withdrawals.csv") for r in reasons)
    again = run_import(db, coord, "withdrawals", f)
    assert (again.new_records, again.unchanged_records) == (0, 2)
    assert count_rows(db, Withdrawal) == 3


def test_withdrawals_bad_rows_all_reported_nothing_written(
    db: Database, actors: Actors, tmp_path: Path
) -> None:
    coord = actors["coord_gla"]
    a, b = trial_children(db, actors, "GLA", n=2)
    (cro,) = trial_children(db, actors, "CRO")
    consent.record_withdrawal(db, coord, b, date(2024, 6, 1), "intervention", "carer", "no time")
    future = date.today() + timedelta(days=10)
    f = write_csv(
        tmp_path / "bad.csv",
        WDR,
        f"{a},2024-05-01,sometimes,carer,x\n"  # row 2: level
        f"{a},2024-05-01,data,neighbour,x\n"  # row 3: requester
        f"{a},{future},data,carer,x\n"  # row 4: future
        f"{a},2024-01-01,data,carer,x\n"  # row 5: before entry to care (2024-03-01)
        f"{a},2024-05-01,follow_up,carer,\n"  # row 6: no reason
        f"{cro},2024-05-01,data,carer,x\n"  # row 7: another site's child
        f"{b},2024-06-01,intervention,carer,changed mind\n"  # row 8: differs from stored
        f"{a},2024-07-01,follow_up,carer,x\n"  # row 9: fine ...
        f"{a},2024-07-01,follow_up,carer,x\n",  # row 10: ... but twice
    )
    with pytest.raises(ImportRejected) as exc:
        run_import(db, coord, "withdrawals", f)
    assert _found(exc) == {
        ("row 2", "level", "WDR-001"),
        ("row 3", "requested_by", "WDR-002"),
        ("row 4", "withdrawn_on", "WDR-003"),
        ("row 5", "withdrawn_on", "WDR-003"),
        ("row 6", "reason", "IMP-005"),
        ("row 7", "child_id", "IMP-004"),
        ("row 8", "reason", "IMP-010"),
        ("row 10", "withdrawn_on", "IMP-011"),
    }
    assert count_rows(db, Withdrawal) == 1


def test_withdrawals_site_scope(db: Database, actors: Actors, tmp_path: Path) -> None:
    (gla,) = trial_children(db, actors, "GLA")
    f = write_csv(tmp_path / "w.csv", WDR, f"{gla},2024-05-01,data,carer,x\n")
    with pytest.raises(ImportRejected) as exc:
        run_import(db, actors["coord_cro"], "withdrawals", f)
    assert _found(exc) == {("row 2", "child_id", "IMP-004")}
    assert "CRO" in exc.value.problems[0].expected
    assert count_rows(db, Withdrawal) == 0


# --------------------------------------------------------------------------- SAEs


def test_saes_import(db: Database, actors: Actors, tmp_path: Path) -> None:
    coord = actors["coord_gla"]
    a, b = trial_children(db, actors, "GLA", n=2)
    f = write_csv(
        tmp_path / "saes.csv",
        SAE,
        f"{a},2024-05-01,2024-05-03,hospitalisation,admitted,not_related,no,recovered,yes\n"
        f"{b},2024-06-01,2024-06-01,Other_Important,injury,,,,\n",
    )
    report = run_import(db, coord, "saes", f)
    assert (report.new_records, report.unit) == (2, "SAE")
    listed = {v.child: v for v in safety.list_saes(db, coord)}
    assert listed[a].completed_at is not None and listed[a].expected is False
    assert listed[b].completed_at is None and listed[b].category == "other_important"
    assert "arm" not in {f.name for f in fields(safety.SaeView)}
    assert "arm" not in report.summary
    assert any(r and r.startswith("import of saes") for r in _reasons(db, "serious_adverse_events"))
    again = run_import(db, coord, "saes", f)
    assert (again.new_records, again.unchanged_records) == (0, 2)
    assert count_rows(db, SeriousAdverseEvent) == 2


def test_saes_bad_rows_all_reported_nothing_written(
    db: Database, actors: Actors, tmp_path: Path
) -> None:
    coord = actors["coord_gla"]
    (a,) = trial_children(db, actors, "GLA")  # born 2023-05-01
    (cro,) = trial_children(db, actors, "CRO")
    safety.add_sae(db, coord, a, date(2024, 4, 1), date(2024, 4, 2), "death", "stored")
    future = date.today() + timedelta(days=5)
    f = write_csv(
        tmp_path / "bad.csv",
        SAE,
        f"{a},2024-05-01,2024-05-03,flu,x,,,,\n"  # row 2: category
        f"{a},2024-05-01,2024-05-03,death,x,maybe,,sideways,\n"  # row 3: relatedness, outcome
        f"{a},2024-05-05,2024-05-03,death,x,,,,\n"  # row 4: reported before onset
        f"{a},2024-05-06,{future},death,x,,,,\n"  # row 5: reported in the future
        f"{a},2023-01-01,2023-01-02,death,x,,,,\n"  # row 6: before birth
        f"{a},2024-05-07,2024-05-08,death,x,possible,,,yes\n"  # row 7: incomplete, complete
        f"{cro},2024-05-01,2024-05-03,death,x,,,,\n"  # row 8: another site
        f"{a},2024-04-01,2024-04-02,death,changed,,,,\n"  # row 9: differs from stored
        f"{a},2024-05-09,2024-05-10,death,x,,,,\n"  # row 10: fine ...
        f"{a},2024-05-09,2024-05-10,death,x,,,,\n",  # row 11: ... but twice
    )
    with pytest.raises(ImportRejected) as exc:
        run_import(db, coord, "saes", f)
    assert _found(exc) == {
        ("row 2", "category", "SAE-001"),
        ("row 3", "relatedness", "SAE-002"),
        ("row 3", "outcome", "SAE-003"),
        ("row 4", "reported_on", "SAE-004"),
        ("row 5", "reported_on", "SAE-005"),
        ("row 6", "onset_date", "SAE-006"),
        ("row 7", "expected", "SAE-009"),
        ("row 7", "outcome", "SAE-009"),
        ("row 8", "child_id", "IMP-004"),
        ("row 9", "description", "IMP-010"),
        ("row 11", "onset_date", "IMP-011"),
    }
    assert count_rows(db, SeriousAdverseEvent) == 1


def test_saes_site_scope(db: Database, actors: Actors, tmp_path: Path) -> None:
    (gla,) = trial_children(db, actors, "GLA")
    f = write_csv(tmp_path / "s.csv", SAE, f"{gla},2024-05-01,2024-05-03,death,x,,,,\n")
    with pytest.raises(ImportRejected) as exc:
        run_import(db, actors["coord_cro"], "saes", f)
    assert _found(exc) == {("row 2", "child_id", "IMP-004")}
    assert count_rows(db, SeriousAdverseEvent) == 0


# --------------------------------------------------------------------------- deviations


def test_deviations_import(db: Database, actors: Actors, tmp_path: Path) -> None:
    coord = actors["coord_gla"]
    (a,) = trial_children(db, actors, "GLA")
    assert safety.list_deviations(db, coord) == []
    family = _family_of(db, a)
    f = write_csv(
        tmp_path / "deviations.csv",
        DEV,
        f"{family},2024-05-01,visit,minor,late visit,{a}\n"
        f"{family},2024-05-01,consent form,MAJOR,old form,\n",
    )
    report = run_import(db, coord, "deviations", f)
    assert (report.new_records, report.unit) == (2, "deviation")
    listed = {d.category: d for d in safety.list_deviations(db, coord)}
    assert listed["visit"].child == a and listed["consent form"].child is None
    assert listed["consent form"].severity == "major"
    assert any(
        r and r.startswith("import of deviations") for r in _reasons(db, "protocol_deviations")
    )
    again = run_import(db, coord, "deviations", f)
    assert (again.new_records, again.unchanged_records) == (0, 2)
    assert count_rows(db, ProtocolDeviation) == 2


def _family_of(db: Database, child: str) -> str:
    from noim.db.models import Family

    with db.read() as s:
        return str(
            s.scalar(
                select(Family.trial_id)
                .join(Child, Child.family_id == Family.id)
                .where(Child.trial_id == child)
            )
        )


def test_deviations_bad_rows_all_reported_nothing_written(
    db: Database, actors: Actors, tmp_path: Path
) -> None:
    coord = actors["coord_gla"]
    (a,) = trial_children(db, actors, "GLA")
    (other,) = trial_children(db, actors, "GLA")
    (cro,) = trial_children(db, actors, "CRO")
    family, cro_family = _family_of(db, a), _family_of(db, cro)
    safety.add_deviation(db, coord, family, date(2024, 4, 1), "visit", "minor", "stored")
    future = date.today() + timedelta(days=5)
    f = write_csv(
        tmp_path / "bad.csv",
        DEV,
        f"{family},2024-05-01,visit,minor,x,{other}\n"  # row 2: child of another family
        f"{family},2024-05-02,visit,trivial,x,\n"  # row 3: severity
        f"{family},{future},visit,minor,x,\n"  # row 4: future
        f"{family},2024-05-03,{'c' * 65},minor,x,\n"  # row 5: category too long
        f"G-9999-Z,2024-05-04,visit,minor,x,\n"  # row 6: unknown family
        f"{cro_family},2024-05-04,visit,minor,x,\n"  # row 7: another site
        f"{family},2024-04-01,visit,major,stored,\n"  # row 8: differs from stored
        f"{family},2024-05-09,visit,minor,x,\n"  # row 9: fine ...
        f"{family},2024-05-09,visit,minor,x,\n",  # row 10: ... but twice
    )
    with pytest.raises(ImportRejected) as exc:
        run_import(db, coord, "deviations", f)
    assert _found(exc) == {
        ("row 2", "child", "DEV-001"),
        ("row 3", "severity", "DEV-002"),
        ("row 4", "occurred_on", "DEV-003"),
        ("row 5", "category", "DEV-004"),
        ("row 6", "family_id", "IMP-090"),
        ("row 7", "family_id", "IMP-090"),
        ("row 8", "description", "IMP-010"),
        ("row 10", "category", "IMP-011"),
    }
    assert count_rows(db, ProtocolDeviation) == 1


def test_deviations_site_scope(db: Database, actors: Actors, tmp_path: Path) -> None:
    (gla,) = trial_children(db, actors, "GLA")
    f = write_csv(
        tmp_path / "d.csv", DEV, f"{_family_of(db, gla)},2024-05-01,visit,minor,x,{gla}\n"
    )
    with pytest.raises(ImportRejected) as exc:
        run_import(db, actors["coord_cro"], "deviations", f)
    assert _found(exc) == {("row 2", "family_id", "IMP-090"), ("row 2", "child_id", "IMP-004")}
    assert count_rows(db, ProtocolDeviation) == 0
