"""The forms on recorded legal events and proceedings: correct or void an event, end,
correct or void proceedings.  Each is linked from the child's page, writes through its one
service with an audit row (a reason where the service asks one), refuses bad input beside
the field (422, nothing written), and keeps another site's coordinator, the researcher and
a request without the CSRF token out."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from noim.db.models import AuditLog, Child, Family, LegalEvent, LegalProceedings, Site
from noim.db.session import Database
from noim.services import legal
from tests.conftest import Actors
from tests.web.conftest import WebDemo, demo_login, login, post
from tests.web.test_forms import DAY, Kids, dmy, error_beside, kids  # noqa: F401

LEGAL_TABLES = ("legal_events", "legal_proceedings")


@dataclass(frozen=True)
class Legal:
    child: str  # the GLA child (Scotland)
    other: str  # a CRO child
    entered: date  # the child entered care; the proceedings start then
    proceedings: int
    event: int  # an interim order of the proceedings, the day after

    @property
    def base(self) -> str:
        return f"/children/{self.child}/legal"


@pytest.fixture
def rec(db: Database, actors: Actors, kids: Kids) -> Legal:  # noqa: F811
    """Proceedings of the GLA child (Scotland), and an interim order within them."""
    gla = actors["coord_gla"]
    p = legal.open_proceedings(db, gla, kids.gla, "childrens_hearing", kids.entered)
    e = legal.record_event(db, gla, kids.gla, "sc.icso", kids.entered + DAY, p.id)
    return Legal(kids.gla, kids.cro, kids.entered, p.id, e.id)


def urls(r: Legal) -> dict[str, str]:
    """Every new form, by name."""
    ev, pr = f"{r.base}/events/{r.event}", f"{r.base}/proceedings/{r.proceedings}"
    return {
        "event-correct": f"{ev}/correct",
        "event-void": f"{ev}/void",
        "proceedings-end": f"{pr}/end",
        "proceedings-correct": f"{pr}/correct",
        "proceedings-void": f"{pr}/void",
    }


def valid(r: Legal) -> dict[str, dict[str, str]]:
    """A POST each form accepts (from the state of the ``rec`` fixture)."""
    return {
        "event-correct": {
            "event_type": "sc.cso",
            "event_date": dmy(r.entered + DAY),
            "proceedings_id": str(r.proceedings),
            "reason": "it was the full order",
        },
        "event-void": {"reason": "entered for the wrong child"},
        "proceedings-end": {"ended_on": dmy(r.entered + 5 * DAY)},
        "proceedings-correct": {
            "kind": "childrens_hearing",
            "started_on": dmy(r.entered),
            "court_or_panel": "Glasgow panel",
            "reason": "panel name added",
        },
        "proceedings-void": {"reason": "duplicate"},
    }


def stored(db: Database, r: Legal) -> tuple[object, ...]:
    """What the forms may change, and the audit rows of the legal tables."""
    with db.read() as s:
        e = s.get(LegalEvent, r.event)
        p = s.get(LegalProceedings, r.proceedings)
        assert e is not None and p is not None
        return (
            e.event_type_code,
            e.event_date,
            e.proceedings_id,
            e.notes,
            e.voided_at,
            p.kind,
            p.started_on,
            p.ended_on,
            p.court_or_panel,
            p.voided_at,
            s.scalar(select(func.count()).where(AuditLog.table_name.in_(LEGAL_TABLES))),
        )


def audit_reasons(db: Database, table: str, action: str) -> list[tuple[str, str | None]]:
    with db.read() as s:
        return [
            (str(f), reason)
            for f, reason in s.execute(
                select(AuditLog.field, AuditLog.reason).where(
                    AuditLog.table_name == table, AuditLog.action == action
                )
            )
        ]


# --------------------------------------------------------------------------- links, labels


def test_the_childs_page_links_to_each_form_and_each_form_has_its_labels(
    client: TestClient, rec: Legal
) -> None:
    login(client, "coord_gla")
    page = client.get(f"/children/{rec.child}").text
    labels = {
        "event-correct": ["Event or decision", "Date", "Reason for the correction"],
        "event-void": ["Why it was recorded in error"],
        "proceedings-end": ["Ended on"],
        "proceedings-correct": ["Kind of proceedings", "Started on", "Reason for the correction"],
        "proceedings-void": ["Why it was recorded in error"],
    }
    for name, url in urls(rec).items():
        assert f'href="{url}"' in page, name
        form = client.get(url)
        assert form.status_code == 200, (name, form.status_code)
        for label in labels[name]:
            assert f">{label} <span" in form.text or f">{label}</label>" in form.text, label
        assert f'action="{url}"' in form.text
    correct = client.get(urls(rec)["event-correct"]).text
    assert '<option value="sc.icso" selected>' in correct  # pre-filled as stored
    assert f'value="{dmy(rec.entered + DAY)}"' in correct


def test_the_researcher_sees_no_form_link_and_is_refused_the_forms(
    db: Database,
    client: TestClient,
    rec: Legal,
) -> None:
    login(client, "research_gla")
    page = client.get(f"/children/{rec.child}")
    assert page.status_code == 200
    before = stored(db, rec)
    for name, url in urls(rec).items():
        assert f'href="{url}"' not in page.text, name
        assert client.get(url).status_code == 403, name
        assert post(client, url, valid(rec)[name]).status_code == 403, name
    assert stored(db, rec) == before


# --------------------------------------------------------------------------- legal events


def test_correct_a_legal_event(db: Database, client: TestClient, rec: Legal) -> None:
    login(client, "coord_gla")
    url = urls(rec)["event-correct"]
    good = valid(rec)["event-correct"]
    before = stored(db, rec)

    missing_reason = post(client, url, {**good, "reason": ""})
    assert missing_reason.status_code == 422
    assert "reason" in error_beside(missing_reason.text, "reason")
    bad_date = post(client, url, {**good, "event_date": "31/02/2025"})
    assert bad_date.status_code == 422
    assert "dd/mm/yyyy" in error_beside(bad_date.text, "event_date")
    assert 'value="31/02/2025"' in bad_date.text  # what was typed is kept
    wrong_vocabulary = post(client, url, {**good, "event_type": "en.C2"})
    assert wrong_vocabulary.status_code == 422
    assert "LGL-005" in error_beside(wrong_vocabulary.text, "event_type")
    unchanged = post(
        client,
        url,
        {**good, "event_type": "sc.icso", "reason": "nothing really"},
    )
    assert unchanged.status_code == 422
    assert "at least one field changed" in error_beside(unchanged.text, "event_type")
    assert stored(db, rec) == before

    done = post(client, url, good)
    assert done.status_code == 303, done.text[:800]
    assert done.headers["location"] == f"/children/{rec.child}"
    with db.read() as s:
        e = s.get(LegalEvent, rec.event)
        assert e is not None and e.event_type_code == "sc.cso"
    assert ("event_type_code", "it was the full order") in audit_reasons(
        db, "legal_events", "update"
    )


def test_void_a_legal_event(db: Database, client: TestClient, rec: Legal) -> None:
    login(client, "coord_gla")
    url = urls(rec)["event-void"]
    before = stored(db, rec)
    refused = post(client, url, {"reason": "  "})
    assert refused.status_code == 422
    assert "Expected a reason" in error_beside(refused.text, "reason")
    assert stored(db, rec) == before

    done = post(client, url, {"reason": "entered for the wrong child"})
    assert done.status_code == 303
    with db.read() as s:
        e = s.get(LegalEvent, rec.event)
        assert e is not None and e.voided_at is not None
        assert e.void_reason == "entered for the wrong child"
    assert ("void_reason", "entered for the wrong child") in audit_reasons(
        db, "legal_events", "void"
    )
    # void now: no more links to change it; its forms say so, and voiding again writes nothing
    page = client.get(f"/children/{rec.child}").text
    assert f'href="{url}"' not in page and f'href="{urls(rec)["event-correct"]}"' not in page
    assert "is void: it can no longer be changed" in client.get(url).text
    after = stored(db, rec)
    again = post(client, url, {"reason": "twice"}, follow_redirects=True)
    assert "already void: nothing changed" in again.text
    assert stored(db, rec) == after
    refused = post(client, urls(rec)["event-correct"], valid(rec)["event-correct"])
    assert refused.status_code == 422 and "LGL-008" in refused.text
    assert stored(db, rec) == after


# --------------------------------------------------------------------------- proceedings


def test_end_proceedings(db: Database, client: TestClient, rec: Legal) -> None:
    login(client, "coord_gla")
    url = urls(rec)["proceedings-end"]
    before = stored(db, rec)
    for typed, rule in (("", "WEB-004"), ("1/13/2025", "WEB-001")):
        refused = post(client, url, {"ended_on": typed})
        assert refused.status_code == 422
        assert rule in error_beside(refused.text, "ended_on")
    too_early = post(client, url, {"ended_on": dmy(rec.entered - DAY)})
    assert too_early.status_code == 422
    assert "LGL-004" in error_beside(too_early.text, "ended_on")
    assert stored(db, rec) == before

    done = post(client, url, {"ended_on": dmy(rec.entered + 5 * DAY)})
    assert done.status_code == 303, done.text[:800]
    with db.read() as s:
        p = s.get(LegalProceedings, rec.proceedings)
        assert p is not None and p.ended_on == rec.entered + 5 * DAY
    assert stored(db, rec)[-1] > before[-1]
    assert f'href="{url}"' not in client.get(f"/children/{rec.child}").text  # ended
    twice = post(client, url, {"ended_on": dmy(rec.entered + 6 * DAY)})
    assert twice.status_code == 422
    assert "LGL-004" in error_beside(twice.text, "ended_on")


def test_correct_proceedings(db: Database, client: TestClient, rec: Legal) -> None:
    login(client, "coord_gla")
    url = urls(rec)["proceedings-correct"]
    page = client.get(url).text
    assert '<option value="childrens_hearing" selected>' in page
    assert f'value="{dmy(rec.entered)}"' in page
    good = valid(rec)["proceedings-correct"]
    before = stored(db, rec)
    missing_reason = post(client, url, {**good, "reason": ""})
    assert missing_reason.status_code == 422 and error_beside(missing_reason.text, "reason")
    bad_date = post(client, url, {**good, "ended_on": "yesterday"})
    assert bad_date.status_code == 422
    assert "dd/mm/yyyy" in error_beside(bad_date.text, "ended_on")
    english = post(client, url, {**good, "kind": "care_proceedings"})
    assert english.status_code == 422
    assert "LGL-001" in error_beside(english.text, "kind")
    assert stored(db, rec) == before

    done = post(client, url, good)
    assert done.status_code == 303, done.text[:800]
    with db.read() as s:
        p = s.get(LegalProceedings, rec.proceedings)
        assert p is not None and p.court_or_panel == "Glasgow panel"
    assert ("court_or_panel", "panel name added") in audit_reasons(
        db, "legal_proceedings", "update"
    )


def test_void_proceedings_only_once_their_events_are_void(
    db: Database, client: TestClient, rec: Legal
) -> None:
    login(client, "coord_gla")
    url = urls(rec)["proceedings-void"]
    before = stored(db, rec)
    assert post(client, url, {"reason": ""}).status_code == 422
    with_events = post(client, url, {"reason": "duplicate"})
    assert with_events.status_code == 422
    assert "LGL-022" in with_events.text and 'class="error-summary"' in with_events.text
    assert stored(db, rec) == before
    assert post(client, urls(rec)["event-void"], {"reason": "duplicate"}).status_code == 303
    done = post(client, url, {"reason": "duplicate"})
    assert done.status_code == 303
    with db.read() as s:
        p = s.get(LegalProceedings, rec.proceedings)
        assert p is not None and p.voided_at is not None and p.void_reason == "duplicate"
    assert ("void_reason", "duplicate") in audit_reasons(db, "legal_proceedings", "void")


# --------------------------------------------------------------------------- refusals


def test_another_sites_coordinator_is_refused_and_nothing_is_written(
    db: Database,
    client: TestClient,
    rec: Legal,
) -> None:
    login(client, "coord_cro")
    before = stored(db, rec)
    for name, url in urls(rec).items():
        assert client.get(url).status_code == 403, name
        response = post(client, url, valid(rec)[name])
        assert response.status_code in (403, 404), name
    # the record's id under the CRO child's own URL is not that child's record
    for name, url in urls(rec).items():
        theirs = url.replace(rec.child, rec.other)
        assert client.get(theirs).status_code == 404, name
        assert post(client, theirs, valid(rec)[name]).status_code == 404, name
    assert stored(db, rec) == before


def test_a_post_without_csrf_writes_nothing(
    db: Database,
    client: TestClient,
    rec: Legal,
) -> None:
    login(client, "coord_gla")
    before = stored(db, rec)
    for name, url in urls(rec).items():
        response = client.post(url, data=valid(rec)[name])
        assert response.status_code == 403, name
        assert "CSRF" in response.text
    assert stored(db, rec) == before


@pytest.mark.parametrize(
    "tail", ["events/{e}/delete", "events/x/void", "proceedings/{p}/open", "events/999999/void"]
)
def test_unknown_actions_and_records_are_not_found(
    client: TestClient, rec: Legal, tail: str
) -> None:
    login(client, "coord_gla")
    url = f"{rec.base}/" + tail.format(e=rec.event, p=rec.proceedings)
    assert client.get(url).status_code == 404


@pytest.mark.parametrize(
    "name",
    ["event-correct", "event-void", "proceedings-correct", "proceedings-end", "proceedings-void"],
)
def test_each_form_sent_empty_comes_back_and_writes_nothing(
    db: Database, client: TestClient, rec: Legal, name: str
) -> None:
    login(client, "coord_gla")
    before = stored(db, rec)
    response = post(client, urls(rec)[name], {})
    assert response.status_code == 422, (name, response.status_code, response.text[:300])
    assert 'class="error-summary"' in response.text
    assert stored(db, rec) == before


def test_every_legal_link_of_a_demo_childs_page_opens_its_form(web_demo: WebDemo) -> None:
    """On the demonstration trial, the coordinator follows each legal link of a child's page
    with live proceedings and events: every one opens its form (the pages the blinded crawl
    is never shown, since those roles may not write)."""
    with web_demo.db.read() as s:
        child = s.scalars(
            select(Child.trial_id)
            .join(LegalEvent, LegalEvent.child_id == Child.id)
            .join(LegalProceedings, LegalProceedings.id == LegalEvent.proceedings_id)
            .join(Family, Family.id == Child.family_id)
            .join(Site, Site.id == Family.site_id)
            .where(
                Site.code == "GLA",
                LegalEvent.voided_at.is_(None),
                LegalProceedings.voided_at.is_(None),
            )
            .order_by(Child.id)
            .limit(1)
        ).one()
    client = demo_login(web_demo, "coord_gla")
    page = client.get(f"/children/{child}").text
    links = sorted(set(re.findall(rf'href="(/children/{child}/legal/[^"]+)"', page)))
    kinds = {re.sub(r"\d+", "N", link.rsplit("/legal/", 1)[1]) for link in links}
    assert {"events/N/correct", "events/N/void", "proceedings/N/correct"} <= kinds, kinds
    for link in links:
        form = client.get(link)
        assert form.status_code == 200, (link, form.status_code)
        assert f'action="{link}"' in form.text and 'name="csrf_token"' in form.text
