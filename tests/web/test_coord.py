"""Coordinators' pages: home work queue, screening, registering, eligibility, consent, randomise."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from html import unescape
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from noim.db.models import Allocation, AuditLog, Child, Consent, Family, ScreeningEntry
from noim.db.session import Database
from noim.domain.trialdef import default_definition
from noim.services import consent, families, queries, randomisation, safety, screening
from tests.conftest import Actors
from tests.factories import family_with_children
from tests.web.conftest import WebDemo, count_statements, demo_login, login, post

AUTH_TABLES = ("auth_events", "web_sessions", "user_credentials", "role_security")
ARM_WORDS = sorted(set(default_definition().arm_words()), key=len, reverse=True)
ENTERED = date(2025, 6, 2)


def trial_writes(db: Database) -> tuple[int, ...]:
    """Rows of the trial tables these pages write, and audit rows of trial data."""
    with db.read() as s:
        audit = s.scalar(
            select(func.count())
            .select_from(AuditLog)
            .where(AuditLog.table_name.not_in(AUTH_TABLES))
        )
        rows = [
            int(s.scalar(select(func.count()).select_from(m)) or 0)
            for m in (Family, Child, ScreeningEntry, Consent, Allocation)
        ]
        return (*rows, int(audit or 0))


def arm_words_in(text: str) -> list[str]:
    return [w for w in ARM_WORDS if re.search(rf"\b{re.escape(w)}\b", text, re.IGNORECASE)]


def field_error(page: str, name: str) -> str:
    """The error text shown beside form field ``name`` ('' if none)."""
    found = re.search(rf'<span class="field-error" id="e-{re.escape(name)}">([^<]*)</span>', page)
    return found.group(1) if found else ""


@pytest.fixture
def set_up(db: Database, actors: Actors) -> Database:
    randomisation.setup(db, actors["admin"], 4242)
    return db


def pending_family(db: Database, actors: Actors, site: str = "GLA", n: int = 2) -> Any:
    coord = actors["coord_gla" if site == "GLA" else "coord_cro"]
    return family_with_children(db, coord, site, (10,) * n, entered=ENTERED)


def ready_family(db: Database, actors: Actors, site: str = "GLA") -> Any:
    coord = actors["coord_gla" if site == "GLA" else "coord_cro"]
    fam = pending_family(db, actors, site, 1)
    for ch in fam.children:
        consent.decide_eligibility(db, coord, ch.trial_id, True, ENTERED)
        consent.record_consent(db, coord, ch.trial_id, "local_authority", "v3", ENTERED)
    return fam


# --------------------------------------------------------------------------- home


def test_coordinator_home_is_the_work_queue(client: TestClient, set_up: Database, actors: Actors):
    pending = pending_family(set_up, actors)
    ready = ready_family(set_up, actors)
    other = pending_family(set_up, actors, "CRO")
    login(client, "coord_gla")
    page = client.get("/")
    assert page.status_code == 200
    text = page.text
    assert "Families waiting for randomisation" in text
    # each waiting family links straight to its next task
    assert f'href="/families/{pending.trial_id}/eligibility"' in text
    assert f'href="/families/{ready.trial_id}/randomise"' in text
    assert f"{pending.children[0].trial_id}: eligibility not confirmed" in text
    assert other.trial_id not in text  # another site's family
    for path in ("/screening/new", "/families/new"):
        assert f'href="{path}"' in text


def test_every_queue_row_links_to_its_task(client: TestClient, set_up: Database, actors: Actors):
    fam = ready_family(set_up, actors)
    at = datetime.combine(ENTERED + timedelta(days=20), datetime.min.time(), UTC)
    randomisation.randomise(set_up, actors["coord_gla"], fam.trial_id, randomised_at=at)
    kid = fam.children[0].trial_id
    sae = safety.add_sae(
        set_up,
        actors["coord_gla"],
        kid,
        ENTERED + timedelta(days=30),
        ENTERED + timedelta(days=31),
        "hospitalisation",
        "admitted overnight",
    )
    query = queries.raise_query(
        set_up,
        actors["datamanager"],
        "children",
        kid,
        "Please check the date of birth",
        "date_of_birth",
    )
    login(client, "coord_gla")
    text = client.get("/").text
    enter = f'href="/children/{kid}/assessments/new?instrument='
    assert enter in text
    assert f'href="/queries/{query.id}"' in text
    assert f'href="/queries/{query.id}#m-respond"' in text
    assert f'href="/children/{kid}/sae/{sae.id}"' in text
    assert "relatedness, expectedness, outcome" in text
    # every next step opens its form: one click from home to the task
    steps = re.findall(r'<td><a href="([^"]+)"[^>]*>(?:Enter the|Answer|Follow up)', text)
    steps += re.findall(r' · <a href="([^"]+)"[^>]*>Enter the', text)
    assert len(steps) >= 3, steps
    for url in {unescape(u) for u in steps}:
        page = client.get(url)
        assert page.status_code == 200, (url, page.status_code)
        assert 'method="post"' in page.text and 'name="csrf_token"' in page.text, url
    client.cookies.clear()
    login(client, "research_gla")
    text = client.get("/").text
    assert enter in text
    assert f"/sae/{sae.id}" not in text  # researchers do not write SAEs
    assert f'href="/queries/{query.id}#m-respond"' in text  # site staff answer queries


def test_researcher_home_has_no_arm_and_no_randomise(
    client: TestClient, set_up: Database, actors: Actors
):
    fam = ready_family(set_up, actors)
    randomisation.randomise(set_up, actors["coord_gla"], fam.trial_id)
    pending = pending_family(set_up, actors)
    login(client, "research_gla")
    page = client.get("/")
    assert page.status_code == 200
    assert pending.trial_id in page.text
    assert "/randomise" not in page.text and "/families/new" not in page.text
    # the gate's forms are the coordinator's: the researcher's next step opens the family
    assert f'href="/families/{pending.trial_id}/eligibility"' not in page.text
    assert f'href="/families/{pending.trial_id}" aria-label="Open family' in page.text
    assert arm_words_in(page.text) == []


def test_other_roles_get_their_tasks(client: TestClient, set_up: Database):
    expected = {
        "datamanager": ["/queries", "/check", "/freezes", "/audit", "Data queries still needing"],
        "statistician": ["/freezes", "/reports", "/datasets"],
        "dmc_chair": ["/reports"],
        "admin": ["/admin/users", "Families waiting for randomisation"],
    }
    for name, needles in expected.items():
        client.cookies.clear()
        login(client, name)
        page = client.get("/")
        assert page.status_code == 200, name
        for needle in needles:
            assert needle in page.text, (name, needle)
        if name != "admin":
            assert "Families waiting" not in page.text


def _home_statements(db: Database, client: TestClient) -> int:
    with count_statements(db) as seen:
        assert client.get("/").status_code == 200
    return len(seen)


def test_home_statement_count_does_not_grow(client: TestClient, set_up: Database, actors: Actors):
    at = datetime.combine(ENTERED + timedelta(days=20), datetime.min.time(), UTC)
    for _ in range(2):
        pending_family(set_up, actors)
        ready_family(set_up, actors)
    # one randomised family: the follow-ups section (and the forms due at each) is not empty
    first = ready_family(set_up, actors)
    randomisation.randomise(set_up, actors["coord_gla"], first.trial_id, randomised_at=at)
    login(client, "coord_gla")
    small = _home_statements(set_up, client)
    for _ in range(6):
        pending_family(set_up, actors)
        fam = ready_family(set_up, actors)
        randomisation.randomise(set_up, actors["coord_gla"], fam.trial_id, randomised_at=at)
    assert _home_statements(set_up, client) == small


# --------------------------------------------------------------------------- screening


def test_screening_log_and_new_entry(client: TestClient, db: Database, actors: Actors):
    screening.add_entry(db, actors["coord_cro"], "CRO", ENTERED, 1, True, reference="CRO-REF-9")
    login(client, "coord_gla")
    page = client.get("/screening/new")
    assert page.status_code == 200 and 'name="screened_on"' in page.text
    before = trial_writes(db)
    response = post(
        client,
        "/screening/new",
        {
            "site": "GLA",
            "screened_on": "03/06/2025",
            "n_children": "2",
            "eligible": "yes",
            "local_authority": "GCC",
            "reference": "REF-1",
        },
    )
    assert response.status_code == 303
    entry_id = max(e.id for e in screening.list_entries(db, actors["coord_gla"]).entries)
    assert response.headers["location"] == f"/families/new?entry={entry_id}"
    assert trial_writes(db)[2] == before[2] + 1
    log = client.get("/screening")
    assert log.status_code == 200
    assert "REF-1" in log.text and "CRO-REF-9" not in log.text
    assert f'href="/families/new?entry={entry_id}"' in log.text
    assert "REF-1" not in client.get("/screening?status=ineligible").text
    # the other site's log cannot be asked for
    assert "CRO-REF-9" not in client.get("/screening?site=CRO").text


def test_screening_log_statement_count_does_not_grow(
    client: TestClient, db: Database, actors: Actors
):
    def add(n: int) -> None:
        for i in range(n):
            screening.add_entry(
                db,
                actors["coord_gla"],
                "GLA",
                ENTERED,
                1,
                i % 2 == 0,
                None if i % 2 == 0 else f"reason {i % 3}",
            )

    add(3)
    login(client, "coord_gla")
    counts = []
    for more in (0, 12):
        add(more)
        for url in ("/screening", "/screening?status=ineligible&page=1"):
            with count_statements(db) as seen:
                assert client.get(url).status_code == 200
            counts.append(len(seen))
    assert counts[:2] == counts[2:]


def test_screening_bad_input_is_shown_beside_the_fields(client: TestClient, db: Database):
    login(client, "coord_gla")
    before = trial_writes(db)
    response = post(
        client,
        "/screening/new",
        {"site": "GLA", "screened_on": "31/02/2025", "n_children": "two", "eligible": "no"},
    )
    assert response.status_code == 422
    assert "dd/mm/yyyy" in field_error(response.text, "screened_on")
    assert "whole number" in field_error(response.text, "n_children")
    assert 'value="two"' in response.text  # what was typed is kept
    # the service's own rules, beside their fields
    response = post(
        client,
        "/screening/new",
        {
            "site": "GLA",
            "screened_on": "01/01/2099",
            "n_children": "40",
            "eligible": "no",
            "local_authority": "CROY",
        },
    )
    assert response.status_code == 422
    assert "SCR-001" in field_error(response.text, "screened_on")
    assert "SCR-002" in field_error(response.text, "n_children")
    assert "SCR-003" in field_error(response.text, "ineligible_reason")
    assert "SCR-006" in field_error(response.text, "local_authority")
    assert trial_writes(db) == before


def test_screening_other_site_and_roles(client: TestClient, db: Database):
    login(client, "coord_cro")
    before = trial_writes(db)
    response = post(
        client,
        "/screening/new",
        {"site": "GLA", "screened_on": "03/06/2025", "n_children": "1", "eligible": "yes"},
    )
    assert response.status_code == 422  # GLA is not a site this user may choose
    assert "WEB-003" in field_error(response.text, "site")
    assert trial_writes(db) == before
    for name in ("research_gla", "datamanager", "statistician"):
        client.cookies.clear()
        login(client, name)
        assert client.get("/screening/new").status_code == 403
        response = post(
            client,
            "/screening/new",
            {"site": "GLA", "screened_on": "03/06/2025", "n_children": "1", "eligible": "yes"},
        )
        assert response.status_code == 403
    assert trial_writes(db) == before
    # the blinded researcher may read the log
    assert client.get("/screening").status_code == 200


def test_post_without_csrf_is_refused(client: TestClient, set_up: Database, actors: Actors):
    fam = ready_family(set_up, actors)
    login(client, "coord_gla")
    before = trial_writes(set_up)
    forms = {
        "/screening/new": {
            "site": "GLA",
            "screened_on": "03/06/2025",
            "n_children": "1",
            "eligible": "yes",
        },
        "/families/new": {
            "site": "GLA",
            "c1_date_of_birth": "01/01/2025",
            "c1_sex": "female",
            "c1_entered_care_on": "01/06/2025",
        },
        f"/families/{fam.trial_id}/eligibility": {
            "child": "1",
            "c1_eligible": "yes",
            "c1_decided_on": "02/06/2025",
        },
        f"/families/{fam.trial_id}/consent": {
            "child": "1",
            "c1_consenter": "local_authority",
            "c1_form_version": "v3",
            "c1_consented_on": "02/06/2025",
        },
        f"/families/{fam.trial_id}/randomise": {"confirm": "yes"},
    }
    for url, data in forms.items():
        response = client.post(url, data=data)
        assert response.status_code == 403, url
        response = client.post(url, data={**data, "csrf_token": "forged"})
        assert response.status_code == 403, url
    assert trial_writes(set_up) == before


# --------------------------------------------------------------------------- registering


def test_register_a_family_of_two_from_screening(client: TestClient, db: Database, actors: Actors):
    entry = screening.add_entry(db, actors["coord_gla"], "GLA", ENTERED, 2, True)
    login(client, "coord_gla")
    page = client.get(f"/families/new?entry={entry.id}")
    assert page.status_code == 200
    assert f'value="{entry.id}"' in page.text
    assert page.text.count('name="c6_date_of_birth"') == 1
    response = post(
        client,
        "/families/new",
        {
            "site": "GLA",
            "local_authority": "GCC",
            "screening_entry": str(entry.id),
            "c1_date_of_birth": "10/01/2025",
            "c1_sex": "female",
            "c1_entered_care_on": "02/06/2025",
            "c1_legal_route": "sc.cpo",
            "c2_date_of_birth": "2023-03-05",
            "c2_sex": "male",
            "c2_entered_care_on": "02/06/2025",
        },
    )
    assert response.status_code == 303, response.text
    (row,) = families.list_families(db, actors["coord_gla"])
    assert response.headers["location"] == f"/families/{row.trial_id}/eligibility"
    fam = families.get_family(db, actors["coord_gla"], row.trial_id)
    assert [(c.sex, c.date_of_birth) for c in fam.children] == [
        ("female", date(2025, 1, 10)),
        ("male", date(2023, 3, 5)),
    ]
    (linked,) = screening.list_entries(db, actors["coord_gla"]).entries
    assert linked.family == row.trial_id
    page = client.get(response.headers["location"])
    assert f"Family {row.trial_id} registered with 2 children" in page.text


def test_register_bad_rows_are_shown_beside_them(client: TestClient, db: Database):
    login(client, "coord_cro")
    before = trial_writes(db)
    response = post(
        client,
        "/families/new",
        {
            "site": "CRO",
            "in_care_proceedings": "no",
            "c1_date_of_birth": "10/01/2025",
            "c1_sex": "female",
            "c1_entered_care_on": "02/06/2025",
            "c3_date_of_birth": "10/01/2025",
            "c3_sex": "female",
            "c3_entered_care_on": "02/06/2019",
            "c3_legal_route": "sc.cpo",
        },
    )
    assert response.status_code == 422
    assert "FAM-002" in field_error(response.text, "in_care_proceedings")
    assert "CHD-001" in field_error(response.text, "c3_entered_care_on")
    assert "CHD-005" in field_error(response.text, "c3_legal_route")
    assert field_error(response.text, "c1_entered_care_on") == ""
    assert 'value="02/06/2019"' in response.text
    # a date that is not one, and no child at all
    response = post(client, "/families/new", {"site": "CRO", "c2_date_of_birth": "yesterday"})
    assert response.status_code == 422
    assert "WEB-001" in field_error(response.text, "c2_date_of_birth")
    assert "WEB-004" in field_error(response.text, "c2_sex")
    response = post(client, "/families/new", {"site": "CRO", "in_care_proceedings": "yes"})
    assert response.status_code == 422
    assert "ENR-001" in field_error(response.text, "c1_date_of_birth")
    assert trial_writes(db) == before


def test_register_at_another_site_is_refused(client: TestClient, db: Database, actors: Actors):
    entry = screening.add_entry(db, actors["coord_gla"], "GLA", ENTERED, 1, True)
    login(client, "coord_cro")
    before = trial_writes(db)
    child = {
        "c1_date_of_birth": "10/01/2025",
        "c1_sex": "female",
        "c1_entered_care_on": "02/06/2025",
    }
    response = post(client, "/families/new", {"site": "GLA", **child})
    assert response.status_code == 422 and "WEB-003" in field_error(response.text, "site")
    response = post(
        client,
        "/families/new",
        {"site": "CRO", "in_care_proceedings": "yes", "screening_entry": str(entry.id), **child},
    )
    assert response.status_code == 403
    assert trial_writes(db) == before


# --------------------------------------------------------------------------- eligibility, consent


def test_eligibility_and_consent_pages(client: TestClient, set_up: Database, actors: Actors):
    fam = pending_family(set_up, actors)
    first = fam.children[0].trial_id
    login(client, "coord_gla")
    url = f"/families/{fam.trial_id}/eligibility"
    page = client.get(url)
    assert page.status_code == 200
    assert f"{first}: eligibility not confirmed" in page.text
    before = trial_writes(set_up)
    # found ineligible without a reason: beside the reason, nothing written
    response = post(client, url, {"child": "2", "c2_eligible": "no", "c2_decided_on": "03/06/2025"})
    assert response.status_code == 422
    assert "ELG-002" in field_error(response.text, "c2_reason")
    response = post(
        client, url, {"child": "1", "c1_eligible": "yes", "c1_decided_on": "01/01/2020"}
    )
    assert response.status_code == 422
    assert "ELG-001" in field_error(response.text, "c1_decided_on")
    assert trial_writes(set_up) == before
    for number in ("1", "2"):
        response = post(
            client,
            url,
            {"child": number, f"c{number}_eligible": "yes", f"c{number}_decided_on": "03/06/2025"},
        )
        assert response.status_code == 303 and response.headers["location"] == url
    status = families.get_family(set_up, actors["coord_gla"], fam.trial_id)
    assert [c.eligibility for c in status.children] == ["eligible", "eligible"]
    # consent
    url = f"/families/{fam.trial_id}/consent"
    page = client.get(url)
    assert page.status_code == 200 and "no consent yet" in page.text
    before = trial_writes(set_up)
    response = post(
        client,
        url,
        {
            "child": "1",
            "c1_consenter": "local_authority",
            "c1_form_version": " ",
            "c1_consented_on": "01/01/2020",
        },
    )
    assert response.status_code == 422
    assert "WEB-004" in field_error(response.text, "c1_form_version")
    response = post(
        client,
        url,
        {
            "child": "1",
            "c1_consenter": "local_authority",
            "c1_form_version": "v3",
            "c1_consented_on": "01/01/2020",
        },
    )
    assert response.status_code == 422
    assert "CNS-004" in field_error(response.text, "c1_consented_on")
    assert trial_writes(set_up) == before
    for number in ("1", "2"):
        response = post(
            client,
            url,
            {
                "child": number,
                f"c{number}_consenter": "local_authority",
                f"c{number}_form_version": "v3",
                f"c{number}_consented_on": "03/06/2025",
            },
        )
        assert response.status_code == 303
    assert trial_writes(set_up)[3] == before[3] + 2
    page = client.get(f"/families/{fam.trial_id}/randomise")
    assert "is ready to randomise" in page.text and 'name="confirm"' in page.text


def test_eligibility_and_consent_other_site(client: TestClient, set_up: Database, actors: Actors):
    fam = pending_family(set_up, actors)
    login(client, "coord_cro")
    before = trial_writes(set_up)
    for page in ("eligibility", "consent", "randomise"):
        assert client.get(f"/families/{fam.trial_id}/{page}").status_code == 403
    response = post(
        client,
        f"/families/{fam.trial_id}/eligibility",
        {"child": "1", "c1_eligible": "yes", "c1_decided_on": "03/06/2025"},
    )
    assert response.status_code == 403
    response = post(
        client,
        f"/families/{fam.trial_id}/consent",
        {
            "child": "1",
            "c1_consenter": "local_authority",
            "c1_form_version": "v3",
            "c1_consented_on": "03/06/2025",
        },
    )
    assert response.status_code == 403
    assert trial_writes(set_up) == before
    assert client.get("/families/G-9999-X/eligibility").status_code == 404


# --------------------------------------------------------------------------- randomising


def test_randomise_needs_confirmation_then_shows_the_arm(
    client: TestClient, set_up: Database, actors: Actors
):
    fam = ready_family(set_up, actors)
    pending = pending_family(set_up, actors)
    login(client, "coord_gla")
    # a family with something missing: no button, the missing items
    page = client.get(f"/families/{pending.trial_id}/randomise")
    assert page.status_code == 200 and 'name="confirm"' not in page.text
    assert "no consent recorded" in page.text
    before = trial_writes(set_up)
    response = post(client, f"/families/{pending.trial_id}/randomise", {"confirm": "yes"})
    assert response.status_code == 422 and "RND-004" in response.text
    url = f"/families/{fam.trial_id}/randomise"
    response = post(client, url, {})
    assert response.status_code == 422
    assert "WEB-004" in field_error(response.text, "confirm")
    assert trial_writes(set_up) == before
    response = post(client, url, {"confirm": "yes"})
    assert response.status_code == 303 and response.headers["location"] == url
    page = client.get(url)
    (allocation,) = randomisation.list_allocations(set_up, actors["coord_gla"])
    assert allocation.family == fam.trial_id
    assert f"{allocation.arm_label} ({allocation.arm})" in page.text
    assert fam.children[0].trial_id in page.text
    assert f"Family {fam.trial_id} is randomised" in page.text
    # a second try is refused and writes nothing
    before = trial_writes(set_up)
    response = post(client, url, {"confirm": "yes"})
    assert response.status_code in (409, 422)
    assert trial_writes(set_up) == before


def test_randomise_refused_to_blinded_and_other_site(
    client: TestClient, set_up: Database, actors: Actors
):
    fam = ready_family(set_up, actors)
    done = ready_family(set_up, actors)
    randomisation.randomise(set_up, actors["coord_gla"], done.trial_id)
    before = trial_writes(set_up)
    for name in ("research_gla", "datamanager", "statistician", "coord_cro"):
        client.cookies.clear()
        login(client, name)
        for family in (fam, done):
            page = client.get(f"/families/{family.trial_id}/randomise")
            assert page.status_code == 403, name
            assert arm_words_in(page.text) == []
        response = post(client, f"/families/{fam.trial_id}/randomise", {"confirm": "yes"})
        assert response.status_code == 403, name
    assert trial_writes(set_up) == before


@pytest.mark.parametrize("user", ["research_gla", "datamanager", "statistician"])
def test_blinded_demo_pages_have_no_arm(web_demo: WebDemo, user: str):
    client = demo_login(web_demo, user)
    for url in ("/", "/screening", "/screening?status=enrolled&page=2"):
        page = client.get(url)
        assert page.status_code == 200, (user, url)
        assert arm_words_in(page.text) == [], (user, url)


def test_declared_factors_are_asked_when_randomising(empty_url: str):
    """A trial with a declared stratification factor (the example trial): the queue and the
    page do not call the factor missing; the page asks for it, and it is required."""
    from noim.domain.trialdef import builtin_definition
    from noim.services import setup, users
    from noim.services.workqueue import work_queue
    from tests.web.conftest import give_passwords, make_client

    setup.initialise(empty_url, builtin_definition("example"), "admin")
    db = Database(empty_url)
    try:
        admin = users.resolve_actor(db, "admin")
        users.add_user(db, admin, "coord_lee", "coordinator", ["LEE"])
        randomisation.generate_list(db, admin, 99, 12)
        coord = users.resolve_actor(db, "coord_lee")
        fam = families.register_family(db, coord, "LEE", "LEED")
        child = families.add_child(
            db, coord, fam.trial_id, date(2024, 1, 1), "male", ENTERED, today=date(2026, 1, 1)
        )
        consent.decide_eligibility(db, coord, child.trial_id, True, ENTERED)
        consent.record_consent(db, coord, child.trial_id, "local_authority", "v1", ENTERED)
        (waiting,) = work_queue(db, coord).waiting
        assert waiting.family == fam.trial_id and waiting.ready
        give_passwords(db)
        client = login(make_client(db), "coord_lee")
        url = f"/families/{fam.trial_id}/randomise"
        page = client.get(url)
        assert 'name="factor_has_sibling_in_care"' in page.text
        before = trial_writes(db)
        response = post(client, url, {"confirm": "yes"})
        assert response.status_code == 422
        assert "WEB-004" in field_error(response.text, "factor_has_sibling_in_care")
        assert trial_writes(db) == before
        response = post(client, url, {"confirm": "yes", "factor_has_sibling_in_care": "yes"})
        assert response.status_code == 303
        (allocation,) = randomisation.list_allocations(db, coord)
        assert allocation.factors["has_sibling_in_care"] == "yes"
        assert allocation.arm_label in client.get(url).text
    finally:
        db.dispose()
