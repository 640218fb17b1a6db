"""Data freezes: a consistent hashed snapshot of the analysis datasets, read back by extract."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest
from sqlalchemy import text

from noim import extract
from noim.db import migrate
from noim.db.session import Database
from noim.domain.exceptions import NotFound, PermissionDenied, ValidationError
from noim.extract import FreezeNotSupported, _frozen
from noim.services import assessments, consent, freezes
from tests import test_extract
from tests.conftest import Actors
from tests.test_extract import Trial, build, clock, sdq  # noqa: F401  (fixture)

# the tests given ``trial`` start from a copy of test_extract's trial, built once per worker
prebuilt, db_url, trial = test_extract.prebuilt, test_extract.db_url, test_extract.trial

ANALYSTS = ("statistician", "unblinded_stat", "admin")
LIVE = {
    "children": lambda db, a, **k: extract.children(db, a, **k),
    "permanence": lambda db, a, **k: extract.permanence(db, a, **k),
    "scores": lambda db, a, **k: extract.scores(db, a, **k),
    "scores_wide": lambda db, a, **k: extract.scores(db, a, wide=True, **k),
    "scores_wide_bp": lambda db, a, **k: extract.scores(
        db, a, wide=True, respondent="birth_parent", **k
    ),
    "placements": lambda db, a, **k: extract.placements(db, a, **k),
    "reentries": lambda db, a, **k: extract.reentries(db, a, **k),
    "costs": lambda db, a, **k: extract.costs(db, a, **k),
    "screening": lambda db, a, **k: extract.screening(db, a, **k),
    "visits": lambda db, a, **k: extract.visits(db, a, **k),
    "queries": lambda db, a, **k: extract.queries(db, a, **k),
    "saes": lambda db, a, **k: extract.saes(db, a, **k),
    "deviations": lambda db, a, **k: extract.deviations(db, a, **k),
    "exits": lambda db, a, **k: extract.exits(db, a, **k),
}


def test_a_freeze_reads_back_as_the_live_extraction_of_its_day(
    db: Database, actors: Actors, trial: Trial
) -> None:
    info = freezes.create_freeze(db, actors["datamanager"], label="DMC 1")
    assert info.label == "DMC 1" and info.created_by == "datamanager"
    assert len(info.content_sha256) == 64 and info.audit_seq > 0
    assert info.schema_revision == migrate.head()
    assert info.row_counts["children"] == 6 and info.row_counts["permanence"] == 5
    assert {d.name for d in info.datasets} == set(freezes.DATASET_NAMES)
    for who in ANALYSTS:
        actor = actors[who]
        for name, fn in LIVE.items():
            live = fn(db, actor, as_of=info.as_of)
            frozen = fn(db, actor, freeze=info.id)
            pd.testing.assert_frame_equal(frozen, live, check_exact=True, obj=f"{who} {name}")
            assert list(frozen.dtypes) == list(live.dtypes)


def test_data_changed_after_the_freeze_do_not_change_it(
    db: Database, actors: Actors, trial: Trial
) -> None:
    info = freezes.create_freeze(db, actors["admin"])
    stat = actors["unblinded_stat"]
    before = {n: fn(db, stat, freeze=info.id) for n, fn in LIVE.items()}
    a1, c1 = trial.kids["a1"], trial.kids["c1"]
    assessments.record_assessment(db, actors["research_gla"], a1, "15m", "sdq", info.as_of, sdq(2))
    consent.record_withdrawal(db, actors["coord_cro"], c1, info.as_of, "data", "carer", "asked")
    live = extract.scores(db, stat, as_of=info.as_of)
    assert len(live) != len(before["scores"])
    assert c1 not in set(extract.permanence(db, stat, as_of=info.as_of)["child_id"])
    for name, fn in LIVE.items():
        again = fn(db, stat, freeze=info.id)
        pd.testing.assert_frame_equal(again, before[name], check_exact=True)
        assert again.to_csv(index=False) == before[name].to_csv(index=False)  # byte-identical
    assert c1 in set(before["permanence"]["child_id"])
    # the content hash is stable: the stored data still hash to it, and a new freeze differs
    assert freezes.verify_freeze(db, stat, info.id)
    assert freezes.show_freeze(db, stat, info.id).content_sha256 == info.content_sha256
    later = freezes.create_freeze(db, actors["admin"], label="after")
    assert later.content_sha256 != info.content_sha256
    assert [f.id for f in freezes.list_freezes(db, stat)] == [info.id, later.id]


def test_blinded_roles_get_the_masked_codes_from_a_freeze(
    db: Database, actors: Actors, trial: Trial
) -> None:
    info = freezes.create_freeze(db, actors["datamanager"])
    blind = extract.children(db, actors["statistician"], freeze=info.id)
    live = extract.children(db, actors["statistician"], as_of=info.as_of)
    assert blind["arm_masked"].all() and blind["arm_label"].isna().all()
    assert list(blind["arm"]) == list(live["arm"])
    assert not set(blind["arm"]) & set(trial.arms.values())
    open_ = extract.children(db, actors["unblinded_stat"], freeze=info.id)
    assert list(open_["arm"]) == [trial.arms[f] for f in open_["family_id"]]


def test_the_encoding_is_canonical(db: Database, actors: Actors, trial: Trial) -> None:
    info = freezes.create_freeze(db, actors["admin"])
    df = extract.scores(db, actors["admin"], freeze=info.id, wide=True)
    one, sha, rows = _frozen.encode(df)
    assert _frozen.encode(_frozen.decode(one)) == (one, sha, rows)
    pd.testing.assert_frame_equal(_frozen.decode(one), df, check_exact=True)


def test_who_may_freeze_and_read(db: Database, actors: Actors, trial: Trial) -> None:
    for who in ("coord_gla", "research_gla", "statistician", "dmc_chair"):
        with pytest.raises(PermissionDenied, match="freeze_data"):
            freezes.create_freeze(db, actors[who])
    info = freezes.create_freeze(db, actors["datamanager"])
    for who in ("coord_gla", "dmc_chair", "datamanager"):
        with pytest.raises(PermissionDenied, match="analyse"):
            extract.children(db, actors[who], freeze=info.id)
    with pytest.raises(PermissionDenied):
        freezes.list_freezes(db, actors["coord_gla"])
    with pytest.raises(NotFound, match="freeze 999"):
        extract.children(db, actors["admin"], freeze=999)
    with pytest.raises(FreezeNotSupported, match="one of freeze= or as_of="):
        extract.children(db, actors["admin"], freeze=info.id, as_of=date(2025, 1, 1))


def test_freezes_are_never_rewritten(db: Database, actors: Actors, trial: Trial) -> None:
    info = freezes.create_freeze(db, actors["admin"])
    for sql in (
        f"UPDATE data_freezes SET label = 'x' WHERE id = {info.id}",
        f"DELETE FROM data_freezes WHERE id = {info.id}",
        f"UPDATE data_freeze_datasets SET rows = 0 WHERE freeze_id = {info.id}",
        f"DELETE FROM data_freeze_datasets WHERE freeze_id = {info.id}",
    ):
        with pytest.raises(Exception, match="not allowed"), db.engine.begin() as conn:
            conn.execute(text(sql))
    assert freezes.verify_freeze(db, actors["admin"], info.id)


# --------------------------------------------------------------------------- the commands


def test_freeze_commands(db_url: str, db: Database, actors: Actors, trial: Trial) -> None:
    from tests.test_cli import run

    dm = ("--database", db_url, "--user", "datamanager")
    made = run(*dm, "freeze", "create", "--label", "DMC 1", "--json")
    assert made.exit_code == 0, made.stderr
    info = json.loads(made.output)
    assert info["label"] == "DMC 1" and info["row_counts"]["children"] == 6
    text = run(*dm, "freeze", "create")
    assert text.exit_code == 0 and "Freeze 2 " in text.output and "sha256 " in text.output
    listed = json.loads(run(*dm, "freeze", "list", "--json").output)
    assert [f["id"] for f in listed] == [info["id"], info["id"] + 1]
    assert "DMC 1" in run(*dm, "freeze", "list").output
    shown = json.loads(run(*dm, "freeze", "show", str(info["id"]), "--json").output)
    assert shown["content_sha256"] == info["content_sha256"]
    assert {d["name"] for d in shown["datasets"]} == set(freezes.DATASET_NAMES)
    table = run(*dm, "freeze", "show", str(info["id"]))
    assert "permanence" in table.output and info["content_sha256"] in table.output
    missing = run(*dm, "freeze", "show", "99")
    assert missing.exit_code != 0 and missing.stderr.startswith("error: data freeze 99")
    refused = run("--database", db_url, "--user", "coord_gla", "freeze", "create")
    assert refused.exit_code != 0 and "freeze_data" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_too_long_label_is_refused_and_nothing_is_written(
    db: Database, actors: Actors, trial: Trial
) -> None:
    with pytest.raises(ValidationError) as caught:
        freezes.create_freeze(db, actors["admin"], label="x" * 129)
    assert [p.rule for p in caught.value.problems] == ["FRZ-001"]
    assert freezes.list_freezes(db, actors["admin"]) == []


def test_operational_datasets_site_scope_and_no_arm(
    db: Database, actors: Actors, trial: Trial
) -> None:
    """The operational datasets carry no arm; read back for a site-scoped reader they keep
    its sites' rows only (trial-wide queries, without a site, are no site's)."""
    from noim.extract.operations import OPERATIONAL, OPERATIONAL_NAMES
    from noim.services import queries, safety

    kid = trial.kids["a1"]
    safety.add_sae(
        db, actors["coord_gla"], kid, date(2024, 6, 1), date(2024, 6, 2), "hospitalisation", "x"
    )
    queries.raise_query(db, actors["datamanager"], "children", kid, "Please check the sex")
    info = freezes.create_freeze(db, actors["admin"])
    got = _frozen.load(db, actors["admin"], info.id, [*OPERATIONAL_NAMES, "allocations"])
    for ds in OPERATIONAL:
        frame = got[ds.name]
        assert list(frame.columns) == list(ds.names), ds.name
        assert [str(t) for t in frame.dtypes] == [c.dtype for c in ds.columns], ds.name
        assert "arm" not in frame.columns and "site" in frame.columns
    assert len(got["saes"]) == 1 and len(got["queries"]) == 1 and len(got["visits"])
    assert set(got["visits"]["site"]) == {"GLA", "CRO"}
    for who, site in (("coord_gla", "GLA"), ("coord_cro", "CRO")):
        actor = actors[who]
        assert not actor.all_sites
        for name in OPERATIONAL_NAMES:
            mine = _frozen.for_reader(got[name], actor, got["allocations"])
            whole = got[name]
            assert set(mine["site"].dropna()) <= {site}, (who, name)
            assert len(mine) == int((whole["site"] == site).fillna(False).sum()), (who, name)
