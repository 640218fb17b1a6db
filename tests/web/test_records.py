"""The family and child record pages and the record history page, for every role."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from noim.db.models import Allocation, Child, Family, Placement
from noim.db.session import Database
from tests.conftest import Actors, starting_from
from tests.test_record_view import Built, arm_words, build
from tests.web.conftest import WebDemo, count_statements, demo_login, login, make_client

IDENTITIES = ("Ailsa", "Brown", "Morag", "Isla", "G1 1AA")

#: user -> status of the pages of a Glasgow family (READ_TRIAL_DATA, site scope)
EXPECTED = {
    "coord_gla": 200,
    "coord_cro": 403,
    "research_gla": 200,
    "research_cro": 403,
    "datamanager": 200,
    "statistician": 200,
    "unblinded_stat": 200,
    "dmc_chair": 403,
    "admin": 200,
}
BLINDED = ("research_gla", "datamanager", "statistician")


def leaks(text: str) -> set[str]:
    """Arm codes, names, site labels and team names in a page (as the crawl looks)."""
    text = unescape(text)
    return {w for w in arm_words() if re.search(rf"\b{re.escape(w)}\b", text, re.IGNORECASE)}


def pages(b: Built) -> list[str]:
    return [
        f"/families/{b.family}",
        f"/children/{b.young}",
        f"/children/{b.older}",
        f"/history/children/{b.young}",
        f"/history/families/{b.family}",
    ]


#: a test given ``built`` starts from a copy of the trial holding ``build``'s family (built
#: once per run and backend, shared with tests/test_record_view.py)
prebuilt, db_url, built = starting_from("record_view_family", build, fixture="built")


def client_for(app: Any, name: str) -> TestClient:
    return login(TestClient(app, base_url="http://127.0.0.1", follow_redirects=False), name)


@pytest.mark.parametrize("user", sorted(EXPECTED))
def test_each_role_on_its_own_site_and_the_other(app: Any, built: Built, user: str) -> None:
    client = client_for(app, user)
    for url in pages(built):
        response = client.get(url)
        assert response.status_code == EXPECTED[user], (user, url, response.text[:300])
        if response.status_code == 403:
            assert built.young not in response.text or "may not" in response.text
            assert "Ailsa" not in response.text


def test_cro_coordinator_reads_cro_family_not_gla(db: Database, actors: Actors, app: Any) -> None:
    cro = build(db, actors, "CRO")
    gla = build(db, actors, "GLA")
    client = client_for(app, "coord_cro")
    assert client.get(f"/families/{cro.family}").status_code == 200
    assert client.get(f"/children/{cro.young}").status_code == 200
    assert client.get(f"/families/{gla.family}").status_code == 403
    with db.read() as s:
        placement = s.scalar(
            select(Placement.id).join(Child).where(Child.trial_id == gla.young).limit(1)
        )
    assert client.get(f"/history/placements/{placement}").status_code == 403
    assert client.get(f"/history/children/{gla.young}").status_code == 403


@pytest.mark.parametrize("user", BLINDED)
def test_blinded_roles_read_no_arm(app: Any, built: Built, user: str) -> None:
    client = client_for(app, user)
    for url in pages(built):
        response = client.get(url)
        assert response.status_code == 200
        assert leaks(response.text) == set(), (user, url)
    page = client.get(f"/families/{built.family}").text
    assert "Randomised on 01/04/2024" in page
    assert "[arm masked]" in client.get(f"/children/{built.young}").text
    # the allocation's history: arm columns masked
    with app.state.db.read() as s:
        alloc = s.scalar(select(Allocation.id).join(Family).where(Family.trial_id == built.family))
    history = client.get(f"/history/allocations/{alloc}")
    assert history.status_code == 200 and leaks(history.text) == set()
    assert "[masked: arm]" in history.text


def test_unblinded_roles_read_the_arm(app: Any, built: Built) -> None:
    """The blinded test above can fail: the same pages name the arm for roles that see it."""
    for user in ("coord_gla", "unblinded_stat"):
        page = client_for(app, user).get(f"/families/{built.family}").text
        assert leaks(page), user
        assert 'class="arm"' in page


@pytest.mark.parametrize("user", ["research_gla", "datamanager", "statistician", "unblinded_stat"])
def test_identities_only_for_roles_that_read_them(app: Any, built: Built, user: str) -> None:
    client = client_for(app, user)
    for url in pages(built):
        text = client.get(url).text
        assert not [x for x in IDENTITIES if x in text], (user, url)
        assert ">Identity<" not in text


def test_coordinator_reads_identities(app: Any, built: Built) -> None:
    client = client_for(app, "coord_gla")
    young = client.get(f"/children/{built.young}").text
    assert "Ailsa Brown" in young and "Isla" in young and "G1 1AA" in young
    assert "Morag" in client.get(f"/families/{built.family}").text


def test_grid_is_a_table_and_links_the_next_task(app: Any, built: Built) -> None:
    client = client_for(app, "research_gla")
    page = client.get(f"/children/{built.older}").text
    assert "<caption>Visits and forms of child" in page
    assert '<th scope="col">SDQ</th>' in page and '<th scope="row">' in page
    # the overdue BITSEA of the baseline visit: one click to entering it
    entry = re.search(
        rf'href="/children/{built.older}/assessments/new\?instrument=bitsea&amp;visit=(\d+)"', page
    )
    assert entry, "no link to enter the overdue BITSEA"
    # the late SDQ links to the assessment; the missed 15-month visit says so
    assert re.search(rf'href="/children/{built.older}/assessments/\d+"', page)
    assert "status-complete-late" in page and "status-missed" in page
    assert "status-overdue" in page  # the baseline's PedsQL and BITSEA (read as of today)
    # a read-only role gets the statuses but no link to enter anything
    stat = client_for(app, "statistician").get(f"/children/{built.older}").text
    assert "status-overdue" in stat and "/assessments/new" not in stat


def test_recording_links_for_those_who_may_write(app: Any, built: Built) -> None:
    coord = client_for(app, "coord_gla").get(f"/children/{built.young}").text
    for url in (
        f"/children/{built.young}/placements/new",
        f"/children/{built.young}/legal/new",
        f"/children/{built.young}/sae/new",
        f"/children/{built.young}/deviation/new",
        f"/children/{built.young}/withdraw",
        f"/children/{built.young}/lost",
        f"/children/{built.young}/service-use/new",
    ):
        assert f'href="{url}"' in coord, url
    assert re.search(rf'href="/children/{built.young}/placements/\d+/move"', coord)
    # the overdue 15-month visit: complete it, or record it missed or not required
    for action in ("complete", "missed", "not-required"):
        assert re.search(rf'href="/children/{built.young}/visits/\d+/{action}"', coord), action
    assert re.search(r'href="/history/placements/\d+"', coord)
    assert "/queries/new" not in coord  # queries are raised by the data manager
    family = client_for(app, "coord_gla").get(f"/families/{built.family}").text
    assert f'href="/families/{built.family}/intervention"' in family
    for user in ("research_gla", "statistician", "datamanager"):
        text = client_for(app, user).get(f"/children/{built.young}").text
        assert "/placements/new" not in text, user
        assert ("/missed" in text) == (user == "research_gla"), user  # researchers record visits
        assert "/not-required" not in text, user
        assert f'href="/children/{built.young}/withdraw"' not in text, user
        assert "/intervention" not in client_for(app, user).get(f"/families/{built.family}").text


def test_data_manager_raises_queries_from_the_record(app: Any, built: Built) -> None:
    page = client_for(app, "datamanager").get(f"/children/{built.young}").text
    assert f'href="/queries/new?table=children&amp;record={built.young}&amp;field=sex"' in page
    assert re.search(r'href="/queries/new\?table=placements&amp;record=\d+"', page)
    assert re.search(r'href="/queries/\d+"', page)  # the query already raised


def test_unknown_and_malformed(app: Any, built: Built) -> None:
    client = client_for(app, "coord_gla")
    assert client.get("/families/G-9999-G").status_code == 404
    assert client.get("/families/not-an-id").status_code == 404
    assert client.get(f"/children/{built.family}").status_code == 404  # a family ID
    assert client.get("/history/no_such_table/1").status_code == 404
    assert client.get("/history/children/999999").status_code == 404
    assert client.post(f"/families/{built.family}").status_code == 405


def test_not_logged_in_goes_to_login(app: Any, built: Built) -> None:
    anon = TestClient(app, base_url="http://127.0.0.1", follow_redirects=False)
    response = anon.get(f"/families/{built.family}")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_statements_constant_at_two_sizes(db: Database, actors: Actors, built: Built) -> None:
    from tests.web.conftest import give_passwords

    b = built
    give_passwords(db)
    client = login(make_client(db), "coord_gla")
    counts = []
    for extra in (1, 3):  # 3 families, then 9: the trial grows, the statements must not
        for _ in range(extra):
            build(db, actors)
            build(db, actors, "CRO")
        row = []
        for url in (f"/families/{b.family}", f"/children/{b.young}"):
            # first a request that may move the session on (at most every 30 s), then the one
            # counted: the page's statements alone
            assert client.get(url).status_code == 200
            with count_statements(db) as seen:
                assert client.get(url).status_code == 200
            row.append(len(seen))
        counts.append(row)
    assert counts[0] == counts[1], counts
    assert max(counts[0]) < 45, counts


@pytest.mark.parametrize("user", BLINDED)
def test_demo_records_hold_no_arm(web_demo: WebDemo, user: str) -> None:
    """The demo trial (service use, free texts, every kind of record) as each blinded role:
    record pages of Glasgow families and the histories they link to name no arm."""
    with web_demo.db.read() as s:
        fams = s.scalars(
            select(Family.trial_id).where(Family.trial_id.like("G-%")).order_by(Family.id).limit(6)
        ).all()
    client = demo_login(web_demo, user)
    urls = [f"/families/{f}" for f in fams]
    seen: set[str] = set()
    while urls and len(seen) < 80:
        url = urls.pop(0)
        if url in seen:
            continue
        seen.add(url)
        response = client.get(url)
        assert response.status_code == 200, (user, url, response.status_code)
        assert leaks(response.text) == set(), (user, url, leaks(response.text))
        urls += [
            unescape(u)
            for u in re.findall(r'href="(/children/[^"/?]+|/history/[^"?]+)"', response.text)
            if unescape(u) not in seen
        ]
    assert any(u.startswith("/children/") for u in seen)
    assert any(u.startswith("/history/") for u in seen)


def test_demo_record_pages_for_the_coordinator(web_demo: WebDemo) -> None:
    with web_demo.db.read() as s:
        fam = s.scalar(select(Family.trial_id).where(Family.trial_id.like("G-%")).limit(1))
    client = demo_login(web_demo, "coord_gla")
    page = client.get(f"/families/{fam}")
    assert page.status_code == 200 and leaks(page.text)  # a randomised family: the arm shown
    children = re.findall(r'href="(/children/[^"/]+)"', page.text)
    assert children and client.get(children[0]).status_code == 200
    other = demo_login(web_demo, "coord_cro")
    assert other.get(f"/families/{fam}").status_code == 403
