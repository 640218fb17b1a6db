"""The next task is never more than one click from home (issue 12, section 4).

On the demonstration trial, every "next step" link of the work queue opens the form that
does the task: each instrument still to enter at a due visit (the due and overdue cells of
the child's status grid, as ``work_queue`` lists them), the query's answer, the gate's
missing item or the randomisation, the SAE's follow-up.  A blinded researcher's links
open too, and name no arm.
"""

from __future__ import annotations

import re
from html import unescape

import pytest

from noim.services import record_view, users
from noim.services.workqueue import work_queue
from tests.test_blinding_attacks import ARM_WORDS
from tests.web.conftest import DEMO_AS_OF, WebDemo, demo_login

#: the labels of the work queue's "next step" links
STEP = re.compile(
    r'<a href="([^"]+)"[^>]*>(Enter the [^<]+|Record the visit|Answer|Follow up|'
    r"Record eligibility|Record consent|Randomise)</a>"
)


def next_steps(home: str) -> list[tuple[str, str]]:
    """(url, label) of every next-step link of the home page."""
    return [(unescape(url), label) for url, label in STEP.findall(home)]


@pytest.mark.parametrize("user", ["coord_gla", "research_gla"])
def test_every_next_step_of_home_opens_its_form(web_demo: WebDemo, user: str) -> None:
    client = demo_login(web_demo, user)
    home = client.get("/")
    assert home.status_code == 200
    steps = next_steps(home.text)
    # the demo has visits due at GLA (its queries, waiting families and SAEs: the
    # work-queue tests of tests/web/test_coord.py build them)
    assert any(label.startswith("Enter the ") for _url, label in steps), steps
    for url, label in steps:
        page = client.get(url)
        assert page.status_code == 200, (user, url, page.status_code)
        assert 'method="post"' in page.text and 'name="csrf_token"' in page.text, url
        if label.startswith("Enter the "):
            assert "/assessments/new?instrument=" in url
            assert 'name="assessed_on"' in page.text or "No form of this instrument" in page.text
        if user == "research_gla":
            for word in ARM_WORDS:
                assert not re.search(rf"\b{re.escape(word)}\b", page.text, re.IGNORECASE), (
                    url,
                    word,
                )


def test_each_due_visit_links_the_forms_its_grid_shows_due(web_demo: WebDemo) -> None:
    coord = users.resolve_actor(web_demo.db, "coord_gla")
    queue = work_queue(web_demo.db, coord, as_of=DEMO_AS_OF)
    assert queue.followups and set(queue.followup_forms) == {v.visit_id for v in queue.followups}
    several = 0
    for v in queue.followups:
        grid = record_view.child_view(web_demo.db, coord, v.child, today=DEMO_AS_OF).grid
        row = next(r for r in grid.rows if r.timepoint == v.timepoint)
        due = {c.form for c in row.cells[1:] if c.status in ("due", "overdue")}
        assert set(queue.followup_forms[v.visit_id]) == due, (v.child, v.timepoint)
        several += len(due) > 1
    assert several, "no due visit of the demo expects more than one form"
