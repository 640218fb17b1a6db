"""Receipt of the allocated intervention: the service, its rules, the CLI and the import kind."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from noim import extract
from noim.db.base import utcnow
from noim.db.models import InterventionReceipt
from noim.db.session import Database
from noim.domain.exceptions import (
    ImportRejected,
    NotFound,
    PermissionDenied,
    ReasonRequired,
    ValidationError,
)
from noim.reports import interim, render
from noim.services import audit, freezes, intervention, randomisation, voiding
from noim.services.imports import run_import
from tests.conftest import Actors
from tests.factories import (
    SmallTrial,
    count_rows,
    family_with_children,
    rule_ids,
    small_trial,
    write_csv,
)
from tests.test_cli import run
from tests.test_randomisation import SEED, ready_family
from tests.test_reports import arm_words, found, pdf_text

#: the back-dated randomisation of ``_randomised``
R_DAY = date(2024, 4, 1)


def _randomised(db: Database, actors: Actors, site: str = "GLA") -> str:
    """A family at ``site`` randomised on R_DAY (randomisation set up on first use)."""
    coord = actors["coord_gla" if site == "GLA" else "coord_cro"]
    with contextlib.suppress(ValidationError):  # RND-011: set up by an earlier call
        randomisation.setup(db, actors["admin"], SEED)
    fam = ready_family(db, coord, site)
    at = datetime(R_DAY.year, R_DAY.month, R_DAY.day, 10, tzinfo=UTC)
    randomisation.randomise(db, coord, fam, randomised_at=at)
    return fam


def test_record_show_list_and_correct(db: Database, actors: Actors) -> None:
    coord = actors["coord_gla"]
    fam = _randomised(db, actors)
    view = intervention.record_receipt(
        db, coord, fam, received=True, started_on=R_DAY + timedelta(days=12)
    )
    assert (
        view.received and view.started_on == date(2024, 4, 13) and view.recorded_by == "coord_gla"
    )
    got = intervention.get_receipt(db, coord, fam)
    assert got.status == "received" and got.current == view and got.history == ()
    assert got.randomised_on == R_DAY

    with pytest.raises(ValidationError) as err:  # a second current record: correct instead
        intervention.record_receipt(db, coord, fam, received=True, started_on=R_DAY)
    assert rule_ids(err) == {"RCV-008"}
    with pytest.raises(ReasonRequired):
        intervention.record_receipt(db, coord, fam, received=False, reason="declined", correct="  ")
    with pytest.raises(ValidationError) as err:  # a correction must change something
        intervention.record_receipt(
            db, coord, fam, received=True, started_on=view.started_on, correct="typo"
        )
    assert rule_ids(err) == {"RCV-010"}

    fixed = intervention.record_receipt(
        db,
        coord,
        fam,
        received=False,
        reason="declined",
        correct="the carer cancelled before the first session",
    )
    assert fixed.corrects == view.id and fixed.reason_label is not None
    got = intervention.get_receipt(db, coord, fam)
    assert got.status == "not_received" and got.current == fixed
    assert [h.id for h in got.history] == [view.id]
    assert got.history[0].voided
    assert got.history[0].void_reason == "corrected: the carer cancelled before the first session"
    assert count_rows(db, InterventionReceipt) == 2  # nothing deleted

    # audited: the old record's void and the new record carry the correction's reason
    old = audit.history(db, actors["admin"], "intervention_receipts", str(view.id))
    assert old[0].action == "insert" and "void" in [r.action for r in old]
    assert all("the carer cancelled" in (r.reason or "") for r in old if r.action != "insert")
    blinded = audit.history(db, actors["datamanager"], "intervention_receipts", str(view.id))
    assert "2024-04-13" not in str(blinded) and "carer cancelled" not in str(
        [r.new for r in blinded]
    )
    new = audit.history(db, actors["admin"], "intervention_receipts", str(fixed.id))
    assert new[0].action == "insert" and "the carer cancelled" in (new[0].reason or "")

    rows = intervention.list_receipts(db, coord)
    assert [(r.family, r.status, r.reason) for r in rows] == [(fam, "not_received", "declined")]
    assert intervention.list_receipts(db, coord, status="received") == []


def test_every_rule_is_reported_and_nothing_written(db: Database, actors: Actors) -> None:
    coord = actors["coord_gla"]
    fam = _randomised(db, actors)
    cases = [
        ({"received": True}, {"RCV-003"}),
        ({"received": True, "started_on": R_DAY - timedelta(days=1)}, {"RCV-004"}),
        ({"received": True, "started_on": utcnow().date() + timedelta(days=2)}, {"RCV-005"}),
        ({"received": True, "started_on": R_DAY, "reason": "declined"}, {"RCV-006"}),
        ({"received": True, "started_on": R_DAY, "details": "x"}, {"RCV-007"}),
        ({"received": False}, {"RCV-006"}),
        ({"received": False, "reason": "bored"}, {"RCV-006"}),
        ({"received": False, "reason": "other"}, {"RCV-007"}),
        ({"received": False, "reason": "declined", "started_on": R_DAY}, {"RCV-003"}),
        # every problem at once, not only the first
        (
            {"received": False, "reason": "other", "started_on": R_DAY - timedelta(days=3)},
            {"RCV-003", "RCV-004", "RCV-007"},
        ),
    ]
    for kwargs, expected in cases:
        with pytest.raises(ValidationError) as err:
            intervention.record_receipt(db, coord, fam, **kwargs)  # type: ignore[arg-type]
        assert rule_ids(err) == expected, kwargs
    with pytest.raises(ValidationError) as err:  # nothing to correct
        intervention.record_receipt(
            db, coord, fam, received=True, started_on=R_DAY, correct="wrong date"
        )
    assert rule_ids(err) == {"RCV-009"}
    # not randomised
    other = family_with_children(db, coord, "GLA", (10,)).trial_id
    with pytest.raises(ValidationError) as err:
        intervention.record_receipt(db, coord, other, received=True, started_on=R_DAY)
    assert rule_ids(err) == {"RCV-002"}
    with pytest.raises(NotFound):
        intervention.record_receipt(db, coord, "G-9999-G", received=True, started_on=R_DAY)
    assert count_rows(db, InterventionReceipt) == 0
    # the same day as randomisation is fine; details are kept for 'other'
    intervention.record_receipt(db, coord, fam, received=True, started_on=R_DAY)


def test_site_scope_and_blinding(db: Database, actors: Actors) -> None:
    fam = _randomised(db, actors)
    cro = actors["coord_cro"]
    with pytest.raises(PermissionDenied):  # cross-site write
        intervention.record_receipt(db, cro, fam, received=True, started_on=R_DAY)
    assert count_rows(db, InterventionReceipt) == 0
    intervention.record_receipt(db, actors["coord_gla"], fam, received=True, started_on=R_DAY)
    with pytest.raises(PermissionDenied):  # cross-site read
        intervention.get_receipt(db, cro, fam)
    with pytest.raises(PermissionDenied):
        intervention.list_receipts(db, cro, site="GLA")
    assert intervention.list_receipts(db, cro) == []  # only their own site's families
    for blinded in ("research_gla", "statistician", "datamanager"):
        with pytest.raises(PermissionDenied, match="see_arm"):
            intervention.get_receipt(db, actors[blinded], fam)
    with pytest.raises(PermissionDenied, match="write_trial_data"):
        intervention.record_receipt(
            db, actors["research_gla"], fam, received=True, started_on=R_DAY
        )
    assert intervention.get_receipt(db, actors["unblinded_stat"], fam).status == "received"
    assert [r.status for r in intervention.list_receipts(db, actors["admin"])] == ["received"]


def test_void_a_record_entered_in_error(db: Database, actors: Actors) -> None:
    coord = actors["coord_gla"]
    fam = _randomised(db, actors)
    view = intervention.record_receipt(
        db, coord, fam, received=False, reason="other", details="family abroad"
    )
    with pytest.raises(PermissionDenied):
        voiding.void_record(db, actors["coord_cro"], "intervention_receipts", view.id, "wrong")
    voiding.void_record(db, coord, "intervention_receipts", view.id, "wrong family")
    got = intervention.get_receipt(db, coord, fam)
    assert got.status == "not_recorded" and got.history[0].void_reason == "wrong family"
    # with no live record, a new one may be recorded
    intervention.record_receipt(db, coord, fam, received=True, started_on=R_DAY)
    assert intervention.get_receipt(db, coord, fam).status == "received"


def test_cli(db: Database, actors: Actors, db_url: str) -> None:
    fam = _randomised(db, actors)
    base = ("--database", db_url, "--user", "coord_gla")
    out = run(*base, "intervention", "record", fam)
    assert out.exit_code != 0 and "--received" in out.output
    out = run(*base, "intervention", "record", fam, "--received")
    assert out.exit_code == 1 and "RCV-003" in out.output + out.stderr
    out = run(*base, "intervention", "record", fam, "--received", "--started", "2024-04-20")
    assert out.exit_code == 0, out.output + out.stderr
    assert "Recorded intervention receipt of" in out.output
    out = run(
        *base,
        "intervention",
        "record",
        fam,
        "--not-received",
        "--reason",
        "moved_away",
        "--correct",
        "family moved before the first session",
        "--json",
    )
    assert out.exit_code == 0, out.output + out.stderr
    assert json.loads(out.output)["reason"] == "moved_away"
    shown = json.loads(run(*base, "intervention", "show", fam, "--json").output)
    assert shown["status"] == "not_received" and len(shown["history"]) == 1
    assert shown["history"][0]["void_reason"] == "corrected: family moved before the first session"
    text = run(*base, "intervention", "show", fam).output
    assert f"Family {fam} at GLA, randomised 2024-04-01: not received (moved out" in text
    listed = json.loads(run(*base, "intervention", "list", "--json").output)
    assert [(r["family"], r["status"]) for r in listed] == [(fam, "not_received")]
    out = run("--database", db_url, "--user", "coord_cro", "intervention", "show", fam)
    assert out.exit_code == 1 and "may not" in out.output + out.stderr
    out = run("--database", db_url, "--user", "research_gla", "intervention", "list")
    assert out.exit_code == 1


# --------------------------------------------------------------------------- import

HEADER = "family_id,received,started_on,reason,details"


def test_import_atomic_idempotent_and_audited(db: Database, actors: Actors, tmp_path: Path) -> None:
    a, b, c = (_randomised(db, actors) for _ in range(3))
    f = write_csv(
        tmp_path / "receipt.csv",
        HEADER,
        f"{a},yes,2024-04-15,,\n{b},no,,declined,\n{c},no,,other,placement abroad\n",
    )
    report = run_import(db, actors["coord_gla"], "intervention", f)
    assert (report.new_records, report.unchanged_records) == (3, 0)
    rows = {r.family: r for r in intervention.list_receipts(db, actors["coord_gla"])}
    assert rows[a].status == "received" and rows[a].started_on == date(2024, 4, 15)
    assert rows[b].reason == "declined" and rows[c].reason == "other"
    again = run_import(db, actors["coord_gla"], "intervention", f)
    assert (again.new_records, again.unchanged_records) == (0, 3)
    assert "nothing new" in again.summary
    assert count_rows(db, InterventionReceipt) == 3
    history = audit.history(db, actors["admin"], "intervention_receipts", str(rows[a].record_id))
    assert history[0].action == "insert" and "import of intervention" in (history[0].reason or "")
    # a row that differs from the stored record is a conflict, not an overwrite
    f2 = write_csv(tmp_path / "changed.csv", HEADER, f"{a},no,,declined,\n")
    with pytest.raises(ImportRejected) as caught:
        run_import(db, actors["coord_gla"], "intervention", f2)
    assert [(p.record, p.field, p.rule) for p in caught.value.problems] == [
        ("row 2", "received", "IMP-010")
    ]


def test_import_reports_every_bad_row_and_writes_nothing(
    db: Database, actors: Actors, tmp_path: Path
) -> None:
    a, b = _randomised(db, actors), _randomised(db, actors)
    cro = _randomised(db, actors, "CRO")
    unrandomised = family_with_children(db, actors["coord_gla"], "GLA", (10,)).trial_id
    body = (
        f"{a},yes,2024-04-15,,\n"  # good
        f"{b},maybe,,,\n"  # row 3: received not yes/no
        f"{cro},yes,2024-04-15,,\n"  # row 4: other site
        f"{unrandomised},yes,2024-04-15,,\n"  # row 5: not randomised
        f"{a},yes,2024-04-15,,\n"  # row 6: the same family twice
        f"{b},yes,2024-03-01,,\n"  # row 7: before randomisation
        f"{b},no,,bored,\n"  # row 8: unknown reason
        "G-9999-X,yes,2024-04-15,,\n"  # row 9: unknown family
        f"{b},yes,31/12/2024,,\n"  # row 10: unreadable date
    )
    f = write_csv(tmp_path / "bad.csv", HEADER, body)
    with pytest.raises(ImportRejected) as caught:
        run_import(db, actors["coord_gla"], "intervention", f)
    got = {(p.record, p.field, p.rule) for p in caught.value.problems}
    assert got >= {
        ("row 3", "received", "RCV-011"),
        ("row 4", "family_id", "RCV-001"),
        ("row 5", "family_id", "RCV-002"),
        ("row 6", "family_id", "IMP-011"),
        ("row 7", "started_on", "RCV-004"),
        ("row 8", "reason", "RCV-006"),
        ("row 9", "family_id", "RCV-001"),
        ("row 10", "started_on", "IMP-005"),
    }, got
    values = {(p.record, p.field): p.value for p in caught.value.problems}
    assert values["row 8", "reason"] == "bored" and values["row 3", "received"] == "maybe"
    assert count_rows(db, InterventionReceipt) == 0
    # the command line says the same, one line per problem, exit 1
    out = run(
        "--database",
        str(db.url),
        "--user",
        "coord_gla",
        "import",
        "intervention",
        str(f),
    )
    assert out.exit_code == 1 and "RCV-004" in out.output + out.stderr
    assert count_rows(db, InterventionReceipt) == 0


def test_import_needs_write_capability(db: Database, actors: Actors, tmp_path: Path) -> None:
    a = _randomised(db, actors)
    f = write_csv(tmp_path / "r.csv", HEADER, f"{a},yes,2024-04-15,,\n")
    with pytest.raises(PermissionDenied):
        run_import(db, actors["research_gla"], "intervention", f)


# --------------------------------------------------------------------------- analysis and CONSORT


def test_children_dataset_carries_the_receipt(db: Database, actors: Actors) -> None:
    coord = actors["coord_gla"]
    got, gone, pending = (_randomised(db, actors) for _ in range(3))
    started = R_DAY + timedelta(days=20)
    intervention.record_receipt(db, coord, got, received=True, started_on=started)
    intervention.record_receipt(
        db, coord, gone, received=False, reason="other", details="family preferred GIFT"
    )
    for who in ("statistician", "unblinded_stat"):  # blinded analysts get the coded fields
        kids = extract.children(db, actors[who], as_of=date(2025, 1, 1)).set_index("family_id")
        assert str(kids["intervention_received"].dtype) == "boolean"
        assert bool(kids.loc[got, "intervention_received"]) is True
        start = kids.loc[got, "intervention_started_on"]
        assert start is pd.NaT if who == "statistician" else start == pd.Timestamp(started)
        assert bool(kids.loc[gone, "intervention_received"]) is False
        assert kids.loc[gone, "intervention_not_received_reason"] == "other"
        assert kids.loc[pending, "intervention_received"] is pd.NA
        assert "GIFT" not in kids.to_csv()  # the free-text details are not extracted
    # as of a day before the service started it was not yet received
    early = extract.children(db, actors["statistician"], as_of=started - timedelta(days=1))
    early = early.set_index("family_id")
    assert early.loc[got, "intervention_received"] is pd.NA
    assert bool(early.loc[gone, "intervention_received"]) is False
    # a data freeze stores the receipt with the children dataset
    info = freezes.create_freeze(db, actors["datamanager"], label="receipt")
    frozen = extract.children(db, actors["statistician"], freeze=info.id)
    live = extract.children(db, actors["statistician"], as_of=info.as_of)
    pd.testing.assert_frame_equal(frozen, live)
    assert frozen["intervention_received"].notna().sum() == 2


def _record_receipts(db: Database, actors: Actors, trial: SmallTrial) -> dict[str, str]:
    """Receipt for the small trial's families in turn: not received (declined, or other with
    details naming an arm's team), received, received, not recorded.  Family -> status."""
    status: dict[str, str] = {}
    reasons = iter([("declined", None), ("other", "the family wanted the GIFT team")] * 20)
    for k, row in enumerate(intervention.list_receipts(db, actors["admin"])):
        coord = actors["coord_gla" if row.site == "GLA" else "coord_cro"]
        if k % 4 == 0:
            why, details = next(reasons)
            intervention.record_receipt(
                db, coord, row.family, received=False, reason=why, details=details
            )
            status[row.family] = "no"
        elif k % 4 in (1, 2):
            day = row.randomised_on + timedelta(days=9)
            intervention.record_receipt(db, coord, row.family, received=True, started_on=day)
            status[row.family] = "yes"
        else:
            status[row.family] = "pending"
    return status


def test_consort_counts_come_from_the_receipt_records(
    db: Database, actors: Actors, tmp_path: Path
) -> None:
    trial = small_trial(db, actors, n_families=12)
    status = _record_receipts(db, actors, trial)
    as_of = trial.as_of
    closed = interim.build(db, actors["unblinded_stat"], closed=True, as_of=as_of).consort
    for arm in sorted(set(trial.arms.values())):
        fams = [f for f, a in trial.arms.items() if a == arm]
        c = closed["randomised"][arm]
        for what, child_row, family_row in (
            (
                "yes",
                "received the allocated intervention",
                "families received the allocated intervention",
            ),
            (
                "no",
                "did not receive the allocated intervention",
                "families did not receive the allocated intervention",
            ),
            ("pending", "receipt not yet recorded", "families with receipt not yet recorded"),
        ):
            mine = [f for f in fams if status[f] == what]
            assert c[family_row] == len(mine), (arm, family_row)
            assert c[child_row] == sum(len(trial.children[f]) for f in mine), (arm, child_row)
        # the old estimate (randomised children not withdrawn from the intervention) differs
        assert c["received the allocated intervention"] < c["children randomised"] - 1
        declined = [f for f in fams if status[f] == "no"]
        reasons = {
            k: n
            for k, n in c.items()
            if k.startswith("did not receive the allocated intervention:")
        }
        assert sum(reasons.values()) == len(declined)
    total = len(trial.arms)
    assert sum(
        closed["randomised"][a]["families with receipt not yet recorded"]
        for a in closed["randomised"]
    ) == sum(1 for s in status.values() if s == "pending")
    assert total == len(status)

    # the open report: pooled numbers, reasons by code label, nothing naming an arm
    codes, labels = arm_words()
    out = tmp_path / "open"
    report, paths = render.produce(db, actors["datamanager"], closed=False, out=out, as_of=as_of)
    pooled = report.consort["randomised"]["all"]
    assert pooled["families received the allocated intervention"] == sum(
        1 for s in status.values() if s == "yes"
    )
    assert pooled["did not receive the allocated intervention: other reason (families)"] >= 1
    assert (
        pooled[
            "did not receive the allocated intervention: family or carers declined the service (families)"
        ]
        >= 1
    )
    for path in paths:
        text = pdf_text(path) if path.suffix == ".pdf" else path.read_text(encoding="utf-8")
        assert found(text, codes, labels) == [], path.name
        assert "wanted the" not in text  # the free-text details never reach a report
    flow = (out / "flow.csv").read_text()
    assert "families did not receive the allocated intervention" in flow
    assert "received the allocated intervention" in pdf_text(out / "report.pdf")
