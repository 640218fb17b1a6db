"""The shipped instruments are registered at `noim init` and recorded through the service."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from noim import instruments
from noim.db.models import DerivedScore, Instrument, ItemResponse
from noim.db.session import Database
from noim.domain.exceptions import ValidationError
from noim.services import assessments
from tests.conftest import Actors
from tests.factories import family_with_children


def test_initialisation_registers_every_shipped_instrument(db: Database) -> None:
    with db.read() as s:
        rows = {(r.code, r.version): r.definition_sha256 for r in s.scalars(select(Instrument))}
    assert {("sdq", "2024.1"), ("bitsea", "1.0"), ("pedsql", "4.0")} <= set(rows)
    for code in ("sdq", "bitsea", "pedsql"):
        d = instruments.load(code)
        assert rows[(d.code, d.version)] == d.sha256


def test_a_bitsea_is_recorded_with_its_derived_scores(db: Database, actors: Actors) -> None:
    fam = family_with_children(db, actors["coord_gla"], "GLA", (24,))
    responses: dict[int, int | None] = dict.fromkeys(range(1, 43), 1)
    responses[2] = None  # one problem item missing: prorated 30 x 31/30
    view = assessments.record_assessment(
        db,
        actors["research_gla"],
        fam.children[0].trial_id,
        "baseline",
        "bitsea",
        date(2024, 4, 2),
        responses,
        "carer",
        missing_reasons={2: "not_applicable"},
    )
    assert view.scores == {"problem": 31, "competence": 11}
    assert view.scoring_version == "bitsea-1.0-prorate10"
    with db.read() as s:
        stored = {
            d.scale: d.score
            for d in s.scalars(select(DerivedScore).where(DerivedScore.assessment_id == view.id))
        }
        items = s.scalars(select(ItemResponse).where(ItemResponse.assessment_id == view.id)).all()
    assert stored == {"problem": 31.0, "competence": 11.0}
    assert len(items) == 42


@pytest.mark.parametrize(("form", "n_items"), [("toddler", 21), ("infant_1_12", 36)])
def test_a_pedsql_is_recorded_with_its_derived_scores(
    db: Database, actors: Actors, form: str, n_items: int
) -> None:
    fam = family_with_children(db, actors["coord_gla"], "GLA", (30 if form == "toddler" else 6,))
    responses: dict[int, int | None] = {i: i % 5 for i in range(1, n_items + 1)}
    view = assessments.record_assessment(
        db,
        actors["coord_gla"],
        fam.children[0].trial_id,
        "baseline",
        "pedsql",
        date(2024, 4, 2),
        responses,
        "carer",
        form,
    )
    expected = instruments.score("pedsql", responses, form)
    assert view.scores == expected and view.form == form
    assert isinstance(view.scores["total"], float) and 0 < view.scores["total"] < 100
    with db.read() as s:
        stored = {
            d.scale: (d.score, d.scoring_version)
            for d in s.scalars(select(DerivedScore).where(DerivedScore.assessment_id == view.id))
        }
    assert stored == {k: (v, "pedsql-4.0-1") for k, v in expected.items()}


def test_a_pedsql_without_its_module_is_refused(db: Database, actors: Actors) -> None:
    fam = family_with_children(db, actors["coord_gla"], "GLA", (30,))
    with pytest.raises(ValidationError) as info:
        assessments.record_assessment(
            db,
            actors["coord_gla"],
            fam.children[0].trial_id,
            "baseline",
            "pedsql",
            date(2024, 4, 2),
            dict.fromkeys(range(1, 22), 0),
            "carer",
        )
    assert any("form None: expected one of" in p.expected for p in info.value.problems)
