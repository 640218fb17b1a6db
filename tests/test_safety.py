"""Serious adverse events, protocol deviations and loss to follow-up."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, timedelta

import pytest

from noim.db.base import utcnow
from noim.db.models import LossToFollowUp, ProtocolDeviation, SeriousAdverseEvent
from noim.db.session import Database
from noim.domain.exceptions import PermissionDenied, ReasonRequired, ValidationError
from noim.services import audit, consent, randomisation, safety, voiding
from noim.services.families import FamilyView
from tests.conftest import Actors
from tests.factories import count_rows, family_with_children, rule_ids
from tests.test_cli import run
from tests.test_people import SCOPE


@pytest.fixture
def gla(db: Database, actors: Actors) -> FamilyView:
    return family_with_children(db, actors["coord_gla"], "GLA", (10, 30))


def _randomised_child(db: Database, actors: Actors) -> str:
    from tests.test_randomisation import SEED, ready_family

    randomisation.setup(db, actors["admin"], SEED)
    fam = ready_family(db, actors["coord_gla"], "GLA", (8,))
    return randomisation.randomise(db, actors["coord_gla"], fam).children[0]


# --------------------------------------------------------------------------- SAEs


def test_sae_recorded_updated_completed_and_listed_without_arm(
    db: Database, actors: Actors
) -> None:
    coord = actors["coord_gla"]
    child = _randomised_child(db, actors)
    sae = safety.add_sae(
        db, coord, child, date(2024, 5, 1), date(2024, 5, 3), "hospitalisation", "Admitted: fever"
    )
    assert (sae.child, sae.site, sae.completed_at) == (child, "GLA", None)
    # before completion a change needs no reason
    safety.update_sae(db, coord, sae.id, {"relatedness": "not_related", "expected": False})
    with pytest.raises(ValidationError) as err:
        safety.complete_sae(db, coord, sae.id)
    assert rule_ids(err) == {"SAE-009"} and [p.field for p in err.value.problems] == ["outcome"]
    safety.update_sae(db, coord, sae.id, {"outcome": "recovered"})
    done = safety.complete_sae(db, coord, sae.id)
    assert done.completed_at is not None
    with pytest.raises(ValidationError) as err:
        safety.complete_sae(db, coord, sae.id)
    assert rule_ids(err) == {"SAE-010"}
    with pytest.raises(ReasonRequired, match="marked complete"):
        safety.update_sae(db, coord, sae.id, {"outcome": "recovering"})
    safety.update_sae(db, coord, sae.id, {"outcome": "recovering"}, reason="follow-up report")
    history = audit.history(db, actors["admin"], "serious_adverse_events", str(sae.id))
    assert [r.action for r in history] == [
        "insert",
        "update",
        "update",
        "update",
        "update",
        "update",
    ]
    assert (history[-1].field, history[-1].old, history[-1].new, history[-1].reason) == (
        "outcome",
        '"recovered"',
        '"recovering"',
        "follow-up report",
    )
    # the list shows no arm to anyone (the DMC's per-arm tables come from the closed report)
    assert "arm" not in {f.name for f in dataclasses.fields(safety.SaeView)}
    for name in ("statistician", "unblinded_stat", "coord_gla", "research_gla"):
        (listed,) = safety.list_saes(db, actors[name])
        assert listed.outcome == "recovering"


def test_bad_sae_reports_every_problem_and_writes_nothing(
    db: Database, actors: Actors, gla: FamilyView
) -> None:
    coord = actors["coord_gla"]
    child = gla.children[0]
    future = utcnow().date() + timedelta(days=2)
    before = count_rows(db, SeriousAdverseEvent)
    with pytest.raises(ValidationError) as err:
        safety.add_sae(
            db,
            coord,
            child.trial_id,
            child.date_of_birth - timedelta(days=1),
            future,
            "sniffles",
            " ",
            relatedness="maybe",
            outcome="fine",
        )
    assert rule_ids(err) == {"SAE-001", "SAE-002", "SAE-003", "SAE-005", "SAE-006", "SAE-007"}
    by_rule = {p.rule: p for p in err.value.problems}
    assert (by_rule["SAE-006"].field, by_rule["SAE-006"].value) == (
        "onset_date",
        (child.date_of_birth - timedelta(days=1)).isoformat(),
    )
    assert by_rule["SAE-001"].record == f"new SAE of child {child.trial_id}"
    with pytest.raises(ValidationError) as err:
        safety.add_sae(db, coord, child.trial_id, date(2024, 6, 2), date(2024, 6, 1), "death", "x")
    assert rule_ids(err) == {"SAE-004"}
    sae = safety.add_sae(
        db, coord, child.trial_id, date(2024, 6, 1), date(2024, 6, 1), "death", "x"
    )
    with pytest.raises(ValidationError) as err:
        safety.update_sae(db, coord, sae.id, {"arm": "NIM", "category": "x"})
    assert rule_ids(err) == {"SAE-008"}
    with pytest.raises(ValidationError) as err:
        safety.update_sae(db, coord, sae.id, {"reported_on": date(2024, 5, 1)})
    assert rule_ids(err) == {"SAE-004"}
    voiding.void_record(db, coord, "serious_adverse_events", sae.id, "duplicate report")
    with pytest.raises(ValidationError) as err:
        safety.update_sae(db, coord, sae.id, {"outcome": "fatal"})
    assert rule_ids(err) == {"SAE-011"}
    assert count_rows(db, SeriousAdverseEvent) == before + 1
    assert safety.list_saes(db, coord)[0].voided


# --------------------------------------------------------------------------- deviations


def test_deviations(db: Database, actors: Actors, gla: FamilyView) -> None:
    coord = actors["coord_gla"]
    other = family_with_children(db, coord, "GLA", (4,))
    dev = safety.add_deviation(
        db, coord, gla.trial_id, date(2024, 4, 1), "visit window", "minor", "15m visit late",
        gla.children[1].trial_id,
    )  # fmt: skip
    assert (dev.family, dev.child, dev.site) == (gla.trial_id, gla.children[1].trial_id, "GLA")
    safety.add_deviation(
        db, coord, other.trial_id, date(2024, 4, 2), "consent", "major", "old form"
    )
    assert next(d.id for d in safety.list_deviations(db, actors["datamanager"], "GLA")) == dev.id
    before = count_rows(db, ProtocolDeviation)
    with pytest.raises(ValidationError) as err:
        safety.add_deviation(
            db, coord, gla.trial_id, utcnow().date() + timedelta(1), "", "huge", "",
            other.children[0].trial_id,
        )  # fmt: skip
    assert rule_ids(err) == {"DEV-001", "DEV-002", "DEV-003", "DEV-004", "DEV-005"}
    assert {p.record for p in err.value.problems} == {f"new deviation of family {gla.trial_id}"}
    assert count_rows(db, ProtocolDeviation) == before
    assert audit.history(db, actors["admin"], "protocol_deviations", str(dev.id))[0].action == (
        "insert"
    )


# --------------------------------------------------------------------------- loss to follow-up


def test_loss_to_follow_up(db: Database, actors: Actors, gla: FamilyView) -> None:
    coord = actors["coord_gla"]
    today = utcnow().date()
    with pytest.raises(ValidationError) as err:
        safety.declare_lost(db, coord, gla.children[0].trial_id, today, "moved abroad")
    assert rule_ids(err) == {"LTF-004"} and "not yet randomised" in str(err.value)
    child = _randomised_child(db, actors)
    before = count_rows(db, LossToFollowUp)
    with pytest.raises(ValidationError) as err:
        safety.declare_lost(
            db, coord, child, today + timedelta(days=1), " ", today + timedelta(days=2)
        )
    assert rule_ids(err) == {"LTF-001", "LTF-002", "LTF-007"}
    with pytest.raises(ValidationError) as err:  # randomised today: cannot be lost yesterday
        safety.declare_lost(db, coord, child, today - timedelta(days=1), "no reply")
    assert rule_ids(err) == {"LTF-008"}
    assert count_rows(db, LossToFollowUp) == before
    lost = safety.declare_lost(db, coord, child, today, "no reply to 5 letters", date(2024, 6, 1))
    assert (lost.child, lost.last_contact_on) == (child, date(2024, 6, 1))
    with pytest.raises(ValidationError) as err:
        safety.declare_lost(db, coord, child, today, "again")
    assert rule_ids(err) == {"LTF-006"} and f"declared lost on {today}" in str(err.value)
    history = audit.history(db, actors["admin"], "losses_to_follow_up", str(lost.id))
    assert json.loads(history[0].new or "")["reason"] == "no reply to 5 letters"


def test_a_child_withdrawn_from_follow_up_is_not_lost(db: Database, actors: Actors) -> None:
    coord = actors["coord_gla"]
    child = _randomised_child(db, actors)
    today = utcnow().date()
    consent.record_withdrawal(db, coord, child, today, "intervention", "carer", "too busy")
    consent.record_withdrawal(db, coord, child, today, "follow_up", "carer", "moving")
    with pytest.raises(ValidationError) as err:
        safety.declare_lost(db, coord, child, today, "no reply")
    assert rule_ids(err) == {"LTF-005"} and "withdrawn from follow-up" in str(err.value)


# --------------------------------------------------------------------------- scope and CLI


def test_safety_services_are_site_scoped(db: Database, actors: Actors, gla: FamilyView) -> None:
    gla_coord, cro = actors["coord_gla"], actors["coord_cro"]
    child = gla.children[0].trial_id
    sae = safety.add_sae(db, gla_coord, child, date(2024, 5, 1), date(2024, 5, 2), "death", "x")
    dev = safety.add_deviation(db, gla_coord, gla.trial_id, date(2024, 5, 1), "c", "minor", "d")
    before = [count_rows(db, m) for m in (SeriousAdverseEvent, ProtocolDeviation, LossToFollowUp)]
    calls = [
        lambda: safety.add_sae(db, cro, child, date(2024, 5, 1), date(2024, 5, 2), "death", "x"),
        lambda: safety.update_sae(db, cro, sae.id, {"outcome": "fatal"}),
        lambda: safety.complete_sae(db, cro, sae.id),
        lambda: safety.list_saes(db, cro, "GLA"),
        lambda: safety.add_deviation(db, cro, gla.trial_id, date(2024, 5, 1), "c", "minor", "d"),
        lambda: safety.list_deviations(db, cro, "GLA"),
        lambda: safety.declare_lost(db, cro, child, utcnow().date(), "gone"),
        lambda: voiding.void_record(db, cro, "serious_adverse_events", sae.id, "x"),
        lambda: voiding.void_record(db, cro, "protocol_deviations", dev.id, "x"),
    ]
    for call in calls:
        with pytest.raises(PermissionDenied, match=SCOPE):
            call()
    assert [
        count_rows(db, m) for m in (SeriousAdverseEvent, ProtocolDeviation, LossToFollowUp)
    ] == (before)
    assert safety.list_saes(db, cro) == [] and safety.list_deviations(db, cro) == []
    with pytest.raises(PermissionDenied, match="lacks 'write_trial_data'"):
        safety.add_sae(
            db, actors["research_gla"], child, date(2024, 5, 1), date(2024, 5, 2), "death", "x"
        )


def test_safety_commands(db_url: str) -> None:
    from tests.test_cli_randomisation import _family_with_child

    base = ("--database", db_url, "--user", "coord_gla")
    fam, child = _family_with_child(db_url)
    added = run(*base, "sae", "add", child, "--onset", "2024-05-01", "--reported", "2024-05-02",
                "--category", "hospitalisation", "--description", "RSV", "--expected",
                "--relatedness", "not_related", "--json")  # fmt: skip
    assert added.exit_code == 0, added.stderr
    sae = json.loads(added.output)
    assert "arm" not in sae and sae["expected"] is True
    incomplete = run(*base, "sae", "complete", str(sae["id"]))
    assert incomplete.exit_code == 1 and "SAE-009" in incomplete.stderr
    assert run(*base, "sae", "update", str(sae["id"]), "--outcome", "recovered").exit_code == 0
    assert run(*base, "sae", "complete", str(sae["id"])).exit_code == 0
    refused = run(*base, "sae", "update", str(sae["id"]), "--outcome", "fatal")
    assert refused.exit_code == 1 and "needs a reason" in refused.stderr
    nothing = run(*base, "sae", "update", str(sae["id"]))
    assert nothing.exit_code == 2
    listed = run("--database", db_url, "--user", "statistician", "sae", "list", "--json")
    (row,) = json.loads(listed.output)
    assert "arm" not in row and row["outcome"] == "recovered"
    assert "Serious adverse events (1)" in run(*base, "sae", "list").output
    dev = run(*base, "deviation", "add", fam, "--child", child, "--on", "2024-05-01",
              "--category", "consent", "--severity", "major", "--description", "old form")  # fmt: skip
    assert dev.exit_code == 0 and "major" in dev.output
    assert json.loads(run(*base, "deviation", "list", "--json").output)[0]["child"] == child
    assert "Protocol deviations (1)" in run(*base, "deviation", "list").output
    lost = run(*base, "child", "lost", child, "--declared", "2024-06-01", "--reason", "moved")
    assert lost.exit_code == 1 and "LTF-004" in lost.stderr
    assert len(lost.stderr.strip().splitlines()) == 1
    cro = run("--database", db_url, "--user", "coord_cro", "deviation", "list", "--site", "GLA")
    assert cro.exit_code == 1 and "may not" in cro.stderr
