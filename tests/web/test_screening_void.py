"""Voiding a screening-log entry from the web (``voiding.void_record``): linked from the
log, a reason required beside its field, audited, refused while a live family was
registered from the entry (SCR-014), at the coordinator's own sites only, never without the
CSRF token, and a second void changes nothing."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select
from starlette.testclient import TestClient

from noim.db.models import AuditLog, ScreeningEntry
from noim.db.session import Database
from noim.services import families, screening
from tests.conftest import Actors
from tests.web.conftest import login, post
from tests.web.test_forms import error_beside

SCREENED = date(2025, 6, 2)


def state(db: Database, entry: int) -> tuple[object, ...]:
    """The entry's void columns and the audit rows of the screening log."""
    with db.read() as s:
        e = s.get(ScreeningEntry, entry)
        assert e is not None
        audited = s.scalar(select(func.count()).where(AuditLog.table_name == "screening_log"))
        return e.voided_at, e.void_reason, audited


def an_entry(db: Database, actors: Actors, site: str = "GLA") -> int:
    coord = actors["coord_gla" if site == "GLA" else "coord_cro"]
    return screening.add_entry(db, coord, site, SCREENED, 2, True, reference="REF-7").id


def test_the_log_links_the_void_form_which_voids_with_a_reason(
    db: Database, actors: Actors, client: TestClient
) -> None:
    entry = an_entry(db, actors)
    url = f"/screening/{entry}/void"
    login(client, "coord_gla")
    log = client.get("/screening").text
    assert f'href="{url}"' in log
    page = client.get(url)
    assert page.status_code == 200
    assert ">Why it was recorded in error <span" in page.text and "REF-7" in page.text
    assert f'action="{url}"' in page.text

    before = state(db, entry)
    refused = post(client, url, {"reason": " "})
    assert refused.status_code == 422
    assert "Expected a reason" in error_beside(refused.text, "reason")
    assert state(db, entry) == before

    done = post(client, url, {"reason": "screened twice"})
    assert done.status_code == 303 and done.headers["location"] == "/screening"
    voided_at, reason, audited = state(db, entry)
    assert voided_at is not None and reason == "screened twice" and audited > before[2]
    with db.read() as s:
        rows = s.execute(
            select(AuditLog.action, AuditLog.reason).where(
                AuditLog.table_name == "screening_log", AuditLog.row_key == str(entry)
            )
        ).all()
    assert ("void", "screened twice") in {(r[0], r[1]) for r in rows}

    # void now: no link in the log, the form says so, and a second void changes nothing
    assert f'href="{url}"' not in client.get("/screening").text
    assert "is void already" in client.get(url).text
    after = state(db, entry)
    again = post(client, url, {"reason": "again"}, follow_redirects=True)
    assert "already void: nothing changed" in again.text
    assert state(db, entry) == after


def test_an_entry_a_live_family_was_registered_from_is_refused(
    db: Database, actors: Actors, client: TestClient
) -> None:
    entry = an_entry(db, actors)
    fam = families.register_family(db, actors["coord_gla"], "GLA")
    screening.enrol(db, actors["coord_gla"], entry, fam.trial_id)
    url = f"/screening/{entry}/void"
    login(client, "coord_gla")
    assert f'Family <a href="/families/{fam.trial_id}">' in client.get(url).text
    before = state(db, entry)
    refused = post(client, url, {"reason": "screened twice"})
    assert refused.status_code == 422
    summary = refused.text.split('class="error-summary"', 1)[1].split("</div>", 1)[0]
    assert "SCR-014" in summary and fam.trial_id in summary
    assert state(db, entry) == before


def test_other_sites_roles_without_write_and_requests_without_csrf_write_nothing(
    db: Database, actors: Actors, client: TestClient
) -> None:
    entry = an_entry(db, actors)
    url = f"/screening/{entry}/void"
    before = state(db, entry)
    login(client, "coord_cro")
    assert client.get(url).status_code == 403
    assert post(client, url, {"reason": "not ours"}).status_code == 403
    assert f'href="{url}"' not in client.get("/screening").text
    client.cookies.clear()
    login(client, "research_gla")
    assert client.get(url).status_code == 403
    assert post(client, url, {"reason": "x"}).status_code == 403
    assert "/void" not in client.get("/screening").text
    client.cookies.clear()
    login(client, "coord_gla")
    assert client.post(url, data={"reason": "no token"}).status_code == 403
    assert client.get("/screening/999999/void").status_code == 404
    assert client.get("/screening/abc/void").status_code == 404
    assert state(db, entry) == before
