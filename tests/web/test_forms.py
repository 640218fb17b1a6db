"""The recording forms: each posts through its one service, refuses bad input beside the
field (status 422, nothing written), keeps other sites' children out, and keeps the arm
from blinded roles."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from noim import instruments
from noim.db.base import utcnow
from noim.db.models import (
    Assessment,
    AuditLog,
    Child,
    Family,
    FollowUpVisit,
    InterventionReceipt,
    LegalEvent,
    LegalProceedings,
    LossToFollowUp,
    Placement,
    ProtocolDeviation,
    SeriousAdverseEvent,
    ServiceUse,
    Site,
    Withdrawal,
)
from noim.db.session import Database
from noim.domain.durations import add_months
from noim.domain.trialdef import default_definition
from noim.services import consent, economics, families, placements, randomisation, users
from tests.conftest import Actors
from tests.test_blinding_attacks import ARM_WORDS
from tests.test_randomisation import SEED
from tests.web.conftest import WebDemo, count_statements, demo_login, login, post

DAY = timedelta(days=1)


@dataclass(frozen=True)
class Kids:
    gla: str  # a randomised GLA child of about 38 months
    cro: str  # a randomised CRO child of about 38 months
    gla_family: str
    entered: date


def _randomised(db: Database, actors: Actors, site: str, age_at_entry: int) -> tuple[str, str]:
    coord = actors["coord_gla" if site == "GLA" else "coord_cro"]
    entered = utcnow().date() - 60 * DAY
    la = {"GLA": "GCC", "CRO": "CROY"}[site]
    fam = families.register_family(db, coord, site, la, True if site == "CRO" else None)
    child = families.add_child(
        db, coord, fam.trial_id, add_months(entered, -age_at_entry), "female", entered
    )
    consent.decide_eligibility(db, coord, child.trial_id, True, entered + DAY)
    consent.record_consent(db, coord, child.trial_id, "local_authority", "v3", entered + DAY)
    randomisation.randomise(db, coord, fam.trial_id)
    return fam.trial_id, child.trial_id


@pytest.fixture
def kids(db: Database, actors: Actors, client: TestClient) -> Kids:
    randomisation.setup(db, users.resolve_actor(db, "admin"), SEED)
    fam, gla = _randomised(db, actors, "GLA", 36)
    _, cro = _randomised(db, actors, "CRO", 36)
    return Kids(gla, cro, fam, utcnow().date() - 60 * DAY)


def count(db: Database, model: type) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def counts(db: Database, model: type) -> tuple[int, int]:
    """Rows of ``model`` and rows of the audit trail."""
    return count(db, model), count(db, AuditLog)


def dmy(d: date) -> str:
    return d.strftime("%d/%m/%Y")


def error_beside(html: str, field: str) -> str:
    """The error text shown beside ``field`` (asserts there is one)."""
    found = re.search(rf'<span class="field-error" id="e-{field}">([^<]*)</span>', html)
    assert found, f"no error beside {field}"
    return found.group(1)


def arm_words() -> list[str]:
    return default_definition().arm_words()


def assert_no_arm(html: str) -> None:
    """No arm word in the page's content (the trial's own name, "NIM trial", is the
    skeleton's header and footer, not an allocation)."""
    main = html.split('<main id="main"', 1)[-1].split("</main>", 1)[0]
    for word in arm_words():
        assert not re.search(rf"\b{re.escape(word)}\b", main), word


def refused_and_unchanged(
    db: Database, client: TestClient, url: str, data: dict[str, Any], model: type
) -> None:
    before = counts(db, model)
    response = post(client, url, data)
    assert response.status_code in (403, 404), response.text[:300]
    assert counts(db, model) == before


# --------------------------------------------------------------------------- placements


def test_placement_add_move_end_correct_void(db: Database, client: TestClient, kids: Kids) -> None:
    login(client, "coord_gla")
    url = f"/children/{kids.gla}/placements/new"
    page = client.get(url)
    assert page.status_code == 200 and 'name="start_date"' in page.text
    before = counts(db, Placement)
    start = kids.entered
    response = post(client, url, {"start_date": dmy(start), "placement_type": "foster"})
    assert response.status_code == 303, response.text[:500]
    assert response.headers["location"] == f"/children/{kids.gla}"
    rows, audited = counts(db, Placement)
    assert rows == before[0] + 1 and audited > before[1]
    with db.read() as s:
        first = s.scalars(select(Placement).order_by(Placement.id.desc())).first()
        assert first is not None and first.start_date == start
        pid = first.id

    moved_on = start + 10 * DAY
    response = post(
        client,
        f"/children/{kids.gla}/placements/{pid}/move",
        {"on": dmy(moved_on), "end_reason": "disruption", "placement_type": "kinship"},
    )
    assert response.status_code == 303, response.text[:800]
    with db.read() as s:
        rows_now = s.scalars(select(Placement).order_by(Placement.id)).all()
        assert rows_now[-2].end_date == moved_on and rows_now[-2].end_reason == "disruption"
        assert rows_now[-1].start_date == moved_on and rows_now[-1].placement_type == "kinship"
        second = rows_now[-1].id

    response = post(
        client,
        f"/children/{kids.gla}/placements/{second}/end",
        {"end_date": dmy(moved_on + 5 * DAY), "end_reason": "return_home"},
    )
    assert response.status_code == 303, response.text[:800]

    page = client.get(f"/children/{kids.gla}/placements/{second}/correct")
    assert page.status_code == 200 and dmy(moved_on) in page.text  # pre-filled
    response = post(
        client,
        f"/children/{kids.gla}/placements/{second}/correct",
        {
            "start_date": dmy(moved_on),
            "end_date": dmy(moved_on + 6 * DAY),
            "placement_type": "kinship",
            "end_reason": "return_home",
            "reason": "end date mistyped",
        },
    )
    assert response.status_code == 303, response.text[:800]
    with db.read() as s:
        corrected = s.get(Placement, second)
        assert corrected is not None and corrected.end_date == moved_on + 6 * DAY

    before = counts(db, Placement)
    response = post(client, f"/children/{kids.gla}/placements/{second}/void", {"reason": ""})
    assert response.status_code == 422
    assert "reason" in error_beside(response.text, "reason")
    assert counts(db, Placement) == before
    response = post(
        client, f"/children/{kids.gla}/placements/{second}/void", {"reason": "entered twice"}
    )
    assert response.status_code == 303
    with db.read() as s:
        voided = s.get(Placement, second)
        assert voided is not None and voided.voided_at is not None


def test_bad_placement_is_shown_beside_the_fields_and_writes_nothing(
    db: Database, client: TestClient, kids: Kids
) -> None:
    login(client, "coord_gla")
    url = f"/children/{kids.gla}/placements/new"
    before = counts(db, Placement)
    response = post(client, url, {"start_date": "31/02/2025", "placement_type": "foster"})
    assert response.status_code == 422
    assert "dd/mm/yyyy" in error_beside(response.text, "start_date")
    assert 'value="31/02/2025"' in response.text  # what was typed is kept
    future = utcnow().date() + 30 * DAY
    response = post(client, url, {"start_date": dmy(future), "placement_type": "spaceship"})
    assert response.status_code == 422
    assert "PLC-001" in error_beside(response.text, "placement_type")
    assert "PLC-003" in error_beside(response.text, "start_date")
    assert counts(db, Placement) == before


def test_another_sites_coordinator_and_the_researcher_may_not_record_placements(
    db: Database, client: TestClient, kids: Kids
) -> None:
    login(client, "coord_cro")
    url = f"/children/{kids.gla}/placements/new"
    assert client.get(url).status_code == 403
    refused_and_unchanged(
        db, client, url, {"start_date": dmy(kids.entered), "placement_type": "foster"}, Placement
    )
    client.cookies.clear()
    login(client, "research_gla")
    assert client.get(url).status_code == 403
    refused_and_unchanged(
        db, client, url, {"start_date": dmy(kids.entered), "placement_type": "foster"}, Placement
    )


# --------------------------------------------------------------------------- legal


def test_legal_forms_offer_the_jurisdictions_vocabulary(
    db: Database, client: TestClient, kids: Kids
) -> None:
    login(client, "coord_gla")
    page = client.get(f"/children/{kids.gla}/legal/new")
    assert page.status_code == 200
    assert 'value="sc.cso"' in page.text and 'value="en.C2"' not in page.text
    client.cookies.clear()
    login(client, "coord_cro")
    page = client.get(f"/children/{kids.cro}/legal/new")
    assert 'value="en.C2"' in page.text and 'value="sc.cso"' not in page.text
    assert client.get(f"/children/{kids.gla}/legal/new").status_code == 403

    response = post(
        client,
        f"/children/{kids.cro}/legal/proceedings/new",
        {"kind": "care_proceedings", "started_on": dmy(kids.entered)},
    )
    assert response.status_code == 303, response.text[:800]
    with db.read() as s:
        proceedings_id = s.scalars(select(LegalProceedings.id)).one()
    before = counts(db, LegalEvent)
    response = post(
        client,
        f"/children/{kids.cro}/legal/new",
        {"event_type": "sc.cso", "event_date": dmy(kids.entered), "proceedings_id": ""},
    )
    assert response.status_code == 422  # Scotland's type at an English site
    assert error_beside(response.text, "event_type")
    assert counts(db, LegalEvent) == before
    response = post(
        client,
        f"/children/{kids.cro}/legal/new",
        {
            "event_type": "en.C1",
            "event_date": dmy(kids.entered + DAY),
            "proceedings_id": str(proceedings_id),
        },
    )
    assert response.status_code == 303, response.text[:800]
    with db.read() as s:
        event = s.scalars(select(LegalEvent)).one()
        assert event.event_type_code == "en.C1" and event.proceedings_id == proceedings_id
    assert counts(db, LegalEvent)[1] > before[1]


# --------------------------------------------------------------------------- assessments


def _sdq_answers() -> dict[int, int | None]:
    answers: dict[int, int | None] = {n: (n * 7) % 3 for n in range(1, 26)}
    answers[3] = None
    answers[11] = None
    return answers


def test_sdq_entered_item_by_item_scores_as_the_engine_and_completes_the_visit(
    db: Database, client: TestClient, kids: Kids
) -> None:
    login(client, "research_gla")
    url = f"/children/{kids.gla}/assessments/new?instrument=sdq&visit=baseline"
    page = client.get(url)
    assert page.status_code == 200, page.text[:500]
    assert "(2-4 form)" in page.text  # 38 months old
    assert page.text.count('type="radio" name="item_') >= 25 * 3
    assert 'name="missing_3"' in page.text
    answers = _sdq_answers()
    on = utcnow().date()
    data: dict[str, str] = {
        "instrument": "sdq",
        "visit": "baseline",
        "form": "2-4",
        "assessed_on": dmy(on),
        "respondent": "carer",
    }
    data.update({f"item_{n}": "" if v is None else str(v) for n, v in answers.items()})
    data["missing_3"] = "dont_know"
    before = counts(db, Assessment)
    response = post(client, f"/children/{kids.gla}/assessments/new", data)
    assert response.status_code == 303, response.text[:1500]
    location = response.headers["location"]
    assert re.fullmatch(rf"/children/{kids.gla}/assessments/\d+", location)
    rows, audited = counts(db, Assessment)
    assert rows == before[0] + 1 and audited > before[1]

    shown = client.get(location)
    assert shown.status_code == 200
    expected = instruments.score("sdq", answers, "2-4")
    cells = dict(
        re.findall(r'<th scope="row">([^<]+)</th><td class="num">([^<]+)</td>', shown.text)
    )
    assert {k.replace(" ", "_"): v for k, v in cells.items()} == {
        k: "missing" if v is None else f"{v:g}" for k, v in expected.items()
    }
    assert "completed in window" in shown.text
    with db.read() as s:
        visit = s.scalars(
            select(FollowUpVisit)
            .join(Child, Child.id == FollowUpVisit.child_id)
            .where(FollowUpVisit.timepoint_code == "baseline", Child.trial_id == kids.gla)
        ).one()
        assert visit is not None and visit.status == "completed" and visit.completed_on == on


def test_bad_assessment_entries_stay_on_the_form_and_write_nothing(
    db: Database, client: TestClient, kids: Kids
) -> None:
    login(client, "coord_gla")
    data = {
        "instrument": "sdq",
        "visit": "baseline",
        "form": "2-4",
        "assessed_on": dmy(utcnow().date()),
        "respondent": "carer",
        "item_1": "7",
        "item_2": "1",
        "missing_2": "refused",
    }
    before = counts(db, Assessment)
    empty = {k: v for k, v in data.items() if not k.startswith(("item_", "missing_"))}
    response = post(client, f"/children/{kids.gla}/assessments/new", empty)
    assert response.status_code == 422 and "ASM-013" in response.text  # sent empty by mistake
    response = post(client, f"/children/{kids.gla}/assessments/new", data)
    assert response.status_code == 422
    assert "WEB-003" in error_beside(response.text, "item_1")
    assert counts(db, Assessment) == before
    data["item_1"] = "1"
    response = post(client, f"/children/{kids.gla}/assessments/new", data)
    assert response.status_code == 422
    assert "ASM-005" in error_beside(response.text, "missing_2")
    assert 'name="item_2" value="1" checked' in response.text  # kept
    # the 4-17 form for a child of 38 months: the form for the age comes back
    data.update({"form": "4-17", "missing_2": ""})
    response = post(client, f"/children/{kids.gla}/assessments/new", data)
    assert response.status_code == 422
    assert "ASM-012" in error_beside(response.text, "assessed_on")
    assert 'name="form" value="2-4"' in response.text
    response = post(client, f"/children/{kids.gla}/assessments/new", {**data, "form": "9-99"})
    assert response.status_code == 422 and "ASM-002" in response.text
    assert counts(db, Assessment) == before


def test_assessments_are_refused_for_another_site(
    db: Database, client: TestClient, kids: Kids
) -> None:
    login(client, "research_cro")
    url = f"/children/{kids.gla}/assessments/new?instrument=sdq&visit=baseline"
    assert client.get(url).status_code == 403
    data = {
        "instrument": "sdq",
        "visit": "baseline",
        "form": "2-4",
        "assessed_on": dmy(utcnow().date()),
        "respondent": "carer",
    }
    refused_and_unchanged(db, client, f"/children/{kids.gla}/assessments/new", data, Assessment)


# --------------------------------------------------------------------------- visits


def test_visit_outcomes(db: Database, client: TestClient, kids: Kids) -> None:
    login(client, "coord_gla")
    page = client.get(f"/children/{kids.gla}/visits/baseline/complete")
    assert page.status_code == 200 and "Window" in page.text
    assert client.get(f"/children/{kids.gla}/visits/nope/complete").status_code == 404
    response = post(
        client,
        f"/children/{kids.gla}/visits/baseline/complete",
        {"completed_on": dmy(utcnow().date() + 5 * DAY)},
    )
    assert response.status_code == 422
    assert "VIS-003" in error_beside(response.text, "completed_on")
    response = post(
        client,
        f"/children/{kids.gla}/visits/baseline/complete",
        {"completed_on": dmy(date.today())},
    )
    assert response.status_code == 303
    response = post(client, f"/children/{kids.gla}/visits/15m/not-required", {"reason": ""})
    assert response.status_code == 422 and error_beside(response.text, "reason")
    response = post(
        client, f"/children/{kids.gla}/visits/15m/not-required", {"reason": "moved abroad"}
    )
    assert response.status_code == 303
    with db.read() as s:
        statuses = dict(
            s.execute(
                select(FollowUpVisit.timepoint_code, FollowUpVisit.status)
                .join(Child, Child.id == FollowUpVisit.child_id)
                .where(Child.trial_id == kids.gla)
            ).all()
        )
    assert statuses["baseline"] == "completed" and statuses["15m"] == "not_required"
    client.cookies.clear()
    login(client, "research_gla")  # may complete visits, may not waive them
    response = post(client, f"/children/{kids.gla}/visits/30m/not-required", {"reason": "x"})
    assert response.status_code == 403


# --------------------------------------------------------------------------- safety


def test_sae_deviation_withdrawal_and_loss(db: Database, client: TestClient, kids: Kids) -> None:
    login(client, "coord_gla")
    today = utcnow().date()
    cases = [
        (
            "sae/new",
            SeriousAdverseEvent,
            {
                "onset_date": dmy(today - 3 * DAY),
                "reported_on": dmy(today),
                "category": "hospitalisation",
                "description": "admitted with pneumonia",
                "expected": "no",
            },
        ),
        (
            "deviation/new",
            ProtocolDeviation,
            {
                "occurred_on": dmy(today - DAY),
                "category": "visit out of window",
                "severity": "minor",
                "description": "baseline a week late",
            },
        ),
        (
            "lost",
            LossToFollowUp,
            {
                "declared_on": dmy(today),
                "reason": "family moved, no contact",
                "last_contact_on": "",
            },
        ),
        (
            "withdraw",
            Withdrawal,
            {
                "withdrawn_on": dmy(today),
                "level": "follow_up",
                "requested_by": "carer",
                "reason": "carer asked",
            },
        ),
    ]
    for path, model, data in cases:
        url = f"/children/{kids.gla}/{path}"
        assert client.get(url).status_code == 200
        bad = {**data, next(iter(data)): "yesterday"}
        before = counts(db, model)
        response = post(client, url, bad)
        assert response.status_code == 422, path
        assert "dd/mm/yyyy" in error_beside(response.text, next(iter(data)))
        assert counts(db, model) == before, path
        response = post(client, url, data)
        assert response.status_code == 303, f"{path}: {response.text[:800]}"
        rows, audited = counts(db, model)
        assert rows == before[0] + 1 and audited > before[1], path


def test_safety_forms_refuse_another_site_and_the_researcher(
    db: Database, client: TestClient, kids: Kids
) -> None:
    data = {
        "onset_date": dmy(utcnow().date()),
        "reported_on": dmy(utcnow().date()),
        "category": "hospitalisation",
        "description": "x",
    }
    login(client, "coord_cro")
    assert client.get(f"/children/{kids.gla}/sae/new").status_code == 403
    refused_and_unchanged(db, client, f"/children/{kids.gla}/sae/new", data, SeriousAdverseEvent)
    client.cookies.clear()
    login(client, "research_gla")
    refused_and_unchanged(db, client, f"/children/{kids.gla}/sae/new", data, SeriousAdverseEvent)
    refused_and_unchanged(db, client, f"/children/{kids.gla}/withdraw", {"reason": "x"}, Withdrawal)


# --------------------------------------------------------------------------- economics


def test_service_use_lists_only_what_the_role_may_record(
    db: Database, client: TestClient, kids: Kids, actors: Actors
) -> None:
    dm = actors["datamanager"]
    economics.add_unit_cost(db, dm, "sw_hour", "Social worker", "hour", Decimal("45.50"), 2023)
    economics.add_unit_cost(
        db, dm, "gift_contact", "GIFT team contact", "contact", Decimal("80"), 2023
    )
    login(client, "research_gla")
    page = client.get(f"/children/{kids.gla}/service-use/new")
    assert page.status_code == 200
    assert 'value="sw_hour"' in page.text and "gift" not in page.text.lower()
    today = utcnow().date()
    data = {
        "unit_cost": "sw_hour",
        "period_start": dmy(today - 10 * DAY),
        "period_end": dmy(today),
        "quantity": "lots",
    }
    before = counts(db, ServiceUse)
    response = post(client, f"/children/{kids.gla}/service-use/new", data)
    assert response.status_code == 422 and error_beside(response.text, "quantity")
    response = post(
        client, f"/children/{kids.gla}/service-use/new", {**data, "unit_cost": "gift_contact"}
    )
    assert response.status_code == 422 and counts(db, ServiceUse) == before
    response = post(client, f"/children/{kids.gla}/service-use/new", {**data, "quantity": "2.5"})
    assert response.status_code == 303, response.text[:800]
    assert counts(db, ServiceUse)[0] == before[0] + 1
    client.cookies.clear()
    login(client, "coord_gla")
    assert "gift_contact" in client.get(f"/children/{kids.gla}/service-use/new").text


# --------------------------------------------------------------------------- intervention


@pytest.mark.parametrize(
    "name", ["research_gla", "datamanager", "statistician", "dmc_chair", "coord_cro"]
)
def test_the_intervention_form_is_refused_to_blinded_roles_and_other_sites(
    db: Database, client: TestClient, kids: Kids, name: str
) -> None:
    login(client, name)
    page = client.get(f"/families/{kids.gla_family}/intervention")
    assert page.status_code == 403
    assert_no_arm(page.text)
    refused_and_unchanged(
        db,
        client,
        f"/families/{kids.gla_family}/intervention",
        {"received": "yes", "started_on": dmy(utcnow().date())},
        InterventionReceipt,
    )


def test_the_coordinator_records_and_corrects_intervention_receipt(
    db: Database, client: TestClient, kids: Kids
) -> None:
    login(client, "coord_gla")
    url = f"/families/{kids.gla_family}/intervention"
    assert client.get(url).status_code == 200
    before = counts(db, InterventionReceipt)
    response = post(client, url, {"received": "maybe"})
    assert response.status_code == 422 and error_beside(response.text, "received")
    assert counts(db, InterventionReceipt) == before
    response = post(client, url, {"received": "yes", "started_on": dmy(utcnow().date())})
    assert response.status_code == 303, response.text[:800]
    assert response.headers["location"] == f"/families/{kids.gla_family}"
    page = client.get(url)
    assert 'name="reason"' in page.text  # a correction needs its reason
    response = post(client, url, {"received": "no", "not_received_reason": "declined"})
    assert response.status_code == 422 and error_beside(response.text, "reason")
    response = post(
        client,
        url,
        {"received": "no", "not_received_reason": "declined", "reason": "wrong family"},
    )
    assert response.status_code == 303, response.text[:800]
    with db.read() as s:
        live = s.scalars(
            select(InterventionReceipt.received).where(InterventionReceipt.voided_at.is_(None))
        ).all()
    assert [bool(r) for r in live] == [False]


def test_a_post_without_csrf_writes_nothing(db: Database, client: TestClient, kids: Kids) -> None:
    login(client, "coord_gla")
    before = counts(db, Placement)
    response = client.post(
        f"/children/{kids.gla}/placements/new",
        data={"start_date": dmy(kids.entered), "placement_type": "foster"},
    )
    assert response.status_code == 403
    assert counts(db, Placement) == before
    assert placements.list_placements(db, users.resolve_actor(db, "coord_gla"), kids.gla)


def test_the_assessment_page_asks_for_visit_and_instrument_and_says_when_no_form_fits(
    db: Database, actors: Actors, client: TestClient, kids: Kids
) -> None:
    _, baby = _randomised(db, actors, "GLA", 10)
    login(client, "research_gla")
    page = client.get(f"/children/{baby}/assessments/new")
    assert page.status_code == 200
    assert 'name="visit"' in page.text and 'value="sdq"' in page.text
    page = client.get(f"/children/{baby}/assessments/new?instrument=sdq&visit=baseline")
    assert page.status_code == 200
    assert "No form of this instrument fits" in page.text and 'name="item_1"' not in page.text
    page = client.get(f"/children/{baby}/assessments/new?instrument=pedsql&visit=baseline")
    assert "(infant_1_12 form)" in page.text and 'name="item_36"' in page.text
    assert (
        client.get(f"/children/{baby}/assessments/new?instrument=nope&visit=baseline").status_code
        == 404
    )


def test_form_pages_run_as_many_statements_whatever_the_record_holds(
    db: Database, actors: Actors, client: TestClient, kids: Kids
) -> None:
    coord = actors["coord_gla"]
    login(client, "coord_gla")
    url = f"/children/{kids.gla}/placements/new"

    def statements() -> int:
        with count_statements(db) as seen:
            assert client.get(url).status_code == 200
        return len(seen)

    placements.add_placement(db, coord, kids.gla, kids.entered, "foster")
    one = statements()
    for k in range(1, 5):
        placements.move_child(db, coord, kids.gla, kids.entered + k * DAY, "foster", "planned_move")
    assert statements() == one


def test_visits_are_named_by_timepoint_or_by_id(
    db: Database, client: TestClient, kids: Kids
) -> None:
    with db.read() as s:
        ids = dict(
            s.execute(
                select(FollowUpVisit.timepoint_code, FollowUpVisit.id)
                .join(Child, Child.id == FollowUpVisit.child_id)
                .where(Child.trial_id == kids.gla)
            ).all()
        )
        other = s.scalar(
            select(FollowUpVisit.id)
            .join(Child, Child.id == FollowUpVisit.child_id)
            .where(Child.trial_id == kids.cro)
        )
    login(client, "coord_gla")
    page = client.get(f"/children/{kids.gla}/visits/{ids['15m']}/missed")
    assert page.status_code == 200 and "Visit 15m" in page.text
    page = client.get(
        f"/children/{kids.gla}/assessments/new?instrument=sdq&visit={ids['baseline']}"
    )
    assert page.status_code == 200 and 'name="visit" value="baseline"' in page.text
    # another child's visit id is not this child's visit
    assert client.get(f"/children/{kids.gla}/visits/{other}/missed").status_code == 404


def test_sae_follow_up_and_completion(db: Database, client: TestClient, kids: Kids) -> None:
    login(client, "coord_gla")
    today = utcnow().date()
    response = post(
        client,
        f"/children/{kids.gla}/sae/new",
        {
            "onset_date": dmy(today - DAY),
            "reported_on": dmy(today),
            "category": "hospitalisation",
            "description": "admitted overnight",
        },
    )
    assert response.status_code == 303
    with db.read() as s:
        sae_id = s.scalars(select(SeriousAdverseEvent.id)).one()
    url = f"/children/{kids.gla}/sae/{sae_id}"
    assert client.get(url).status_code == 200
    # not complete yet: the follow-up is missing, each beside its field
    response = post(client, f"{url}/complete")
    assert response.status_code == 422
    assert "SAE-009" in error_beside(response.text, "outcome")
    response = post(
        client, url, {"relatedness": "not_related", "expected": "no", "outcome": "recovered"}
    )
    assert response.status_code == 303, response.text[:800]
    response = post(client, f"{url}/complete")
    assert response.status_code == 303
    with db.read() as s:
        sae = s.get(SeriousAdverseEvent, sae_id)
        assert sae is not None and sae.completed_at is not None and sae.outcome == "recovered"
    # once complete, a change needs its reason
    response = post(
        client, url, {"relatedness": "possible", "expected": "no", "outcome": "recovered"}
    )
    assert response.status_code == 422 and error_beside(response.text, "reason")
    client.cookies.clear()
    login(client, "coord_cro")
    assert client.get(url).status_code == 403
    refused_and_unchanged(db, client, f"{url}/complete", {}, SeriousAdverseEvent)


# --------------------------------------------------------------------------- blinded roles


@pytest.mark.parametrize("user", ["research_gla", "datamanager", "statistician"])
def test_blinded_roles_read_no_arm_on_any_form_page(web_demo: WebDemo, user: str) -> None:
    """Every form page of demo children with every kind of record, as a blinded role: a
    form, a 403 or a 404, never an arm word (the crawl's list, case-insensitive)."""
    with web_demo.db.read() as s:
        kids_ = s.execute(
            select(Child.trial_id, Family.trial_id)
            .join(Family, Family.id == Child.family_id)
            .join(Site, Site.id == Family.site_id)
            .where(Site.code == "GLA")
            .order_by(Child.id)
            .limit(3)
        ).all()
        assessment = s.execute(
            select(Assessment.id, Child.trial_id)
            .join(Child, Child.id == Assessment.child_id)
            .limit(1)
        ).one()
        placement = s.scalars(select(Placement.id).limit(1)).one()
        visit = s.scalars(select(FollowUpVisit.id).limit(1)).one()
        event = s.scalars(select(LegalEvent.id).limit(1)).one()
        proceedings = s.scalars(select(LegalProceedings.id).limit(1)).one()
    client = demo_login(web_demo, user)
    paths = [f"/children/{assessment[1]}/assessments/{assessment[0]}"]
    for child, family in kids_:
        paths += [
            f"/children/{child}/placements/new",
            f"/children/{child}/placements/{placement}/move",
            f"/children/{child}/legal/new",
            f"/children/{child}/legal/proceedings/new",
            f"/children/{child}/legal/events/{event}/correct",
            f"/children/{child}/legal/events/{event}/void",
            f"/children/{child}/legal/proceedings/{proceedings}/end",
            f"/children/{child}/legal/proceedings/{proceedings}/correct",
            f"/children/{child}/legal/proceedings/{proceedings}/void",
            f"/children/{child}/assessments/new",
            f"/children/{child}/assessments/new?instrument=sdq&visit=baseline",
            f"/children/{child}/assessments/new?instrument=pedsql&visit=15m",
            f"/children/{child}/visits/{visit}/complete",
            f"/children/{child}/visits/baseline/missed",
            f"/children/{child}/sae/new",
            f"/children/{child}/deviation/new",
            f"/children/{child}/withdraw",
            f"/children/{child}/lost",
            f"/children/{child}/service-use/new",
            f"/families/{family}/intervention",
        ]
    shown = 0
    for path in paths:
        response = client.get(path)
        assert response.status_code in (200, 403, 404), f"{user}: {path} {response.status_code}"
        shown += response.status_code == 200
        for word in ARM_WORDS:
            assert not re.search(rf"\b{re.escape(word)}\b", response.text, re.IGNORECASE), (
                f"{user}: {path} names {word!r}"
            )
    if user == "research_gla":
        assert shown >= 10  # the assessment, visit and service-use forms are theirs


@pytest.mark.parametrize(
    "path",
    [
        "placements/new",
        "legal/new",
        "legal/proceedings/new",
        "visits/15m/complete",
        "sae/new",
        "deviation/new",
        "withdraw",
        "lost",
        "service-use/new",
    ],
)
def test_a_form_sent_empty_comes_back_and_writes_nothing(
    client: TestClient, db: Database, kids: Kids, path: str
) -> None:
    """Every field left blank: the form again (422) with the problems named, never a 500."""
    login(client, "coord_gla")
    before = count(db, AuditLog)
    response = post(client, f"/children/{kids.gla}/{path}", {})
    assert response.status_code == 422, (path, response.status_code, response.text[:300])
    assert 'class="error-summary"' in response.text
    assert count(db, AuditLog) == before
