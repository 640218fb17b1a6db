"""The families list (/families): site scope, search by a family's or child's trial ID,
paging, and a statement count that does not grow with the trial."""

from __future__ import annotations

from noim.db.session import Database
from noim.services import families
from tests.conftest import Actors
from tests.factories import family_with_children
from tests.web.conftest import count_statements, login


def test_coordinators_list_their_sites_families_and_find_by_child(
    client, db: Database, actors: Actors
) -> None:
    gla = family_with_children(db, actors["coord_gla"], "GLA", (10, 20))
    cro = family_with_children(db, actors["coord_cro"], "CRO", (5,))
    login(client, "coord_gla")
    page = client.get("/families")
    assert page.status_code == 200
    assert gla.trial_id in page.text and cro.trial_id not in page.text
    child = gla.children[1].trial_id
    found = client.get("/families", params={"q": child.lower()})
    assert f'href="/families/{gla.trial_id}"' in found.text and "1 family" in found.text
    # another site's child is not found, and a LIKE wildcard matches nothing
    assert "No family" in client.get("/families", params={"q": cro.children[0].trial_id}).text
    assert "No family" in client.get("/families", params={"q": "%"}).text


def test_the_data_manager_sees_every_site(client, db: Database, actors: Actors) -> None:
    gla = family_with_children(db, actors["coord_gla"], "GLA", (10,))
    cro = family_with_children(db, actors["coord_cro"], "CRO", (5,))
    login(client, "datamanager")
    page = client.get("/families")
    assert gla.trial_id in page.text and cro.trial_id in page.text


def test_paging_and_statements_do_not_grow(client, db: Database, actors: Actors) -> None:
    login(client, "coord_gla")
    counts = []
    for n in (2, 12):
        while len(families.list_families(db, actors["coord_gla"])) < n:
            family_with_children(db, actors["coord_gla"], "GLA", (10,))
        assert client.get("/families").status_code == 200
        with count_statements(db) as seen:
            assert client.get("/families").status_code == 200
        counts.append(len(seen))
    assert counts[0] == counts[1], counts
    total, rows = families.page_families(db, actors["coord_gla"], limit=5, offset=10)
    assert total == 12 and len(rows) == 2
