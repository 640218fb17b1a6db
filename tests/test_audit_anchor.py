"""`noim audit anchor` and `noim audit verify --anchor`: a history rewritten consistently
(every hash and the head recomputed) verifies on its own but not against an anchor kept
outside the database (issue 11, point 10)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select, text

from noim.db.audit import GENESIS_HASH, chain_hash
from noim.db.models import AuditLog
from noim.db.session import Database
from noim.domain.exceptions import PermissionDenied, ValidationError
from noim.services import anchors, audit, families
from tests.conftest import Actors
from tests.dbutil import drop_protection, raw
from tests.factories import family_with_children
from tests.test_cli import run


def _verify(db_url: str, *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    result = run("--database", db_url, "--user", "datamanager", "audit", "verify", *args)
    return result.exit_code, json.loads(result.output) if "--json" in args else {}


def rewrite_history(db_url: str, seq: int, user_name: str) -> None:
    """What someone with full database access can do: credit audit row ``seq`` to another
    user, then recompute every hash after it and the head so the chain verifies."""
    with raw(db_url) as conn:
        drop_protection(conn, "audit_log")
        conn.execute(
            text("UPDATE audit_log SET user_name = :u WHERE seq = :s"), {"u": user_name, "s": seq}
        )
        log = AuditLog.__table__
        rows = conn.execute(select(log).order_by(log.c.seq)).mappings().all()  # type: ignore[attr-defined]
        prev = GENESIS_HASH
        for row in rows:
            if row["seq"] >= seq:
                new = chain_hash(prev, row)
                conn.execute(
                    text("UPDATE audit_log SET prev_hash = :p, hash = :h WHERE seq = :s"),
                    {"p": prev, "h": new, "s": row["seq"]},
                )
                prev = new
            else:
                prev = row["hash"]
        conn.execute(
            text("UPDATE audit_head SET last_seq = :s, last_hash = :h"),
            {"s": rows[-1]["seq"], "h": prev},
        )


def _anchor(db_url: str, out: Path) -> dict:  # type: ignore[type-arg]
    result = run(
        "--database", db_url, "--user", "datamanager", "audit", "anchor", "--out", str(out)
    )
    assert result.exit_code == 0, result.output + result.stderr
    assert f"in {out}" in result.output
    return json.loads(out.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_anchor_then_more_rows_verifies(
    db: Database, db_url: str, actors: Actors, tmp_path: Path
) -> None:
    family_with_children(db, actors["coord_gla"], "GLA", (10, 30))
    anchor = _anchor(db_url, tmp_path / "anchor.json")
    assert anchor["format"] == anchors.FORMAT and anchor["trial"] == "BEST"
    assert anchor["seq"] == audit.verify(db, actors["admin"]).chain.rows > 0
    assert anchor["anchored_by"] == "datamanager" and anchor["recorded_at"]
    assert "noim_test" not in anchor["database"]  # no user, no password
    family_with_children(db, actors["coord_cro"], "CRO", (5,))  # history goes on
    code, report = _verify(db_url, "--anchor", str(tmp_path / "anchor.json"), "--json")
    assert code == 0 and report["ok"] and report["anchor"]["ok"]
    assert report["chain"]["rows"] > anchor["seq"] == report["anchor"]["seq"]
    # an anchor is never overwritten
    again = run(
        "--database", db_url, "--user", "datamanager", "audit", "anchor", "--out",
        str(tmp_path / "anchor.json"),
    )  # fmt: skip
    assert again.exit_code == 1 and "anchors are never overwritten" in again.stderr
    # without --out the anchor goes to standard output
    printed = run("--database", db_url, "--user", "admin", "audit", "anchor")
    assert printed.exit_code == 0 and json.loads(printed.output)["seq"] > anchor["seq"]


def test_a_consistently_rewritten_history_fails_only_against_the_anchor(
    db: Database, db_url: str, actors: Actors, tmp_path: Path
) -> None:
    fam = family_with_children(db, actors["coord_gla"], "GLA", (10, 30))
    anchor_file = tmp_path / "anchor.json"
    anchor = _anchor(db_url, anchor_file)
    families.correct_child(
        db, actors["coord_gla"], fam.children[0].trial_id, {"sex": "male"}, reason="x"
    )
    rewrite_history(db_url, 3, "coord_cro")  # row 3 now credited to another coordinator
    code, plain = _verify(db_url, "--json")
    assert code == 0 and plain["ok"], plain  # the rewrite is consistent: verify alone is fooled
    code, report = _verify(db_url, "--anchor", str(anchor_file), "--json")
    assert code == 1 and not report["ok"] and report["chain"]["ok"] and report["data"]["ok"]
    problem = report["anchor"]["problem"]
    assert f"audit row {anchor['seq']} has hash" in problem
    assert f"up to row {anchor['seq']} was rewritten" in problem
    assert anchor["anchored_at"] in problem
    text_out = run(
        "--database", db_url, "--user", "datamanager", "audit", "verify", "--chain-only",
        "--anchor", str(anchor_file),
    )  # fmt: skip
    assert text_out.exit_code == 1
    assert f"ANCHOR {anchor_file} NOT MATCHED" in text_out.output


def test_rows_cut_back_to_before_the_anchor_are_found(
    db: Database, db_url: str, actors: Actors
) -> None:
    family_with_children(db, actors["coord_gla"], "GLA", (10,))
    anchor = anchors.take(db, actors["datamanager"])
    with raw(db_url) as conn:  # remove the last row and move the head back, consistently
        drop_protection(conn, "audit_log")
        prev = conn.execute(
            text("SELECT hash FROM audit_log WHERE seq = :s"), {"s": anchor.seq - 1}
        ).scalar_one()
        conn.execute(text("DELETE FROM audit_log WHERE seq = :s"), {"s": anchor.seq})
        conn.execute(
            text("UPDATE audit_head SET last_seq = :s, last_hash = :h"),
            {"s": anchor.seq - 1, "h": prev},
        )
    result = audit.verify(db, actors["datamanager"], check_data=False, anchor=anchor)
    assert result.chain.ok and not result.ok and result.anchor is not None
    assert "rows up to the anchor were removed" in (result.anchor.problem or "")


def test_an_anchor_of_another_trial_or_a_malformed_one_is_refused(
    db: Database, db_url: str, actors: Actors, tmp_path: Path
) -> None:
    anchor = anchors.take(db, actors["admin"])
    other = anchors.Anchor(**{**anchor.__dict__, "trial": "OTHER"})
    result = audit.verify(db, actors["admin"], check_data=False, anchor=other)
    assert not result.ok and "the anchor is of trial OTHER" in (result.anchor.problem or "")  # type: ignore[union-attr]
    bad = json.loads(anchor.to_json())
    bad["hash"] = "not a hash"
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(bad), encoding="utf-8")
    out = run("--database", db_url, "--user", "admin", "audit", "verify", "--anchor", str(f))
    assert out.exit_code == 1
    assert f"anchor {f}, field hash: got 'not a hash'; expected 64 lower-case" in out.stderr
    f.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ValidationError, match="field format"):
        anchors.parse(f.read_text(), str(f))
    f.write_text("{", encoding="utf-8")
    with pytest.raises(ValidationError, match="the JSON `noim audit anchor` writes"):
        anchors.parse(f.read_text(), str(f))


def test_who_may_anchor_and_no_anchor_of_a_broken_chain(
    db: Database, db_url: str, actors: Actors
) -> None:
    with pytest.raises(PermissionDenied, match="may not anchor the audit trail"):
        anchors.take(db, actors["coord_gla"])
    assert anchors.take(db, actors["datamanager"]).seq > 0  # the roles that read the trail
    with raw(db_url) as conn:
        drop_protection(conn, "audit_log")
        conn.execute(text("UPDATE audit_log SET user_name = 'mallory' WHERE seq = 2"))
    with pytest.raises(ValidationError, match="an intact chain to anchor"):
        anchors.take(db, actors["admin"])
    # an anchor taken before the break cannot be checked past it
    result = audit.verify(
        db, actors["admin"], check_data=False, anchor=anchors.Anchor(
            trial="BEST", seq=5, hash="0" * 64, recorded_at=None, anchored_at="t",
            anchored_by="admin", database="db",
        )
    )  # fmt: skip
    assert not result.ok and "the anchor cannot be checked" in (result.anchor.problem or "")  # type: ignore[union-attr]
