"""Data queries: raised by hand, answered, resolved, closed, reopened; site scope, blinding, CLI."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from noim.db.base import utcnow
from noim.db.models import AuditLog, DataQuery
from noim.db.session import Database
from noim.domain.exceptions import NotFound, PermissionDenied, ValidationError
from noim.services import audit, queries
from tests.conftest import Actors
from tests.factories import family_with_children
from tests.test_cli import run


@pytest.fixture
def glasgow_child(db: Database, actors: Actors) -> str:
    return family_with_children(db, actors["coord_gla"], "GLA", (12,)).children[0].trial_id


def _raise(db: Database, actors: Actors, child: str, who: str = "datamanager") -> int:
    q = queries.raise_query(
        db, actors[who], "children", child, "Please check the date of birth", "date_of_birth"
    )
    return q.id


def test_raise_on_a_child_by_trial_id(db: Database, actors: Actors, glasgow_child: str) -> None:
    q = queries.raise_query(
        db, actors["coord_gla"], "children", glasgow_child, "Is this right?", "date_of_birth"
    )
    assert (q.site, q.table, q.field, q.status, q.trial_id) == (
        "GLA",
        "children",
        "date_of_birth",
        "open",
        glasgow_child,
    )
    assert q.row_key.isdigit() and q.raised_by == "coord_gla" and q.rule is None
    assert q.age_days == 0 and q.idle_days == 0 and q.messages == ()
    # the same record by its number, and a whole family
    same = queries.raise_query(db, actors["datamanager"], "children", q.row_key, "And the sex?")
    assert same.trial_id == glasgow_child and same.field is None
    (family_id,) = _families(db, actors)
    on_family = queries.raise_query(db, actors["datamanager"], "families", family_id, "LA?")
    assert on_family.trial_id == family_id and on_family.site == "GLA"


def _families(db: Database, actors: Actors) -> list[str]:
    from noim.services import families

    return [f.trial_id for f in families.list_families(db, actors["admin"])]


@pytest.mark.parametrize(
    ("table", "key", "field", "message", "rule"),
    [
        ("nonsense", "1", None, "x", "QRY-003"),
        ("users", "1", None, "x", "QRY-003"),
        ("child_identities", "1", None, "x", "QRY-003"),
        ("children", "9999", None, "x", "QRY-004"),
        ("children", "G-9999-01-X", None, "x", "QRY-004"),
        ("children", "CHILD", "date_of_birth", "  ", "QRY-002"),
        ("children", "CHILD", "shoe_size", "x", "QRY-005"),
    ],
)
def test_raise_refuses_what_does_not_exist(
    db: Database,
    actors: Actors,
    glasgow_child: str,
    table: str,
    key: str,
    field: str | None,
    message: str,
    rule: str,
) -> None:
    key = glasgow_child if key == "CHILD" else key
    with pytest.raises(ValidationError) as info:
        queries.raise_query(db, actors["datamanager"], table, key, message, field)
    assert [p.rule for p in info.value.problems] == [rule]
    with db.read() as s:
        assert s.scalars(select(DataQuery)).all() == []


def test_the_whole_workflow(db: Database, actors: Actors, glasgow_child: str) -> None:
    dm, coord = actors["datamanager"], actors["coord_gla"]
    qid = _raise(db, actors, glasgow_child)
    assert (
        queries.respond(db, coord, qid, "Checked: the birth certificate agrees").status
        == "answered"
    )
    assert queries.resolve(db, dm, qid, "Thanks, accepted").status == "resolved"
    closed = queries.close(db, dm, qid)
    assert closed.status == "closed" and closed.closed_at is not None
    reopened = queries.reopen(db, dm, qid, "The LA sent a different date")
    assert reopened.status == "open" and reopened.closed_at is None
    shown = queries.get_query(db, dm, qid)
    assert [(m.author, m.status_to) for m in shown.messages] == [
        ("coord_gla", "answered"),
        ("datamanager", "resolved"),
        ("datamanager", "closed"),
        ("datamanager", "open"),
    ]
    assert shown.messages[0].body == "Checked: the birth certificate agrees"
    # every change is audited, and the trail still verifies
    with db.read() as s:
        fields = set(
            s.scalars(
                select(AuditLog.field).where(
                    AuditLog.table_name == "data_queries", AuditLog.row_key == str(qid)
                )
            )
        )
        assert {"status", "closed_at"} <= fields
        assert s.scalars(
            select(AuditLog.seq).where(AuditLog.table_name == "data_query_messages")
        ).all()
    assert audit.verify(db, actors["admin"]).ok
    # resolving straight from open, and closing with a comment
    other = _raise(db, actors, glasgow_child)
    queries.resolve(db, dm, other, "Raised in error")
    assert queries.close(db, dm, other, "done").messages[-1].body == "done"


@pytest.mark.parametrize(
    ("action", "status", "allowed"),
    [
        ("respond", "answered", "open"),
        ("close", "answered", "resolved"),
        ("reopen", "answered", "resolved or closed"),
        ("resolve", "closed", "open or answered"),
        ("respond", "closed", "open"),
    ],
)
def test_illegal_transitions_are_refused(
    db: Database, actors: Actors, glasgow_child: str, action: str, status: str, allowed: str
) -> None:
    dm, coord = actors["datamanager"], actors["coord_gla"]
    qid = _raise(db, actors, glasgow_child)
    queries.respond(db, coord, qid, "answer")
    if status == "closed":
        queries.resolve(db, dm, qid, "ok")
        queries.close(db, dm, qid)
    who = coord if action == "respond" else dm
    with pytest.raises(ValidationError) as info:
        getattr(queries, action)(db, who, qid, "again")
    (p,) = info.value.problems
    assert (p.rule, p.field, p.value) == ("QRY-001", "status", status)
    assert f"a query whose status is {allowed} to {action} it" in p.expected
    assert queries.get_query(db, dm, qid).status == status


def test_who_may_do_what(db: Database, actors: Actors, glasgow_child: str) -> None:
    qid = _raise(db, actors, glasgow_child)
    for who in ("datamanager", "statistician"):
        with pytest.raises(PermissionDenied):
            queries.respond(db, actors[who], qid, "x")
    for who in ("coord_gla", "research_gla", "statistician"):
        with pytest.raises(PermissionDenied):
            queries.resolve(db, actors[who], qid, "x")
    with pytest.raises(PermissionDenied):
        queries.raise_query(db, actors["research_gla"], "children", glasgow_child, "x")
    # a researcher of the site is site staff and may answer
    assert queries.respond(db, actors["research_gla"], qid, "seen the form").status == "answered"
    assert queries.resolve(db, actors["admin"], qid, "ok").status == "resolved"
    with pytest.raises(PermissionDenied):
        queries.close(db, actors["coord_gla"], qid)
    with pytest.raises(NotFound):
        queries.get_query(db, actors["datamanager"], 999)


def test_other_sites_cannot_read_answer_or_raise(
    db: Database, actors: Actors, glasgow_child: str
) -> None:
    qid = _raise(db, actors, glasgow_child)
    cro = family_with_children(db, actors["coord_cro"], "CRO", (4,)).children[0].trial_id
    cro_q = _raise(db, actors, cro)
    for who in ("coord_cro", "research_cro"):
        with pytest.raises(PermissionDenied, match="at site 'GLA'"):
            queries.get_query(db, actors[who], qid)
        with pytest.raises(PermissionDenied, match="at site 'GLA'"):
            queries.respond(db, actors[who], qid, "not ours")
        assert [q.id for q in queries.list_queries(db, actors[who])] == [cro_q]
        with pytest.raises(PermissionDenied):
            queries.list_queries(db, actors[who], site="GLA")
    with pytest.raises(PermissionDenied, match="at site 'GLA'"):
        queries.raise_query(db, actors["coord_cro"], "children", glasgow_child, "x")
    assert {q.id for q in queries.list_queries(db, actors["datamanager"])} == {qid, cro_q}
    assert queries.get_query(db, actors["coord_gla"], qid).id == qid


def test_list_filters_and_ageing(db: Database, actors: Actors, glasgow_child: str) -> None:
    dm = actors["datamanager"]
    first = _raise(db, actors, glasgow_child)
    second = _raise(db, actors, glasgow_child)
    queries.respond(db, actors["coord_gla"], second, "done")
    later = utcnow().date() + timedelta(days=10)
    rows = queries.list_queries(db, dm, today=later)
    assert [r.id for r in rows] == [first, second]  # oldest first
    assert [(r.age_days, r.idle_days) for r in rows] == [(10, 10), (10, 10)]
    assert [r.id for r in queries.list_queries(db, dm, statuses=["answered"])] == [second]
    assert queries.list_queries(db, dm, site="CRO") == []
    assert queries.list_queries(db, dm, rule="CHD-011") == []
    with pytest.raises(ValidationError, match="QRY-006"):
        queries.list_queries(db, dm, statuses=["pending"])


def test_blinded_roles_never_see_an_arm_in_a_query(
    db: Database, actors: Actors, glasgow_child: str
) -> None:
    q = queries.raise_query(
        db, actors["coord_gla"], "children", glasgow_child, "Allocated to NIM (GIFT): check visits"
    )
    queries.respond(db, actors["coord_gla"], q.id, "the nim team saw the child")
    for who in ("datamanager", "research_gla", "statistician"):
        seen = queries.get_query(db, actors[who], q.id)
        text = seen.message + " ".join(m.body for m in seen.messages)
        assert "NIM" not in text.upper().replace("[ARM MASKED]", "")
        assert "GIFT" not in text and "[arm masked]" in seen.message
    assert "NIM (GIFT)" in queries.get_query(db, actors["coord_gla"], q.id).message


# --------------------------------------------------------------------------- the commands


def test_queries_commands(db_url: str, db: Database, actors: Actors, glasgow_child: str) -> None:
    dm = ("--database", db_url, "--user", "datamanager")
    coord = ("--database", db_url, "--user", "coord_gla")
    raised = run(
        *dm,
        "queries",
        "raise",
        "--table",
        "children",
        "--key",
        glasgow_child,
        "--field",
        "sex",
        "--message",
        "Please confirm",
        "--json",
    )
    assert raised.exit_code == 0, raised.stderr
    qid = str(json.loads(raised.output)["id"])
    answered = run(*coord, "queries", "respond", qid, "--message", "Confirmed")
    assert answered.exit_code == 0 and "now answered" in answered.output
    again = run(*coord, "queries", "respond", qid, "--message", "Again")
    assert again.exit_code == 1 and again.stderr.startswith("error: ") and "QRY-001" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    assert run(*dm, "queries", "resolve", qid, "--message", "ok").exit_code == 0
    assert run(*dm, "queries", "close", qid).exit_code == 0
    assert run(*dm, "queries", "reopen", qid, "--message", "again").exit_code == 0
    listed = json.loads(run(*dm, "queries", "list", "--status", "open,answered", "--json").output)
    assert [r["id"] for r in listed] == [int(qid)] and listed[0]["age_days"] == 0
    shown = run(*dm, "queries", "show", qid)
    assert shown.exit_code == 0 and "Confirmed" in shown.output and "-> closed" in shown.output
    table = run(*dm, "queries", "list")
    assert table.exit_code == 0 and "Data queries (1)" in table.output
    refused = run("--database", db_url, "--user", "coord_cro", "queries", "show", qid)
    assert refused.exit_code == 1 and "at site 'GLA'" in refused.stderr


def test_check_and_rules_commands(db_url: str, db: Database, glasgow_child: str) -> None:
    result = run("--database", db_url, "--user", "datamanager", "check", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.output)
    assert {r["rule"] for r in report["rules"]} >= {"PLC-010", "CHD-011", "ASM-011"}
    assert report["violations"] == 0 and report["opened"] == 0
    assert set(report["rules"][0]) == {
        "rule",
        "severity",
        "description",
        "violations",
        "opened",
        "closed",
        "still_open",
    }
    text = run("--database", db_url, "--user", "admin", "check")
    assert text.exit_code == 0 and "0 violation(s)" in text.output
    refused = run("--database", db_url, "--user", "coord_gla", "check")
    assert refused.exit_code == 1 and "only data managers and administrators" in refused.stderr
    listed = json.loads(run("rules", "list", "--json").output)
    assert {"id", "severity", "kind", "table", "field", "description"} == set(listed[0])
    assert any(r["id"] == "PLC-010" and r["severity"] == "hard" for r in listed)
    assert all(
        r["kind"] == "set"
        for r in json.loads(run("rules", "list", "--kind", "set", "--json").output)
    )
