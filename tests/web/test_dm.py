"""The data manager's pages: data queries, check, imports, freezes and the audit trail.

Each page and action for each role, on its own site and the other; bad input is shown again
beside its field and writes nothing; a POST without the CSRF token writes nothing; the query
list runs as many statements for few queries as for many.
"""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from noim.db.models import AuditLog, DataFreeze, DataQuery, ScreeningEntry
from noim.db.session import Database
from noim.services import queries
from noim.services.imports.uploads import upload_folder
from tests.conftest import Actors
from tests.factories import count_rows, trial_children
from tests.test_blinding_attacks import ARM_WORDS
from tests.web.conftest import WebDemo, count_statements, demo_login, login, post

AUTH_TABLES = ("auth_events", "web_sessions", "user_credentials")


def _raise(db: Database, actors: Actors, child: str, n: int = 1) -> list[int]:
    dm = actors["datamanager"]
    return [
        queries.raise_query(db, dm, "children", child, f"Check {i}", "date_of_birth").id
        for i in range(n)
    ]


def _status(db: Database, query_id: int) -> str:
    with db.read() as s:
        return str(s.scalar(select(DataQuery.status).where(DataQuery.id == query_id)))


def _text(response: Any) -> str:
    return unescape(response.text)


def _field_error(html: str, name: str) -> str:
    """The error shown beside field ``name`` (asserts the field is marked invalid)."""
    assert re.search(rf'id="f-{name}"[^>]*aria-invalid="true"', html), f"{name} not invalid"
    found = re.search(rf'id="e-{name}">([^<]*)<', html)
    assert found, f"no error beside {name}"
    return found.group(1)


def _trial_audit(db: Database) -> int:
    """Audit rows of trial data (logging in is audited too: those rows are left out)."""
    return count_rows(db, AuditLog, AuditLog.table_name.not_in(AUTH_TABLES))


def _leaks(text: str) -> list[str]:
    return [w for w in ARM_WORDS if re.search(rf"\b{re.escape(w)}\b", text, re.IGNORECASE)]


# --------------------------------------------------------------------------- queries


@pytest.fixture
def two_sites(db: Database, actors: Actors) -> tuple[str, str, int, int]:
    (gla,) = trial_children(db, actors, "GLA")
    (cro,) = trial_children(db, actors, "CRO")
    (on_gla,) = _raise(db, actors, gla)
    (on_cro,) = _raise(db, actors, cro)
    return gla, cro, on_gla, on_cro


def test_query_list_by_role_and_site(
    client: TestClient, two_sites: tuple[str, str, int, int]
) -> None:
    gla, cro, on_gla, on_cro = two_sites
    login(client, "coord_gla")
    page = client.get("/queries")
    assert page.status_code == 200
    assert f'href="/queries/{on_gla}"' in page.text and f'href="/queries/{on_cro}"' not in page.text
    assert gla in page.text and cro not in page.text
    assert client.get("/queries?site=CRO").status_code == 403
    assert client.get(f"/queries/{on_cro}").status_code == 403
    assert client.get(f"/queries/{on_gla}").status_code == 200


@pytest.mark.parametrize("user", ["datamanager", "admin"])
def test_query_list_for_every_site(
    client: TestClient, two_sites: tuple[str, str, int, int], user: str
) -> None:
    _gla, _cro, on_gla, on_cro = two_sites
    login(client, user)
    page = client.get("/queries")
    assert f"/queries/{on_gla}" in page.text and f"/queries/{on_cro}" in page.text
    only_cro = client.get("/queries?site=CRO&status=open")
    assert f'/queries/{on_gla}"' not in only_cro.text and f"/queries/{on_cro}" in only_cro.text
    assert f"/queries/{on_cro}" not in client.get("/queries?status=closed").text


@pytest.mark.parametrize("user", ["dmc_chair"])
def test_query_list_refused_without_trial_data(client: TestClient, user: str) -> None:
    login(client, user)
    assert client.get("/queries").status_code == 403


def test_query_list_bad_filters_are_shown_beside_the_field(client: TestClient) -> None:
    login(client, "datamanager")
    page = client.get("/queries?min_age=soon&max_age=3")
    assert page.status_code == 422
    assert "a whole number" in _field_error(_text(page), "min_age")
    assert 'value="soon"' in page.text
    page = client.get("/queries?min_age=9&max_age=3")
    assert page.status_code == 422 and "QRY-007" in _field_error(_text(page), "max_age")


def test_query_list_pages_and_statement_count(
    client: TestClient, db: Database, actors: Actors
) -> None:
    children = trial_children(db, actors, "GLA", 2)
    _raise(db, actors, children[0], 3)
    login(client, "coord_gla")
    client.get("/queries")
    with count_statements(db) as few:
        assert client.get("/queries").status_code == 200
    for child in children:
        for qid in _raise(db, actors, child, 30):
            if qid % 3 == 0:
                queries.respond(db, actors["coord_gla"], qid, "answered")
    with count_statements(db) as many:
        page = client.get("/queries")
    assert page.status_code == 200 and "63 queries" in page.text
    assert len(many) == len(few), (len(few), len(many))
    assert 'rel="next"' in page.text
    second = client.get("/queries?page=2")
    assert "page 2 of 2" in second.text and 'rel="prev"' in second.text


def test_raise_a_query_from_a_record(client: TestClient, db: Database, actors: Actors) -> None:
    (child,) = trial_children(db, actors, "GLA")
    login(client, "datamanager")
    form = client.get(f"/queries/new?table=children&record={child}&field=date_of_birth")
    assert form.status_code == 200 and f'value="{child}"' in form.text
    before = count_rows(db, DataQuery)
    done = post(
        client,
        "/queries/new",
        {"table": "children", "record": child, "field": "date_of_birth", "message": "DOB?"},
    )
    assert done.status_code == 303
    (made,) = [q for q in queries.list_queries(db, actors["admin"]) if q.message == "DOB?"]
    assert done.headers["location"] == f"/queries/{made.id}"
    assert (made.trial_id, made.field, made.raised_by) == (child, "date_of_birth", "datamanager")
    assert count_rows(db, DataQuery) == before + 1
    shown = client.get(done.headers["location"])
    assert "Query #" in shown.text or f"#{made.id}" in shown.text
    assert f"Query {made.id} raised" in shown.text  # the flash


def test_raising_bad_input_is_shown_beside_the_fields(
    client: TestClient, db: Database, actors: Actors
) -> None:
    (child,) = trial_children(db, actors, "GLA")
    login(client, "datamanager")
    before = (count_rows(db, DataQuery), _trial_audit(db))
    page = post(
        client,
        "/queries/new",
        {"table": "children", "record": child, "field": "shoe_size", "message": "Size?"},
    )
    assert page.status_code == 422
    assert "QRY-005" in _field_error(_text(page), "field")
    assert 'value="shoe_size"' in page.text and "Size?" in page.text
    page = post(
        client, "/queries/new", {"table": "children", "record": "G-9999-01-X", "message": "x"}
    )
    assert page.status_code == 422 and "QRY-004" in _field_error(_text(page), "record")
    page = post(client, "/queries/new", {"table": "children", "record": child, "message": "  "})
    assert page.status_code == 422 and "QRY-002" in _field_error(_text(page), "message")
    assert (count_rows(db, DataQuery), _trial_audit(db)) == before


def test_raising_is_site_scoped_and_refused_to_readers(
    client: TestClient, db: Database, actors: Actors
) -> None:
    (cro,) = trial_children(db, actors, "CRO")
    before = (count_rows(db, DataQuery), _trial_audit(db))
    login(client, "coord_gla")
    page = post(client, "/queries/new", {"table": "children", "record": cro, "message": "x"})
    assert page.status_code == 403
    client.cookies.clear()
    login(client, "statistician")
    assert client.get("/queries/new").status_code == 403
    assert (
        post(
            client, "/queries/new", {"table": "children", "record": cro, "message": "x"}
        ).status_code
        == 403
    )
    assert (count_rows(db, DataQuery), _trial_audit(db)) == before


def test_query_workflow_by_role(
    client: TestClient, db: Database, two_sites: tuple[str, str, int, int]
) -> None:
    _gla, _cro, on_gla, on_cro = two_sites
    login(client, "coord_gla")
    page = client.get(f"/queries/{on_gla}")
    assert f'action="/queries/{on_gla}/respond"' in page.text
    assert "/resolve" not in page.text and "/close" not in page.text
    # an empty answer is shown again beside the message; nothing changes
    audit_rows = _trial_audit(db)
    bad = post(client, f"/queries/{on_gla}/respond", {"message": " "})
    assert bad.status_code == 422 and "QRY-002" in bad.text and 'aria-invalid="true"' in bad.text
    assert _status(db, on_gla) == "open" and _trial_audit(db) == audit_rows
    # a coordinator may not resolve, nor answer another site's query
    assert post(client, f"/queries/{on_gla}/resolve", {"message": "x"}).status_code == 403
    assert post(client, f"/queries/{on_cro}/respond", {"message": "x"}).status_code == 403
    assert (_status(db, on_gla), _status(db, on_cro)) == ("open", "open")
    assert _trial_audit(db) == audit_rows
    done = post(client, f"/queries/{on_gla}/respond", {"message": "The date is right"})
    assert done.status_code == 303 and _status(db, on_gla) == "answered"
    client.cookies.clear()
    login(client, "datamanager")
    page = client.get(f"/queries/{on_gla}")
    assert (
        "The date is right" in page.text and "/resolve" in page.text and "/respond" not in page.text
    )
    assert post(client, f"/queries/{on_gla}/resolve", {"message": "ok"}).status_code == 303
    assert post(client, f"/queries/{on_gla}/close", {"message": ""}).status_code == 303
    assert _status(db, on_gla) == "closed"
    bad = post(client, f"/queries/{on_gla}/close", {"message": ""})
    assert bad.status_code == 422 and "QRY-001" in bad.text
    assert post(client, f"/queries/{on_gla}/reopen", {"message": "again"}).status_code == 303
    assert _status(db, on_gla) == "open"
    assert post(client, f"/queries/{on_gla}/destroy", {"message": "x"}).status_code == 404
    assert client.get("/queries/99999").status_code == 404


def test_a_post_without_the_csrf_token_writes_nothing(
    client: TestClient, db: Database, two_sites: tuple[str, str, int, int]
) -> None:
    _gla, _cro, on_gla, _on_cro = two_sites
    login(client, "coord_gla")
    before = _trial_audit(db)
    response = client.post(f"/queries/{on_gla}/respond", data={"message": "x"})
    assert response.status_code == 403 and _status(db, on_gla) == "open"
    response = client.post(
        "/imports", files={"file": ("a.csv", b"x\n")}, data={"kind": "screening"}
    )
    assert response.status_code == 403
    assert client.post("/queries/new", data={"table": "children", "record": "1"}).status_code == 403
    client.cookies.clear()
    login(client, "datamanager")
    assert client.post("/freezes", data={"label": "x"}).status_code == 403
    assert client.post("/check").status_code == 403
    assert client.post(f"/queries/{on_gla}/resolve", data={"message": "x"}).status_code == 403
    assert _trial_audit(db) == before
    assert (count_rows(db, DataFreeze), _status(db, on_gla)) == (0, "open")


# --------------------------------------------------------------------------- check


def test_check_runs_the_rules(client: TestClient, db: Database) -> None:
    login(client, "datamanager")
    assert "Run the checks now" in client.get("/check").text
    page = post(client, "/check")
    assert page.status_code == 200 and "Violations by rule" in page.text
    assert "PLC-010" in page.text and "violation(s)" in page.text


@pytest.mark.parametrize(("user", "status"), [("coord_gla", 403), ("statistician", 403)])
def test_check_refused(client: TestClient, db: Database, user: str, status: int) -> None:
    login(client, user)
    before = _trial_audit(db)
    assert post(client, "/check").status_code == status
    assert _trial_audit(db) == before


# --------------------------------------------------------------------------- imports

HEADER = (
    "site,reference,screened_on,local_authority,n_children,eligible,ineligible_reason,"
    "declined,declined_reason\n"
)
GOOD = (
    HEADER + "GLA,S-1,2024-02-01,GCC,1,yes,,no,\nGLA,S-2,2024-02-03,,2,no,placed with a parent,,\n"
).encode()
BAD = (HEADER + "GLA,S-1,2024-02-01,GCC,1,yes,,no,\nGLA,S-2,31/02/2024,,two,no,,,\n").encode()


def _preview(client: TestClient, content: bytes, kind: str = "screening") -> Any:
    return post(client, "/imports", {"kind": kind}, files={"file": ("log.csv", content)})


def test_import_kinds_offered_by_role(client: TestClient) -> None:
    login(client, "coord_gla")
    page = client.get("/imports")
    assert 'value="screening"' in page.text and 'value="intervention"' in page.text
    client.cookies.clear()
    login(client, "research_gla")
    page = client.get("/imports")
    assert 'value="assessments"' in page.text and 'value="intervention"' not in page.text
    bad = _preview(client, GOOD, kind="intervention")
    assert bad.status_code == 422 and "WEB-003" in _field_error(_text(bad), "kind")
    client.cookies.clear()
    login(client, "datamanager")
    page = client.get("/imports")
    assert 'value="families"' in page.text and 'value="intervention"' not in page.text
    bad = _preview(client, GOOD, kind="intervention")
    assert bad.status_code == 422 and "WEB-003" in _field_error(_text(bad), "kind")


def test_import_preview_writes_nothing_then_commit_writes(client: TestClient, db: Database) -> None:
    login(client, "coord_gla")
    before = _trial_audit(db)
    page = _preview(client, GOOD)
    assert page.status_code == 200, page.text
    assert "would add 2" in page.text and "placed with a parent" in page.text
    assert (_trial_audit(db), count_rows(db, ScreeningEntry)) == (before, 0)
    sha = re.search(r'name="sha256" value="([0-9a-f]{64})"', page.text)
    assert sha
    done = post(
        client, "/imports/commit", {"kind": "screening", "sha256": sha.group(1), "dates": ""}
    )
    assert done.status_code == 200 and "added 2" in done.text
    assert count_rows(db, ScreeningEntry) == 2


def test_import_of_a_changed_file_is_refused(client: TestClient, db: Database) -> None:
    login(client, "coord_gla")
    page = _preview(client, GOOD)
    sha = re.search(r'name="sha256" value="([0-9a-f]{64})"', page.text)
    assert sha
    (kept,) = [p for p in upload_folder(db).rglob("*.csv") if sha.group(1) in str(p)]
    kept.write_bytes(GOOD.replace(b"S-2", b"S-3"))
    before = _trial_audit(db)
    done = post(client, "/imports/commit", {"kind": "screening", "sha256": sha.group(1)})
    assert done.status_code == 422 and "IMP-100" in done.text and "changed" in done.text
    assert (_trial_audit(db), count_rows(db, ScreeningEntry)) == (before, 0)
    # another user cannot commit a file they did not preview
    client.cookies.clear()
    login(client, "coord_cro")
    page = _preview(client, GOOD.replace(b"GLA", b"CRO").replace(b"GCC", b"CROY"))
    other = re.search(r'name="sha256" value="([0-9a-f]{64})"', page.text)
    assert other
    client.cookies.clear()
    login(client, "coord_gla")
    done = post(client, "/imports/commit", {"kind": "screening", "sha256": other.group(1)})
    assert done.status_code == 422 and "IMP-100" in done.text
    assert count_rows(db, ScreeningEntry) == 0


def test_import_preview_shows_every_problem(client: TestClient, db: Database) -> None:
    login(client, "coord_gla")
    page = _preview(client, BAD)
    assert page.status_code == 422
    text = _text(page)
    assert "Not importable" in text and "row 3" in text and "n_children" in text
    assert "cell-problem" in text and 'name="sha256"' not in text
    missing = post(client, "/imports", {"kind": "screening"})
    assert missing.status_code == 422 and "WEB-004" in _field_error(_text(missing), "file")
    other_site = _preview(client, GOOD.replace(b"GLA", b"CRO").replace(b"GCC", b"CROY"))
    assert other_site.status_code == 422  # the service refuses another site's rows
    assert count_rows(db, ScreeningEntry) == 0


# --------------------------------------------------------------------------- freezes


def test_freezes_made_and_listed(client: TestClient, db: Database) -> None:
    login(client, "datamanager")
    page = client.get("/freezes")
    assert page.status_code == 200 and "Freeze the data now" in page.text
    bad = post(client, "/freezes", {"label": "x" * 200})
    assert bad.status_code == 422 and "FRZ-001" in _field_error(_text(bad), "label")
    assert count_rows(db, DataFreeze) == 0
    made = post(client, "/freezes", {"label": "DMC 1"})
    assert made.status_code == 303
    detail = client.get(made.headers["location"])
    assert detail.status_code == 200 and "DMC 1" in detail.text and "children" in detail.text
    assert "DMC 1" in client.get("/freezes").text
    assert client.get("/freezes/999").status_code == 404


@pytest.mark.parametrize("user", ["statistician", "dmc_chair", "unblinded_stat"])
def test_analysts_read_freezes(client: TestClient, db: Database, actors: Actors, user: str) -> None:
    from noim.services import freezes

    made = freezes.create_freeze(db, actors["datamanager"], label="DMC 1")
    login(client, user)
    page = client.get("/freezes")
    assert page.status_code == 200 and "DMC 1" in page.text
    assert client.get(f"/freezes/{made.id}").status_code == 200
    may_freeze = user == "unblinded_stat"
    assert ("Freeze the data now" in page.text) == may_freeze
    if not may_freeze:
        assert post(client, "/freezes", {"label": "mine"}).status_code == 403
        assert count_rows(db, DataFreeze) == 1


@pytest.mark.parametrize("user", ["coord_gla", "research_cro"])
def test_freezes_refused_to_site_roles(client: TestClient, user: str) -> None:
    login(client, user)
    assert client.get("/freezes").status_code == 403


# --------------------------------------------------------------------------- audit


def test_audit_search(client: TestClient, db: Database, actors: Actors) -> None:
    (child,) = trial_children(db, actors, "GLA")
    login(client, "datamanager")
    page = client.get(f"/audit?table=children&key={child}")
    assert page.status_code == 200 and "1 audit row" in page.text and child in page.text
    everything = client.get("/audit?user=coord_gla")
    assert "coord_gla" in everything.text
    bad = client.get("/audit?since=31/02/2026")
    assert bad.status_code == 422 and "WEB-001" in _field_error(_text(bad), "since")
    bad = client.get("/audit?since=02/02/2026&until=01/02/2026")
    assert bad.status_code == 422 and "AUD-003" in _field_error(_text(bad), "until")
    bad = client.get("/audit?table=nonsense")
    assert bad.status_code == 422 and "AUD-001" in _field_error(_text(bad), "table")


@pytest.mark.parametrize("user", ["coord_gla", "statistician", "dmc_chair"])
def test_audit_refused(client: TestClient, user: str) -> None:
    login(client, user)
    assert client.get("/audit").status_code == 403


def test_blinded_data_manager_reads_no_arm(web_demo: WebDemo) -> None:
    client = demo_login(web_demo, "datamanager")
    for path in (
        "/audit?table=allocations",
        "/audit?table=randomisation_state",
        "/audit?table=service_use",
        "/audit?table=intervention_receipts",
        "/audit",
        "/queries",
        "/queries?status=closed",
    ):
        page = client.get(path)
        assert page.status_code == 200, path
        assert _leaks(page.text) == [], path
    assert "[masked: arm]" in client.get("/audit?table=allocations").text


def test_query_links_go_to_the_record_page() -> None:
    from noim.web.routes.dm import record_url

    assert record_url("children", "G-0001-01-O", "3") == "/children/G-0001-01-O"
    assert record_url("placements", "G-0001-01-O", "9") == "/children/G-0001-01-O"
    assert record_url("families", "G-0001-Z", "1") == "/families/G-0001-Z"
    assert record_url("allocations", "G-0001-Z", "1") == "/families/G-0001-Z"
    assert record_url("unit_costs", None, "2") == "/history/unit_costs/2"
