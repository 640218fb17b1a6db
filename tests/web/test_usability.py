"""Route tests for what the browser journeys (tests/web/test_journeys.py) found.

* The home page's "Enter assessment" link names the visit by its id: the page it opens has
  that visit chosen and offers the instruments the visit expects at the child's age, each
  one click away (the next task within reach of home).
"""

from __future__ import annotations

import re

from sqlalchemy import select
from starlette.testclient import TestClient

from noim.db.models import FollowUpVisit
from noim.db.session import Database
from noim.services import randomisation, users
from tests.conftest import Actors
from tests.test_randomisation import SEED
from tests.web.conftest import login
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
    link = f"/children/{child}/assessments/new?visit={visit}"
    assert link in home.text  # the due baseline visit, from home
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
