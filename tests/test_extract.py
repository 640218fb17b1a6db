"""Analysis datasets (noim.extract): values checked by hand, blinding, access, the data
dictionary, and a constant number of SQL statements whatever the number of families."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import event, select

from noim import extract
from noim.db.models import Allocation, Arm, Family
from noim.db.session import Database
from noim.domain.exceptions import PermissionDenied
from noim.extract._columns import DATASETS, render
from noim.services import (
    assessments,
    consent,
    economics,
    exclusions,
    families,
    legal,
    placements,
    randomisation,
    safety,
)
from tests.conftest import Actors, Templates, fresh_db_url, prebuilt_copy
from tests.factories import family_with_children

DOCS = Path(__file__).resolve().parent.parent / "docs"
SEED = 20240501
ENTERED = date(2024, 3, 1)  # the factory's entry to care
R = date(2024, 4, 1)  # the (patched) randomisation date
AS_OF = date(2026, 10, 31)
ANALYSTS = ("statistician", "unblinded_stat", "admin")


def d(text: str) -> date:
    return date.fromisoformat(text)


def sdq(value: int) -> dict[int, Any]:
    return dict.fromkeys(range(1, 26), value)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Randomise on R (10:00 UTC), so follow-up events lie between R and today."""
    monkeypatch.setattr(
        randomisation, "utcnow", lambda: datetime(R.year, R.month, R.day, 10, tzinfo=UTC)
    )


def ready(db: Database, actors: Actors, site: str, ages: tuple[int, ...]) -> tuple[str, list[str]]:
    coord = actors["coord_gla" if site == "GLA" else "coord_cro"]
    fam = family_with_children(db, coord, site, ages, entered=ENTERED)
    for child in fam.children:
        consent.decide_eligibility(db, coord, child.trial_id, True, d("2024-03-20"))
        consent.record_consent(db, coord, child.trial_id, "local_authority", "v3", d("2024-03-21"))
    return fam.trial_id, [c.trial_id for c in fam.children]


@dataclass
class Trial:
    families: dict[str, str]
    kids: dict[str, str]
    arms: dict[str, str]  # family -> arm code


def build(db: Database, actors: Actors) -> Trial:
    """Five randomised families (GLA: A, B; CRO: C, D, E) and one not randomised (F)."""
    admin, gla, cro = actors["admin"], actors["coord_gla"], actors["coord_cro"]
    randomisation.setup(db, admin, SEED)
    spec = {"A": ("GLA", (30,)), "B": ("GLA", (8, 40)), "C": ("CRO", (20,))}
    spec |= {"D": ("CRO", (50,)), "E": ("CRO", (14,)), "F": ("GLA", (5,))}
    families: dict[str, str] = {}
    kids: dict[str, str] = {}
    arms: dict[str, str] = {}
    for name, (site, ages) in spec.items():
        fam, children = ready(db, actors, site, ages)
        families[name] = fam
        for i, child in enumerate(children, 1):
            kids[f"{name.lower()}{i}"] = child
        if name != "F":
            arms[fam] = randomisation.randomise(db, gla if site == "GLA" else cro, fam).arm
    a1, b1, b2, c1, d1, e1 = (kids[k] for k in ("a1", "b1", "b2", "c1", "d1", "e1"))
    # placements of a1: three, two moves; c1: one, ended by a return home
    placements.add_placement(db, gla, a1, ENTERED, "foster")
    placements.move_child(db, gla, a1, d("2024-09-01"), "foster", "disruption")
    placements.move_child(db, gla, a1, d("2025-03-01"), "kinship", "kinship_placement")
    first = placements.add_placement(db, cro, c1, d("2024-03-02"), "foster")
    placements.end_placement(db, cro, first.id, d("2025-02-10"), "kinship_placement")
    # legal events: Scotland (A, B) and England (C)
    legal.record_event(db, gla, a1, "sc.cpo", ENTERED)
    legal.record_event(db, gla, a1, "sc.plan_adoption", d("2025-01-15"))
    legal.record_event(db, gla, a1, "sc.poa", d("2025-06-01"))
    legal.record_event(db, gla, b1, "sc.return_home", d("2024-08-01"))
    legal.record_event(db, gla, b1, "any.reentry", d("2024-12-01"))
    legal.record_event(db, gla, b2, "sc.poa", d("2025-08-01"))  # after b2's withdrawal
    legal.record_event(db, cro, c1, "en.E43", d("2025-02-10"))
    legal.record_event(
        db, cro, e1, "en.plan_long_term_foster", d("2027-01-05"), today=d("2027-02-01")
    )
    # withdrawals, loss, exclusion, deviations
    consent.record_withdrawal(db, gla, b2, d("2025-06-01"), "follow_up", "carer", "moved away")
    consent.record_withdrawal(db, gla, b1, d("2024-05-01"), "intervention", "carer", "no time")
    consent.record_withdrawal(db, cro, d1, d("2024-06-01"), "data", "birth_parent", "asked")
    safety.declare_lost(db, cro, c1, d("2025-10-01"), "no contact", last_contact_on=d("2025-09-01"))
    exclusions.exclude_child(db, cro, e1, d("2024-05-01"), "entered care at 61 months")
    safety.add_deviation(db, cro, families["C"], d("2024-07-01"), "visit", "major", "missed")
    safety.add_deviation(db, gla, families["A"], d("2024-07-01"), "visit", "minor", "late")
    # scores: a1 baseline twice (the earlier is kept), 30m once; b2 baseline by a birth parent
    research_gla = actors["research_gla"]
    assessments.record_assessment(db, research_gla, a1, "baseline", "sdq", d("2024-04-25"), sdq(2))
    assessments.record_assessment(db, research_gla, a1, "baseline", "sdq", d("2024-04-20"), sdq(1))
    assessments.record_assessment(db, research_gla, a1, "30m", "sdq", d("2026-09-15"), sdq(1))
    assessments.record_assessment(
        db, research_gla, b2, "baseline", "sdq", d("2024-04-20"), sdq(1), "birth_parent"
    )
    # service use: sw_hour 45.50, night 30.00 (2023 prices)
    dm = actors["datamanager"]
    economics.add_unit_cost(db, dm, "sw_hour", "Social worker", "hour", Decimal("45.50"), 2023)
    economics.add_unit_cost(db, dm, "night", "Foster night", "night", Decimal("30.00"), 2024)
    economics.add_service_use(db, gla, a1, "sw_hour", d("2024-05-01"), d("2024-05-31"), Decimal(2))
    economics.add_service_use(db, gla, a1, "night", d("2024-05-01"), d("2024-05-31"), Decimal(3))
    economics.add_service_use(db, cro, c1, "sw_hour", d("2024-05-01"), d("2024-05-31"), Decimal(10))
    economics.add_service_use(db, cro, c1, "night", d("2025-09-10"), d("2025-09-30"), Decimal(20))
    return Trial(families, kids, arms)


@pytest.fixture
def prebuilt(
    backend: str, tmp_path: Path, templates: Templates, clock: None, request: pytest.FixtureRequest
) -> Iterator[tuple[str, Trial]]:
    """A copy of the trial of ``build``, built once per worker and backend (on the clock)."""
    yield from prebuilt_copy(request, "extract_trial", build)


@pytest.fixture
def db_url(
    backend: str, tmp_path: Path, templates: Templates, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A test given ``trial`` starts from a copy of it (``prebuilt``), the others from the
    initialised test database."""
    if "trial" in request.fixturenames:
        yield request.getfixturevalue("prebuilt")[0]
    else:
        yield from fresh_db_url(request)


@pytest.fixture
def trial(db: Database, prebuilt: tuple[str, Trial], clock: None) -> Trial:
    return prebuilt[1]


def rows(df: pd.DataFrame, trial: Trial) -> dict[str, dict[str, Any]]:
    """Rows keyed by the test's child names (a1, b1, ...)."""
    name = {v: k for k, v in trial.kids.items()}
    return {name[r["child_id"]]: r for r in df.to_dict("records")}


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text)


# --------------------------------------------------------------------------- values by hand


def test_children(db: Database, actors: Actors, trial: Trial) -> None:
    df = extract.children(db, actors["unblinded_stat"], as_of=AS_OF)
    r = rows(df, trial)
    assert sorted(r) == ["a1", "b1", "b2", "c1", "d1", "e1"]  # F is not randomised
    a1 = r["a1"]
    assert a1["family_id"] == trial.families["A"] and a1["site"] == "GLA"
    assert a1["arm"] == trial.arms[trial.families["A"]] and not a1["arm_masked"]
    with db.read() as s:
        names = dict(s.execute(select(Arm.code, Arm.name)).all())
        strata = dict(s.execute(select(Family.trial_id, Allocation.stratum).join(Allocation)).all())
    assert a1["arm_label"] == names[a1["arm"]]
    assert (a1["youngest_age_band"], a1["family_size"]) == ("12-35m", "1")
    assert a1["stratum"] == strata[trial.families["A"]]
    assert (a1["sex"], a1["age_at_entry_months"], a1["age_at_entry_days"]) == ("female", 30, 912)
    assert (a1["entered_care_on"], a1["randomised_on"]) == (ts("2024-03-01"), ts("2024-04-01"))
    assert (a1["end_of_follow_up"], a1["end_of_follow_up_reason"]) == (ts("2026-10-31"), "as_of")
    assert a1["itt"] and a1["per_protocol"] and not a1["major_deviation"]  # minor only
    assert pd.isna(a1["withdrawn_level"]) and pd.isna(a1["withdrawn_on"])
    # B: two children, youngest 8 months; b1 withdrew from the intervention only
    assert (r["b1"]["family_size"], r["b1"]["youngest_age_band"]) == ("2+", "0-11m")
    assert r["b1"]["arm"] == r["b2"]["arm"]
    assert (r["b1"]["withdrawn_level"], r["b1"]["withdrawn_on"]) == (
        "intervention",
        ts("2024-05-01"),
    )
    assert r["b1"]["itt"] and not r["b1"]["per_protocol"]
    assert (r["b1"]["end_of_follow_up_reason"]) == "as_of"
    assert (r["b2"]["end_of_follow_up"], r["b2"]["end_of_follow_up_reason"]) == (
        ts("2025-06-01"),
        "withdrawal",
    )
    assert r["b2"]["itt"] and not r["b2"]["per_protocol"]
    # C: lost (censored at the last contact), major deviation
    c1 = r["c1"]
    assert (c1["end_of_follow_up"], c1["end_of_follow_up_reason"]) == (ts("2025-09-01"), "lost")
    assert c1["lost_to_follow_up"] and c1["major_deviation"] and c1["itt"]
    assert not c1["per_protocol"]
    # D withdrew from data use: outside ITT; E excluded after randomisation
    assert (r["d1"]["withdrawn_level"], r["d1"]["itt"]) == ("data", False)
    assert r["d1"]["end_of_follow_up"] == ts("2024-06-01")
    assert r["e1"]["excluded_post_randomisation"] and r["e1"]["itt"]
    assert not r["e1"]["per_protocol"]
    assert not any(r[k]["excluded_post_randomisation"] for k in ("a1", "b1", "b2", "c1", "d1"))
    # the schedule's end (34 months after R) ends follow-up when as_of is later
    late = rows(extract.children(db, actors["admin"], as_of=d("2027-06-01")), trial)
    assert (late["a1"]["end_of_follow_up"], late["a1"]["end_of_follow_up_reason"]) == (
        ts("2027-02-01"),
        "schedule_end",
    )
    # as_of before randomisation: nobody
    assert extract.children(db, actors["admin"], as_of=d("2024-03-31")).empty


def test_permanence(db: Database, actors: Actors, trial: Trial) -> None:
    df = extract.permanence(db, actors["unblinded_stat"], as_of=AS_OF)
    r = rows(df, trial)
    assert sorted(r) == ["a1", "b1", "b2", "c1", "e1"]  # d1 withdrew from data use
    # a1: first permanence decision = the panel's adoption plan (sc.cpo has no outcome)
    a1 = r["a1"]
    assert (a1["decision_on"], a1["decision_type"], a1["outcome"]) == (
        ts("2025-01-15"),
        "sc.plan_adoption",
        "adoption",
    )
    assert (a1["event"], a1["duration"], a1["days_from_entry"]) == (2, 289, 320)
    assert not a1["decided_before_randomisation"]
    # b1: an actual return home
    assert (r["b1"]["event"], r["b1"]["outcome"], r["b1"]["duration"]) == (1, "return_home", 122)
    # b2: the order came after withdrawal from follow-up: censored there
    b2 = r["b2"]
    assert (b2["event"], b2["duration"], b2["days_from_entry"]) == (0, 426, 457)
    assert pd.isna(b2["outcome"]) and pd.isna(b2["decision_on"]) and pd.isna(b2["decision_type"])
    assert b2["end_of_follow_up"] == ts("2025-06-01")
    # c1: kinship (England, SGO), before the loss to follow-up
    assert (r["c1"]["event"], r["c1"]["outcome"], r["c1"]["duration"]) == (3, "kinship", 315)
    # e1: decision after as_of: censored at as_of
    assert (r["e1"]["event"], r["e1"]["duration"]) == (0, (AS_OF - R).days)
    later = rows(extract.permanence(db, actors["admin"], as_of=d("2027-01-31")), trial)
    assert (later["e1"]["event"], later["e1"]["outcome"]) == (4, "long_term_foster")
    assert later["e1"]["duration"] == (d("2027-01-05") - R).days
    # censoring date before a1's decision
    early = rows(extract.permanence(db, actors["admin"], as_of=d("2024-12-31")), trial)
    assert (early["a1"]["event"], early["a1"]["duration"]) == (0, (d("2024-12-31") - R).days)


def test_time_origin_of_children_who_join_after_randomisation(
    db: Database, actors: Actors, trial: Trial
) -> None:
    """A sibling born after the family's randomisation, one entering care later, and one in
    care before it who joined the trial later still: each child's permanence time starts at
    its own origin, the latest of the randomisation, its entry to care and the date it
    joined; never before its birth, its entry to care or its joining."""
    gla, family = actors["coord_gla"], trial.families["A"]  # A: randomised on R, 2024-04-01
    born = families.add_child(db, gla, family, d("2024-09-10"), "female", d("2024-09-12"))
    later = families.add_child(db, gla, family, d("2023-05-01"), "male", d("2025-02-01"))
    joined = families.add_child(db, gla, family, d("2022-11-01"), "male", d("2024-01-15"))
    assert born.joined_after_randomisation and joined.joined_after_randomisation
    consent.record_consent(db, gla, later.trial_id, "local_authority", "v3", d("2025-02-01"))
    consent.record_consent(db, gla, joined.trial_id, "local_authority", "v3", d("2024-06-20"))
    # an earlier consent of another scope is not joining the trial
    consent.record_consent(
        db, gla, joined.trial_id, "local_authority", "v1", d("2024-05-01"), scope="data_linkage"
    )
    legal.record_event(db, gla, born.trial_id, "sc.return_home", d("2025-03-01"))
    df = extract.permanence(db, actors["statistician"], as_of=AS_OF)
    got = {r["child_id"]: r for r in df.to_dict("records")}
    origin = {k: (got[k]["time_origin"], got[k]["time_origin_reason"]) for k in got}
    assert origin[trial.kids["a1"]] == (ts("2024-04-01"), "randomisation")
    assert origin[born.trial_id] == (ts("2024-09-12"), "entry_to_care")  # born after R
    assert origin[later.trial_id] == (ts("2025-02-01"), "entry_to_care")  # consent that day
    assert origin[joined.trial_id] == (ts("2024-06-20"), "joined_trial")  # in care before R
    b = got[born.trial_id]  # the return home 170 days after its entry to care, not 334
    assert (b["event"], b["duration"]) == (1, (d("2025-03-01") - d("2024-09-12")).days)
    assert got[later.trial_id]["duration"] == (AS_OF - d("2025-02-01")).days
    assert got[joined.trial_id]["duration"] == (AS_OF - d("2024-06-20")).days
    assert got[trial.kids["a1"]]["duration"] == 289  # unchanged: from R
    assert (df["time_origin"] >= df["randomised_on"]).all()
    assert (df["time_origin"] >= df["entered_care_on"]).all()
    assert (df["duration"] <= (df["end_of_follow_up"] - df["time_origin"]).dt.days.clip(0)).all()
    # read as of a date before the later child entered care: not yet at risk (0, censored)
    early = rows_by_id(extract.permanence(db, actors["statistician"], as_of=d("2024-12-31")))
    assert (early[later.trial_id]["duration"], early[later.trial_id]["event"]) == (0, 0)
    # nor had the third joined on 2024-06-01: its origin is then the randomisation
    june = rows_by_id(extract.permanence(db, actors["statistician"], as_of=d("2024-06-01")))
    assert june[joined.trial_id]["time_origin_reason"] == "randomisation"


def rows_by_id(df: pd.DataFrame) -> dict[str, dict[str, Any]]:
    return {r["child_id"]: r for r in df.to_dict("records")}


def test_primary_outcome_not_yet_due_is_not_missing(
    db: Database, actors: Actors, trial: Trial
) -> None:
    """On AS_OF the 30-month window (28-34 months after R: 2026-08-01 to 2027-02-01) is open:
    only a1 has the outcome and the others are not yet reached (even b2, withdrawn from
    follow-up, and e1, excluded: their visits are not required, but not yet due); once the
    window has closed they are missing."""
    from noim.reports import summaries

    who = actors["statistician"]

    def status(on: date) -> dict[str, tuple[str, str, bool]]:
        data = summaries.outcome_data(
            extract.children(db, who, as_of=on),
            extract.scores(db, who, as_of=on, wide=True),
            extract.visits(db, who, as_of=on),
            on,
        )
        named = rows(data, trial)
        return {
            k: (r[summaries.BASELINE_STATUS], r[summaries.PRIMARY_STATUS], r[summaries.PRIMARY_DUE])
            for k, r in named.items()
        }

    now = status(AS_OF)
    assert now["a1"] == ("observed", "observed", True)
    for k in ("b1", "b2", "c1", "e1"):  # d1 withdrew from data use: not in the ITT set
        assert now[k][1:] == ("not yet reached", False), k
    assert now["b2"][0] == "missing"  # its baseline window closed long ago, no carer SDQ
    later = status(d("2027-03-01"))
    assert later["a1"][1] == "observed"
    assert {later[k][1:] for k in ("b1", "b2", "c1", "e1")} == {("missing", True)}


def test_scores_long_and_wide(db: Database, actors: Actors, trial: Trial) -> None:
    long = extract.scores(db, actors["statistician"], as_of=AS_OF)
    a1 = long[long["child_id"] == trial.kids["a1"]]
    total = a1[a1["scale"] == "total_difficulties"].set_index("timepoint")
    assert sorted(total.index) == ["30m", "baseline"]
    # two baseline SDQs: the earlier (all items 1: total 20) is kept
    assert total.loc["baseline", "score"] == 20.0
    assert total.loc["baseline", "assessed_on"] == ts("2024-04-20")
    assert total.loc["30m", "score"] == 20.0
    assert not total.loc["30m", "out_of_window"] and total.loc["baseline", "completed"]
    assert set(a1["instrument"]) == {"sdq"} and set(a1["respondent"]) == {"carer"}
    emotional = a1[(a1["scale"] == "emotional") & (a1["timepoint"] == "baseline")]
    assert list(emotional["score"]) == [5.0]
    assert (a1.groupby("timepoint").size() == a1.groupby("timepoint")["scale"].nunique()).all()
    b2 = long[long["child_id"] == trial.kids["b2"]]
    assert set(b2["respondent"]) == {"birth_parent"}
    # as_of before the 30m assessment
    early = extract.scores(db, actors["statistician"], as_of=d("2025-01-01"))
    assert "30m" not in set(early["timepoint"])

    wide = extract.scores(db, actors["statistician"], as_of=AS_OF, wide=True)
    w = rows(wide, trial)
    assert sorted(w) == ["a1", "b1", "b2", "c1", "e1"]
    assert w["a1"]["sdq_total_difficulties_baseline"] == 20.0
    assert w["a1"]["sdq_total_difficulties_30m"] == 20.0
    assert pd.isna(w["b2"]["sdq_total_difficulties_baseline"])  # carer scores only
    cols = [c for c in wide.columns if c.startswith("sdq_total_difficulties")]
    assert cols == ["sdq_total_difficulties_baseline", "sdq_total_difficulties_30m"]
    parent = extract.scores(
        db, actors["statistician"], as_of=AS_OF, wide=True, respondent="birth_parent"
    )
    assert rows(parent, trial)["b2"]["sdq_total_difficulties_baseline"] == 20.0


def test_placements_and_reentries(db: Database, actors: Actors, trial: Trial) -> None:
    r = rows(extract.placements(db, actors["statistician"], as_of=AS_OF), trial)
    a1 = r["a1"]
    assert (a1["n_placements"], a1["moves"], a1["two_or_more_moves"]) == (3, 2, True)
    assert pd.isna(a1["last_placement_end"])  # still placed
    assert a1["days_in_care"] == (AS_OF - ENTERED).days == a1["days_placed"]
    c1 = r["c1"]
    assert (c1["n_placements"], c1["moves"], c1["two_or_more_moves"]) == (1, 0, False)
    assert c1["last_placement_end"] == ts("2025-02-10")
    assert c1["days_in_care"] == (d("2025-02-10") - ENTERED).days
    assert c1["days_placed"] == (d("2025-02-10") - d("2024-03-02")).days
    assert (r["b1"]["n_placements"], r["b1"]["moves"], r["b1"]["days_placed"]) == (0, 0, 0)
    assert r["b2"]["days_in_care"] == (d("2025-06-01") - ENTERED).days  # end of follow-up
    # as_of before a1's second move: two placements
    early = rows(extract.placements(db, actors["admin"], as_of=d("2024-12-31")), trial)
    assert (early["a1"]["n_placements"], early["a1"]["moves"]) == (2, 1)

    e = rows(extract.reentries(db, actors["statistician"], as_of=AS_OF), trial)
    b1 = e["b1"]
    assert (b1["returned_home"], b1["returned_home_on"], b1["n_returns_home"]) == (
        True,
        ts("2024-08-01"),
        1,
    )
    assert (b1["reentered"], b1["reentered_on"], b1["days_to_reentry"]) == (
        True,
        ts("2024-12-01"),
        122,
    )
    assert (b1["duration"], b1["event"]) == (122, 1)
    a1 = e["a1"]
    assert (a1["returned_home"], a1["reentered"], a1["event"]) == (False, False, 0)
    assert pd.isna(a1["duration"]) and pd.isna(a1["days_to_reentry"])
    # before the re-entry: at risk from the return home to as_of
    early_e = rows(extract.reentries(db, actors["admin"], as_of=d("2024-10-31")), trial)
    assert (early_e["b1"]["reentered"], early_e["b1"]["event"]) == (False, 0)
    assert early_e["b1"]["duration"] == (d("2024-10-31") - d("2024-08-01")).days


def test_costs(db: Database, actors: Actors, trial: Trial) -> None:
    r = rows(extract.costs(db, actors["statistician"], as_of=AS_OF), trial)
    a1 = r["a1"]
    assert (a1["n_records"], a1["total_cost"]) == (2, 2 * 45.5 + 3 * 30.0)
    assert (a1["currency"], a1["price_years"]) == ("GBP", "2023;2024")
    # c1's nights started after the last contact (end of follow-up): left out
    assert (r["c1"]["n_records"], r["c1"]["total_cost"], r["c1"]["price_years"]) == (
        1,
        455.0,
        "2023",
    )
    assert (r["b1"]["n_records"], r["b1"]["total_cost"]) == (0, 0.0)
    assert pd.isna(r["b1"]["currency"]) and pd.isna(r["b1"]["price_years"])


# --------------------------------------------------------------------------- blinding and access


FUNCTIONS: dict[str, Callable[..., pd.DataFrame]] = {
    "children": extract.children,
    "permanence": extract.permanence,
    "scores": extract.scores,
    "scores_wide": lambda db, actor, **kw: extract.scores(db, actor, wide=True, **kw),
    "placements": extract.placements,
    "reentries": extract.reentries,
    "costs": extract.costs,
}


def test_blinded_roles_get_masked_codes(db: Database, actors: Actors, trial: Trial) -> None:
    with db.read() as s:
        masked = dict(s.execute(select(Allocation.family_id, Allocation.masked_code)).all())
    assert len(masked) == 5
    arm_codes = set(trial.arms.values())
    for name, fn in FUNCTIONS.items():
        blind = fn(db, actors["statistician"], as_of=AS_OF)
        seen = fn(db, actors["unblinded_stat"], as_of=AS_OF)
        assert blind["arm_masked"].all() and not seen["arm_masked"].any(), name
        assert not set(blind["arm"]) & arm_codes, name
        assert set(blind["arm"]) <= set(masked.values()), name
        assert set(seen["arm"]) <= arm_codes, name
    kids = extract.children(db, actors["statistician"], as_of=AS_OF)
    assert kids["arm_label"].isna().all()
    # constant per family, distinct between families
    assert (kids.groupby("family_id")["arm"].nunique() == 1).all()
    assert kids.drop_duplicates("family_id")["arm"].is_unique
    seen_kids = extract.children(db, actors["admin"], as_of=AS_OF)
    assert seen_kids["arm_label"].notna().all()


@pytest.mark.parametrize("name", ["coord_gla", "research_gla", "datamanager", "dmc_chair"])
def test_only_analysts_extract(db: Database, actors: Actors, name: str) -> None:
    for fn in FUNCTIONS.values():
        with pytest.raises(PermissionDenied, match="'analyse'"):
            fn(db, actors[name], as_of=AS_OF)


def test_freeze_must_be_a_freeze_id(db: Database, actors: Actors) -> None:
    with pytest.raises(extract.FreezeNotSupported, match="freeze='f1'"):
        extract.children(db, actors["statistician"], freeze="f1")


def test_mixed_currencies_are_refused(db: Database, actors: Actors, trial: Trial) -> None:
    dm = actors["datamanager"]
    economics.add_unit_cost(db, dm, "eur_hour", "Visit", "hour", Decimal("10"), 2023, "EUR")
    economics.add_service_use(
        db,
        actors["coord_gla"],
        trial.kids["b1"],
        "eur_hour",
        d("2024-05-01"),
        d("2024-05-02"),
        Decimal(1),
    )
    with pytest.raises(extract.MixedCurrencies, match="EUR, GBP"):
        extract.costs(db, actors["statistician"], as_of=AS_OF)


# --------------------------------------------------------------------------- the data dictionary


def test_every_frame_has_exactly_the_documented_columns(
    db: Database, actors: Actors, trial: Trial
) -> None:
    by_name = {ds.name: ds for ds in DATASETS}
    assert set(by_name) == set(FUNCTIONS)
    for as_of in (AS_OF, d("2024-01-01")):  # with rows, and empty
        for name, fn in FUNCTIONS.items():
            df = fn(db, actors["statistician"], as_of=as_of)
            ds = by_name[name]
            fixed = list(df.columns[: len(ds.columns)])
            assert fixed == list(ds.names), name
            for col in df.columns:
                assert str(df[col].dtype) == ds.dtype_of(col), (name, col, df[col].dtype)
            if ds.pattern is None:
                assert len(df.columns) == len(ds.columns), name


def test_data_dictionary_is_current() -> None:
    current = (DOCS / "analysis-datasets.md").read_text(encoding="utf-8")
    assert current == render(), (
        "docs/analysis-datasets.md is out of date: run "
        "`python -m noim.extract > docs/analysis-datasets.md`"
    )
    for ds in DATASETS:
        assert f"## `{ds.name}`" in current
        assert all(f"| `{c.name}` |" in current for c in ds.columns)


# --------------------------------------------------------------------------- set-based


@contextmanager
def counting(db: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.startswith("BEGIN"):  # SQLite's explicit BEGIN (PostgreSQL has none)
            statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", before)


def _counts(db: Database, actors: Actors) -> dict[str, int]:
    out = {}
    actor = actors["statistician"]  # resolved before counting
    for name, fn in FUNCTIONS.items():
        with counting(db) as statements:
            fn(db, actor, as_of=AS_OF)
        out[name] = len(statements)
    return out


def test_statement_count_does_not_grow_with_families(
    db: Database, actors: Actors, clock: None
) -> None:
    small_trial = build(db, actors)
    small = _counts(db, actors)
    gla = actors["coord_gla"]
    for _ in range(4):  # four more randomised families, each with events, scores, costs
        fam, (child,) = ready(db, actors, "GLA", (30,))
        randomisation.randomise(db, gla, fam)
        placements.add_placement(db, gla, child, ENTERED, "foster")
        placements.move_child(db, gla, child, d("2024-09-01"), "foster", "disruption")
        legal.record_event(db, gla, child, "sc.plan_kinship", d("2025-01-15"))
        assessments.record_assessment(
            db, actors["research_gla"], child, "baseline", "sdq", d("2024-04-20"), sdq(1)
        )
        economics.add_service_use(
            db, gla, child, "sw_hour", d("2024-05-01"), d("2024-05-31"), Decimal(1)
        )
    assert len(extract.children(db, actors["admin"], as_of=AS_OF)) == len(small_trial.kids) - 1 + 4
    assert _counts(db, actors) == small
    assert small["children"] == 7 and max(small.values()) <= 10, small  # 7: receipts
