"""The screening log: validated, audited, site-scoped, counted for CONSORT."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from noim.db.base import utcnow
from noim.db.models import Family, ScreeningEntry
from noim.db.session import Database
from noim.domain.exceptions import NotFound, PermissionDenied, ValidationError
from noim.services import audit, families, screening, voiding
from tests.conftest import Actors
from tests.factories import count_rows, rule_ids
from tests.test_cli import run

DAY = date(2025, 6, 2)


def test_log_enrol_and_count(db: Database, actors: Actors) -> None:
    coord = actors["coord_gla"]
    yes = screening.add_entry(db, coord, "GLA", DAY, 2, True, local_authority="GCC", reference="S1")
    no = screening.add_entry(db, coord, "GLA", DAY, 1, False, "child over 60 months")
    declined = screening.add_entry(
        db, coord, "GLA", DAY, 1, True, declined=True, declined_reason="carer too busy"
    )
    assert (yes.local_authority, yes.n_children, yes.family) == ("GCC", 2, None)
    fam = families.register_family(db, coord, "GLA", "GCC")
    linked = screening.enrol(db, coord, yes.id, fam.trial_id)
    assert linked.family == fam.trial_id
    report = screening.list_entries(db, actors["datamanager"])
    assert report.counts == screening.ScreeningCounts(
        screened=3, children_screened=4, eligible=2, ineligible=1, declined=1, enrolled=1
    )
    assert report.ineligible_reasons == {"child over 60 months": 1}
    assert [e.id for e in report.entries] == [yes.id, no.id, declined.id]
    # every insert and the link are in the audit trail
    history = audit.history(db, actors["admin"], "screening_log", str(yes.id))
    assert [r.action for r in history] == ["insert", "update"]
    assert (history[1].field, history[1].user) == ("family_id", "coord_gla")
    # a voided entry stays listed, marked, and leaves the counts
    voiding.void_record(db, coord, "screening_log", no.id, "screened twice")
    report = screening.list_entries(db, coord, "GLA")
    assert report.counts.screened == 2 and report.counts.ineligible == 0
    assert [e.voided for e in report.entries] == [False, True, False]
    voids = list(audit.history(db, actors["admin"], "screening_log", str(no.id)))
    assert voids[-1].action == "void" and voids[-1].reason == "screened twice"


def test_bad_entry_reports_every_problem_and_writes_nothing(db: Database, actors: Actors) -> None:
    coord = actors["coord_gla"]
    future = utcnow().date() + timedelta(days=3)
    before = count_rows(db, ScreeningEntry)
    with pytest.raises(ValidationError) as err:
        screening.add_entry(
            db,
            coord,
            "GLA",
            future,
            0,
            False,
            None,
            declined=True,
            declined_reason=None,
            local_authority="CROY",
            reference="x" * 40,
        )
    assert rule_ids(err) == {
        "SCR-001",
        "SCR-002",
        "SCR-003",
        "SCR-004",
        "SCR-005",
        "SCR-006",
        "SCR-007",
    }
    by_rule = {p.rule: p for p in err.value.problems}
    assert (
        by_rule["SCR-001"].field == "screened_on" and by_rule["SCR-001"].value == future.isoformat()
    )
    assert by_rule["SCR-006"].value == "CROY" and "GCC" in by_rule["SCR-006"].expected
    assert all(p.record == "screening entry at GLA" for p in err.value.problems)
    with pytest.raises(ValidationError) as err:
        screening.add_entry(db, coord, "GLA", DAY, 1, True, "not needed", declined_reason="why")
    assert rule_ids(err) == {"SCR-003", "SCR-005"}
    assert count_rows(db, ScreeningEntry) == before
    with pytest.raises(NotFound, match="no site 'XXX'"):
        screening.add_entry(db, coord, "XXX", DAY, 1, True)


def test_enrol_refuses_ineligible_declined_other_site_and_double_links(
    db: Database, actors: Actors
) -> None:
    admin, coord = actors["admin"], actors["coord_gla"]
    no = screening.add_entry(db, coord, "GLA", DAY, 1, False, "no legal order")
    declined = screening.add_entry(
        db, coord, "GLA", DAY, 1, True, declined=True, declined_reason="moved away"
    )
    ok = screening.add_entry(db, coord, "GLA", DAY, 1, True)
    other = screening.add_entry(db, coord, "GLA", DAY, 1, True)
    fam = families.register_family(db, coord, "GLA")
    cro = families.register_family(db, actors["coord_cro"], "CRO", "CROY", True)
    with pytest.raises(ValidationError) as err:
        screening.enrol(db, coord, no.id, fam.trial_id)
    assert rule_ids(err) == {"SCR-008"}
    with pytest.raises(ValidationError) as err:
        screening.enrol(db, coord, declined.id, fam.trial_id)
    assert rule_ids(err) == {"SCR-008"} and err.value.problems[0].field == "declined"
    with pytest.raises(ValidationError) as err:
        screening.enrol(db, admin, ok.id, cro.trial_id)
    assert rule_ids(err) == {"SCR-009"} and "family is at CRO" in str(err.value)
    screening.enrol(db, coord, ok.id, fam.trial_id)
    with pytest.raises(ValidationError) as err:
        screening.enrol(db, coord, other.id, fam.trial_id)
    assert rule_ids(err) == {"SCR-010"} and f"linked to entry {ok.id}" in str(err.value)
    fam2 = families.register_family(db, coord, "GLA")
    with pytest.raises(ValidationError) as err:
        screening.enrol(db, coord, ok.id, fam2.trial_id)
    assert rule_ids(err) == {"SCR-010"} and fam.trial_id in str(err.value)
    families.void_family(db, coord, fam2.trial_id, "registered in error")
    with pytest.raises(ValidationError) as err:
        screening.enrol(db, coord, other.id, fam2.trial_id)
    assert rule_ids(err) == {"SCR-011"}
    with pytest.raises(NotFound):
        screening.enrol(db, coord, 9999, fam.trial_id)


def test_enrol_refuses_a_family_registered_before_its_screening(
    db: Database, actors: Actors
) -> None:
    coord = actors["coord_gla"]
    fam = families.register_family(db, coord, "GLA")
    with db.write(coord, reason="test: registered last week") as s:
        row = s.scalar(select(Family).where(Family.trial_id == fam.trial_id))
        assert row is not None
        row.registered_at = utcnow() - timedelta(days=7)
    entry = screening.add_entry(db, coord, "GLA", utcnow().date() - timedelta(days=2), 1, True)
    with pytest.raises(ValidationError) as err:
        screening.enrol(db, coord, entry.id, fam.trial_id)
    assert rule_ids(err) == {"SCR-012"} and "registered on or after screening" in str(err.value)


def test_screening_is_site_scoped(db: Database, actors: Actors) -> None:
    gla, cro = actors["coord_gla"], actors["coord_cro"]
    entry = screening.add_entry(db, gla, "GLA", DAY, 1, True)
    fam = families.register_family(db, gla, "GLA")
    before = count_rows(db, ScreeningEntry)
    scope = r"user 'coord_cro' \(coordinator at CRO\) may not .* at site 'GLA'"
    with pytest.raises(PermissionDenied, match=scope):
        screening.add_entry(db, cro, "GLA", DAY, 1, True)
    with pytest.raises(PermissionDenied, match=scope):
        screening.enrol(db, cro, entry.id, fam.trial_id)
    with pytest.raises(PermissionDenied, match=scope):
        screening.list_entries(db, cro, "GLA")
    with pytest.raises(PermissionDenied, match=scope):
        voiding.void_record(db, cro, "screening_log", entry.id, "not ours")
    assert screening.list_entries(db, cro).entries == ()
    assert screening.list_entries(db, cro).counts.screened == 0
    assert count_rows(db, ScreeningEntry) == before
    # researchers read the log but do not write it
    assert len(screening.list_entries(db, actors["research_gla"]).entries) == 1
    with pytest.raises(PermissionDenied, match="lacks 'write_trial_data'"):
        screening.add_entry(db, actors["research_gla"], "GLA", DAY, 1, True)


def test_an_entry_a_live_family_was_registered_from_is_not_voided(
    db: Database, actors: Actors
) -> None:
    coord = actors["coord_gla"]
    entry = screening.add_entry(db, coord, "GLA", DAY, 1, True)
    fam = families.register_family(db, coord, "GLA")
    screening.enrol(db, coord, entry.id, fam.trial_id)
    history = audit.history(db, actors["admin"], "screening_log", str(entry.id))
    with pytest.raises(ValidationError) as err:
        voiding.void_record(db, coord, "screening_log", entry.id, "screened twice")
    assert rule_ids(err) == {"SCR-014"} and f"family {fam.trial_id}" in str(err.value)
    assert audit.history(db, actors["admin"], "screening_log", str(entry.id)) == history
    assert not screening.get_entry(db, coord, entry.id).voided
    families.void_family(db, coord, fam.trial_id, "registered in error")
    first = voiding.void_record(db, coord, "screening_log", entry.id, "screened twice")
    assert not first.already_voided and screening.get_entry(db, coord, entry.id).voided
    voided = audit.history(db, actors["admin"], "screening_log", str(entry.id))
    assert {(r.action, r.reason) for r in voided[len(history) :]} == {("void", "screened twice")}
    again = voiding.void_record(db, coord, "screening_log", entry.id, "again")
    assert again.already_voided and again.reason == "screened twice"
    assert audit.history(db, actors["admin"], "screening_log", str(entry.id)) == voided


def test_one_entry_is_read_at_the_users_sites(db: Database, actors: Actors) -> None:
    entry = screening.add_entry(db, actors["coord_gla"], "GLA", DAY, 2, False, "too old")
    got = screening.get_entry(db, actors["datamanager"], entry.id)
    assert (got.id, got.site, got.n_children, got.ineligible_reason) == (
        entry.id,
        "GLA",
        2,
        "too old",
    )
    with pytest.raises(PermissionDenied):
        screening.get_entry(db, actors["coord_cro"], entry.id)
    with pytest.raises(NotFound):
        screening.get_entry(db, actors["coord_gla"], entry.id + 1000)


def test_screening_commands(db_url: str) -> None:
    base = ("--database", db_url, "--user", "coord_gla")
    added = run(
        *base, "screening", "add", "--site", "GLA", "--la", "GCC", "--on", "2025-05-01",
        "--children", "2", "--eligible", "--json",
    )  # fmt: skip
    assert added.exit_code == 0, added.stderr
    entry = json.loads(added.output)
    assert entry["eligible"] is True and entry["n_children"] == 2
    ineligible = run(
        *base, "screening", "add", "--site", "GLA", "--on", "2025-05-02", "--ineligible",
        "--reason", "already adopted",
    )  # fmt: skip
    assert ineligible.exit_code == 0 and "ineligible (already adopted)" in ineligible.output
    fam = json.loads(run(*base, "family", "register", "--site", "GLA", "--json").output)
    enrolled = run(*base, "screening", "enrol", str(entry["id"]), fam["trial_id"])
    assert enrolled.exit_code == 0 and fam["trial_id"] in enrolled.output
    listed = json.loads(run(*base, "screening", "list", "--json").output)
    assert listed["counts"] == {
        "screened": 2,
        "children_screened": 3,
        "eligible": 1,
        "ineligible": 1,
        "declined": 0,
        "enrolled": 1,
    }
    table = run(*base, "screening", "list")
    assert "Screened 2 families (3 children)" in table.output
    neither = run(*base, "screening", "add", "--site", "GLA", "--on", "2025-05-01")
    assert neither.exit_code == 2 and "--eligible or --ineligible" in neither.output
    bad = run(*base, "screening", "add", "--site", "GLA", "--on", "2025-05-01", "--ineligible")
    assert bad.exit_code == 1 and bad.stderr.startswith("error: ") and "SCR-003" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    cro = run("--database", db_url, "--user", "coord_cro", "screening", "list", "--site", "GLA")
    assert cro.exit_code == 1 and "may not" in cro.stderr


def test_log_filters_and_pages(db: Database, actors: Actors) -> None:
    coord = actors["coord_gla"]
    made = []
    for i in range(7):
        eligible = i % 3 != 0
        made.append(
            screening.add_entry(
                db,
                coord,
                "GLA",
                DAY + timedelta(days=i),
                1,
                eligible,
                None if eligible else (" too old " if i else "not in care"),
                declined=i == 4,
                declined_reason="no time" if i == 4 else None,
            )
        )
    screening.add_entry(db, actors["coord_cro"], "CRO", DAY, 1, False, "not in care")
    fam = families.register_family(db, coord, "GLA", "GCC")
    screening.enrol(db, coord, made[1].id, fam.trial_id)
    voiding.void_record(db, coord, "screening_log", made[2].id, "screened twice")
    full = screening.list_entries(db, coord)
    assert full.matching == 7 and [e.id for e in full.entries] == [e.id for e in made]
    assert list(full.ineligible_reasons.items()) == [("too old", 2), ("not in care", 1)]
    by_status = {
        status: [e.id for e in screening.list_entries(db, coord, status=status).entries]
        for status in screening.ENTRY_FILTERS
    }
    ids = [e.id for e in made]
    assert by_status == {
        "to_enrol": [ids[5]],
        "enrolled": [ids[1]],
        "ineligible": [ids[0], ids[3], ids[6]],
        "declined": [ids[4]],
        "voided": [ids[2]],
    }
    page = screening.list_entries(db, coord, limit=3, offset=3, newest_first=True)
    assert [e.id for e in page.entries] == ids[::-1][3:6] and page.matching == 7
    assert page.counts == full.counts and page.ineligible_reasons == full.ineligible_reasons
    with pytest.raises(ValidationError) as err:
        screening.list_entries(db, coord, status="pending")
    assert rule_ids(err) == {"SCR-013"}
