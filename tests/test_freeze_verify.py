"""Frozen data are verifiable: a freeze changed in the database behind noim's back is caught
by ``noim freeze verify``, refused by every reader (extracts, the interim report, the
analysis scripts) and reported by ``noim audit verify``.

The attack of issue 11: swap the arms in a freeze's ``children`` dataset with raw SQL (the
append-only triggers dropped first, as someone with DDL rights could), which flips the sign
of the closed report's primary result; then the variant where the attacker also recomputes
and stores the dataset's hash and the freeze's content hash, caught by the audit row that
recorded the freeze when it was made.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text
from sqlalchemy.engine import Connection

from noim import extract
from noim.cli import noim_cli
from noim.db.audit import chain_hash
from noim.db.models import AuditLog
from noim.db.session import Database
from noim.domain.exceptions import FreezeTampered, NotFound, PermissionDenied
from noim.extract import _frozen
from noim.reports import render
from noim.services import audit, freezes
from noim.services.freezes import FreezeInfo
from tests.conftest import Actors
from tests.dbutil import drop_protection, raw
from tests.factories import SmallTrial, small_trial_start
from tests.test_analysis_scripts import run_here

READERS = ("datamanager", "statistician", "unblinded_stat", "admin")


#: a test given ``trial`` starts from a copy of the 16-family trial (built once per run)
prebuilt, db_url, trial = small_trial_start(16)
#: the modules starting from it run in one worker: it builds the trial while the other runs
#: other tests (rather than both waiting for it)
pytestmark = pytest.mark.xdist_group("small_trial_16")


def cli(db: Database, user: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(noim_cli, ["--database", db.url, "--user", user, *args])
    return result.exit_code, result.output


def swap_arms(conn: Connection, freeze_id: int) -> None:
    """Swap the two arms of every child in the stored ``children`` dataset (raw SQL)."""
    drop_protection(conn, "data_freeze_datasets")
    content, fmt = conn.execute(
        text("SELECT content, format FROM data_freeze_datasets WHERE freeze_id = :f AND name = :n"),
        {"f": freeze_id, "n": "children"},
    ).one()
    df = _frozen.decode(bytes(content), fmt)
    a, b = sorted(df["arm"].unique())
    for column in ("arm", "arm_label"):
        one, other = (df.loc[df["arm"] == code, column].iloc[0] for code in (a, b))
        df[column] = df[column].map({one: other, other: one}).astype("string")
    swapped, _sha, _rows = _frozen.encode(df)
    conn.execute(
        text("UPDATE data_freeze_datasets SET content = :c WHERE freeze_id = :f AND name = :n"),
        {"c": swapped, "f": freeze_id, "n": "children"},
    )


def rehash(conn: Connection, freeze_id: int) -> None:
    """Recompute and store the hash of every dataset and the freeze's content hash (as an
    attacker with the database would: with the freeze's salt)."""
    drop_protection(conn, "data_freezes")
    salt = conn.execute(
        text("SELECT salt FROM data_freezes WHERE id = :f"), {"f": freeze_id}
    ).scalar()
    hashes = {}
    for name, content, fmt in conn.execute(
        text("SELECT name, content, format FROM data_freeze_datasets WHERE freeze_id = :f"),
        {"f": freeze_id},
    ):
        hashes[name] = _frozen.encode(_frozen.decode(bytes(content), fmt), salt)[1]
        conn.execute(
            text("UPDATE data_freeze_datasets SET sha256 = :s WHERE freeze_id = :f AND name = :n"),
            {"s": hashes[name], "f": freeze_id, "n": name},
        )
    conn.execute(
        text("UPDATE data_freezes SET content_sha256 = :s WHERE id = :f"),
        {"s": _frozen.content_hash(hashes), "f": freeze_id},
    )


def arm_words(trial: SmallTrial) -> set[str]:
    from noim.domain.trialdef import default_definition

    words = set(trial.arms.values())
    for arm in default_definition().arms:
        words |= {arm.code, arm.name, *arm.labels.values()}
    return words


def reveals(output: str, words: set[str]) -> list[str]:
    return [
        w for w in words if re.search(rf"(?<![A-Za-z0-9]){re.escape(w)}(?![A-Za-z0-9])", output)
    ]


def assert_refused_everywhere(
    db: Database,
    actors: Actors,
    info: FreezeInfo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    why: str,
) -> None:
    """Every reader of freeze ``info`` refuses it with one line naming it and ``why``."""
    head = f"data freeze {info.id} ({info.label!r}) fails verification"
    for read in (
        lambda: extract.children(db, actors["unblinded_stat"], freeze=info.id),
        lambda: extract.scores(
            db, actors["statistician"], freeze=info.id, wide=True, respondent="birth_parent"
        ),
        lambda: extract.bundle(db, actors["statistician"], ["children", "visits"], freeze=info.id),
    ):
        with pytest.raises(FreezeTampered, match=re.escape(head)) as caught:
            read()
        assert why in str(caught.value) and "\n" not in str(caught.value)
    # the closed interim report
    with pytest.raises(FreezeTampered, match=re.escape(why)):
        render.produce(
            db, actors["dmc_chair"], closed=True, out=tmp_path / "r", freeze=str(info.id)
        )
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())
    out = tmp_path / "cli"
    code, output = cli(
        db,
        "dmc_chair",
        "report",
        "interim",
        "--closed",
        "--freeze",
        str(info.id),
        "--out",
        str(out),
    )
    assert code == 1 and output.startswith(f"error: {head}: ") and why in output, output
    assert output.count("\n") == 1 and "Traceback" not in output
    assert not out.exists() or not any(out.iterdir())
    # an analysis script: refused before it writes anything
    script = tmp_path / "03"
    with pytest.raises(SystemExit) as stopped:
        run_here(
            "03_primary.py",
            db.url,
            script,
            "unblinded_stat",
            monkeypatch,
            ("--freeze", str(info.id)),
        )
    assert str(stopped.value.code).startswith(f"error: {head}: ") and why in str(stopped.value.code)
    assert not script.exists() or not any(script.iterdir())


# --------------------------------------------------------------------------- intact


def test_an_untouched_freeze_verifies(db: Database, actors: Actors, trial: SmallTrial) -> None:
    info = freezes.create_freeze(db, actors["datamanager"], label="DMC 1")
    for who in READERS:  # blinded roles too: verifying names datasets, never a value
        check = freezes.verify(db, actors[who], info.id)
        assert check.ok and check.problems == ()
        assert {d.name for d in check.datasets} == set(freezes.DATASET_NAMES)
        assert all(d.ok for d in check.datasets)
        assert check.content_sha256 == info.content_sha256 and check.audit_seq is not None
    for who in ("coord_gla", "research_gla", "dmc_chair"):
        with pytest.raises(PermissionDenied):
            freezes.verify(db, actors[who], info.id)
    with pytest.raises(NotFound, match="freeze 999"):
        freezes.verify(db, actors["admin"], 999)

    code, output = cli(db, "statistician", "freeze", "verify", str(info.id))
    assert code == 0, output
    assert f"Freeze {info.id} 'DMC 1' intact: {len(freezes.DATASET_NAMES)} datasets" in output
    assert info.content_sha256 in output
    code, output = cli(db, "datamanager", "freeze", "verify", str(info.id), "--json")
    got = json.loads(output)
    assert code == 0 and got["ok"] is True and got["problems"] == []
    assert got["freeze_id"] == info.id and len(got["datasets"]) == len(freezes.DATASET_NAMES)

    result = audit.verify(db, actors["datamanager"])
    assert result.ok and result.freezes is not None and [f.ok for f in result.freezes] == [True]
    code, output = cli(db, "datamanager", "audit", "verify")
    assert code == 0 and "data freezes intact: 1 match their hashes and the audit trail" in output
    code, output = cli(db, "datamanager", "audit", "verify", "--json")
    assert code == 0 and json.loads(output)["freezes"] == {"ok": True, "checked": 1, "failed": []}
    assert audit.verify(db, actors["datamanager"], check_data=False).freezes is None


# --------------------------------------------------------------------------- the attacks


def test_swapped_arms_in_a_frozen_children_dataset_are_caught_and_refused(
    db: Database,
    db_url: str,
    actors: Actors,
    trial: SmallTrial,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    info = freezes.create_freeze(db, actors["datamanager"], label="DMC 1")
    other = freezes.create_freeze(db, actors["datamanager"], label="DMC 2")
    before = extract.children(db, actors["unblinded_stat"], freeze=info.id)
    with raw(db_url) as conn:
        swap_arms(conn, info.id)
    with raw(db_url) as conn:  # the attack worked: the stored arms are swapped
        (content,) = conn.execute(
            text("SELECT content FROM data_freeze_datasets WHERE freeze_id = :f AND name = :n"),
            {"f": info.id, "n": "children"},
        ).one()
    stored = _frozen.decode(bytes(content))
    assert (stored["arm"] != before["arm"]).all() and len(set(stored["arm"])) == 2

    why = "dataset children does not match the hash recorded when the freeze was made"
    check = freezes.verify(db, actors["admin"], info.id)
    assert not check.ok and check.problems == (why,)
    assert [d.name for d in check.datasets if not d.ok] == ["children"]
    assert freezes.verify(db, actors["admin"], other.id).ok  # the other freeze is intact
    assert not freezes.verify_freeze(db, actors["admin"], info.id)

    words = arm_words(trial)
    for who in ("statistician", "datamanager"):  # blinded: told which dataset, never a value
        code, output = cli(db, who, "freeze", "verify", str(info.id))
        assert code == 1 and f"FREEZE {info.id} 'DMC 1' FAILS VERIFICATION" in output
        assert why in output and reveals(output, words) == [], output
        code, output = cli(db, who, "freeze", "verify", str(info.id), "--json")
        assert code == 1 and json.loads(output)["ok"] is False and reveals(output, words) == []

    assert_refused_everywhere(db, actors, info, tmp_path, monkeypatch, why)
    assert len(extract.children(db, actors["unblinded_stat"], freeze=other.id)) == len(before)

    result = audit.verify(db, actors["datamanager"])
    assert not result.ok and result.chain.ok and result.data is not None and result.data.ok
    assert [(f.freeze_id, f.ok) for f in result.freezes or ()] == [
        (info.id, False),
        (other.id, True),
    ]
    code, output = cli(db, "datamanager", "audit", "verify")
    assert code == 1 and "DATA FREEZES FAIL VERIFICATION: 1 of 2" in output
    assert f"data freeze {info.id} ('DMC 1'): {why}" in output and reveals(output, words) == []
    got = json.loads(cli(db, "datamanager", "audit", "verify", "--json")[1])["freezes"]
    assert got == {
        "ok": False,
        "checked": 2,
        "failed": [{"id": info.id, "label": "DMC 1", "problems": [why]}],
    }


def test_recomputed_hashes_are_caught_by_the_audit_trail(
    db: Database,
    db_url: str,
    actors: Actors,
    trial: SmallTrial,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The attacker swaps the arms and stores the new dataset hash and content hash too:
    the freeze is consistent with itself, but not with the audit row of its creation."""
    info = freezes.create_freeze(db, actors["datamanager"], label="DMC 1")
    with raw(db_url) as conn:
        swap_arms(conn, info.id)
        rehash(conn, info.id)
    assert freezes.show_freeze(db, actors["admin"], info.id).content_sha256 != info.content_sha256

    why = "its datasets do not hash to the content hash the audit trail recorded when it was made"
    check = freezes.verify(db, actors["admin"], info.id)
    assert not check.ok and len(check.problems) == 1 and check.problems[0].startswith(why)
    assert all(d.ok for d in check.datasets)  # each dataset matches its (rewritten) hash
    code, output = cli(db, "statistician", "freeze", "verify", str(info.id))
    assert code == 1 and why in output

    assert_refused_everywhere(db, actors, info, tmp_path, monkeypatch, why)

    result = audit.verify(db, actors["datamanager"])
    assert not result.ok and result.chain.ok
    assert result.data is not None and any(
        f"data_freezes row {info.id} field content_sha256 differs" in p
        for p in result.data.problems
    )
    code, output = cli(db, "datamanager", "audit", "verify")
    assert code == 1 and "DATA FREEZES FAIL VERIFICATION: 1 of 1" in output and why in output


def test_a_rewritten_audit_row_of_the_freeze_is_caught(
    db: Database, db_url: str, actors: Actors, trial: SmallTrial
) -> None:
    """The attacker also rewrites the audit row that recorded the freeze (and its hash):
    it no longer links to the next row of the chain."""
    info = freezes.create_freeze(db, actors["datamanager"], label="DMC 1")
    freezes.create_freeze(db, actors["datamanager"], label="DMC 2")  # rows after it
    with raw(db_url) as conn:
        swap_arms(conn, info.id)
        rehash(conn, info.id)
        sha = conn.execute(
            text("SELECT content_sha256 FROM data_freezes WHERE id = :f"), {"f": info.id}
        ).scalar_one()
        log = AuditLog.__table__
        row = (
            conn.execute(
                select(log).where(
                    log.c.table_name == "data_freezes",
                    log.c.row_key == str(info.id),
                    log.c.action == "insert",
                )
            )
            .mappings()
            .one()
        )
        values = json.loads(row["new_value"])
        values["content_sha256"] = sha
        forged = dict(row, new_value=json.dumps(values, sort_keys=True, separators=(",", ":")))
        drop_protection(conn, "audit_log")
        conn.execute(
            text("UPDATE audit_log SET new_value = :v, hash = :h WHERE seq = :s"),
            {"v": forged["new_value"], "h": chain_hash(row["prev_hash"], forged), "s": row["seq"]},
        )
    check = freezes.verify(db, actors["admin"], info.id)
    assert check.problems == (
        f"audit row {row['seq']}, which recorded it, no longer links to the rest of the hash "
        "chain (run `noim audit verify`)",
    )
    with pytest.raises(FreezeTampered, match="no longer links"):
        extract.children(db, actors["unblinded_stat"], freeze=info.id)
    result = audit.verify(db, actors["datamanager"])
    assert not result.chain.ok and result.chain.first_bad_seq == row["seq"] + 1
    assert not result.ok
