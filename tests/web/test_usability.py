"""Route tests for what the browser journeys (tests/web/test_journeys.py) found.

* The home page links each instrument a due visit still expects at the child's age, the
  visit named by its id (the next task one click from home); the visit's page by its id
  has that visit chosen and offers the same instruments, each one click away.
* A saved assessment's page leads to the other forms of its visit (roles that enter them).
* A per-child field (``c1_decided_on``) is named by its child in the error summary.
* Every input of the pages has a label of its own: no id is used twice on a page (the
  administrator's user page had two inputs ``f-reason``, so the second had no label).
"""

from __future__ import annotations

import re
from collections import Counter
from html.parser import HTMLParser

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from noim.db.base import utcnow
from noim.db.models import FollowUpVisit
from noim.db.session import Database
from noim.services import assessment_entry, randomisation, users
from tests.conftest import Actors
from tests.factories import family_with_children
from tests.test_randomisation import SEED
from tests.web.conftest import WebDemo, demo_login, login, post
from tests.web.test_forms import _randomised


def test_a_visit_given_by_id_is_chosen_and_its_instruments_offered(
    db: Database, actors: Actors, client: TestClient
) -> None:
    randomisation.setup(db, users.resolve_actor(db, "admin"), SEED)
    _family, child = _randomised(db, actors, "GLA", 36)  # about 38 months at baseline
    with db.read() as s:
        visit = s.scalar(select(FollowUpVisit.id).where(FollowUpVisit.timepoint_code == "baseline"))
    login(client, "coord_gla")
    home = client.get("/")
    # the due baseline visit, from home: each form it expects at 38 months is a link of its
    # own (one click to the form), the BITSEA (to 35 months) is not
    for instrument in ("sdq", "pedsql"):
        assert f"/children/{child}/assessments/new?instrument={instrument}&amp;visit={visit}" in (
            home.text
        )
    assert "instrument=bitsea" not in home.text
    link = f"/children/{child}/assessments/new?visit={visit}"  # the visit's other forms
    page = client.get(link)
    assert page.status_code == 200
    assert re.search(r'<option value="baseline" selected>', page.text), page.text
    for instrument in ("sdq", "pedsql"):  # expected at 38 months; the BITSEA is not
        assert f"/children/{child}/assessments/new?instrument={instrument}&amp;visit=baseline" in (
            page.text
        )
    assert "instrument=bitsea&amp;visit=baseline" not in page.text
    opened = client.get(f"/children/{child}/assessments/new?instrument=sdq&visit=baseline")
    assert opened.status_code == 200 and "Strengths and Difficulties" in opened.text
    # another site's coordinator is refused the page, visit id or not
    other = TestClient(client.app, base_url="http://127.0.0.1", follow_redirects=False)
    login(other, "coord_cro")
    assert other.get(link).status_code == 403


class _Fields(HTMLParser):
    """The ids, label targets and form fields of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.label_for: set[str] = set()
        self.fields: list[dict[str, str | None]] = []
        self.in_label = 0
        self.wrapped: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.append(str(a["id"]))
        if tag == "label":
            self.in_label += 1
            if a.get("for"):
                self.label_for.add(str(a["for"]))
        if tag in ("input", "select", "textarea") and a.get("type") not in (
            "hidden",
            "submit",
            "button",
        ):
            self.fields.append(a)
            if self.in_label:
                self.wrapped.append(a)

    def handle_endtag(self, tag: str) -> None:
        if tag == "label" and self.in_label:
            self.in_label -= 1


def label_problems(html: str) -> list[str]:
    """Ids used more than once, and fields with no label (for=, wrapping, or aria-label)."""
    parsed = _Fields()
    parsed.feed(html)
    problems = [f"id {i!r} used {n} times" for i, n in Counter(parsed.ids).items() if n > 1]
    for field in parsed.fields:
        labelled = (
            field in parsed.wrapped
            or (field.get("id") and field["id"] in parsed.label_for)
            or (field.get("aria-label") or "").strip()
            or field.get("aria-labelledby")
        )
        if not labelled:
            problems.append(f"no label: {field}")
    return problems


PAGES = {
    "coord_gla": ["/", "/screening", "/screening/new", "/families/new", "/queries", "/imports"],
    "datamanager": ["/", "/queries", "/queries/new", "/check", "/freezes", "/audit"],
    "dmc_chair": ["/", "/reports", "/freezes"],
    "statistician": ["/", "/reports", "/datasets"],
    "admin": ["/admin/users", "/admin/users/new", "/admin/roles", "/admin/users/coord_gla"],
}


@pytest.mark.parametrize("user", sorted(PAGES))
def test_every_field_has_its_own_label(web_demo: WebDemo, user: str) -> None:
    client = demo_login(web_demo, user)
    pages = list(PAGES[user])
    if user == "coord_gla":  # a family's and a child's page, their forms
        home = client.get("/").text
        child = re.search(r'href="/children/([A-Z0-9-]+)"', home)
        family = re.search(r'href="/families/([A-Z0-9-]+)"', client.get("/screening").text)
        assert child, "no child linked from the demo coordinator's home"
        pages += [f"/children/{child.group(1)}", f"/children/{child.group(1)}/placements/new"]
        pages += [f"/children/{child.group(1)}/sae/new", f"/children/{child.group(1)}/withdraw"]
        if family:
            pages.append(f"/families/{family.group(1)}")
    for url in pages:
        page = client.get(url)
        assert page.status_code == 200, (url, page.status_code)
        assert label_problems(page.text) == [], url


def test_a_childs_field_is_named_by_the_child_in_the_error_summary(
    db: Database, actors: Actors, client: TestClient
) -> None:
    """The per-child fields (``c1_decided_on``) are named "child 1: decided on" in the
    summary, which links to the field; the error is beside it and the typed date kept."""
    family = family_with_children(db, actors["coord_gla"], "GLA", (10,)).trial_id
    login(client, "coord_gla")
    refused = post(
        client,
        f"/families/{family}/eligibility",
        {"child": "1", "c1_eligible": "yes", "c1_decided_on": "31/02/2026"},
    )
    assert refused.status_code == 422
    summary = refused.text.split('id="error-summary"', 1)[1].split("</div>", 1)[0]
    assert '<a href="#f-c1_decided_on">child 1: decided on:' in summary, summary
    assert 'id="e-c1_decided_on"' in refused.text and 'value="31/02/2026"' in refused.text


def test_a_saved_assessment_leads_to_the_other_forms_of_its_visit(
    db: Database, actors: Actors, client: TestClient
) -> None:
    randomisation.setup(db, users.resolve_actor(db, "admin"), SEED)
    _family, child = _randomised(db, actors, "GLA", 36)
    answers = dict.fromkeys(range(1, 26), 1)
    saved = assessment_entry.enter_assessment(
        db, actors["coord_gla"], child, "baseline", "sdq", utcnow().date(), answers, "carer", "2-4"
    )
    next_link = f'href="/children/{child}/assessments/new?visit=baseline">Next: the other forms'
    login(client, "coord_gla")
    shown = client.get(f"/children/{child}/assessments/{saved.id}")
    assert shown.status_code == 200 and next_link in shown.text
    following = client.get(f"/children/{child}/assessments/new?visit=baseline")
    assert "instrument=pedsql&amp;visit=baseline" in following.text  # still expected
    other = TestClient(client.app, base_url="http://127.0.0.1", follow_redirects=False)
    login(other, "datamanager")  # reads the record, enters no assessment: no such link
    read_only = other.get(f"/children/{child}/assessments/{saved.id}")
    assert read_only.status_code == 200 and next_link not in read_only.text
