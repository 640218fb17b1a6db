"""Recording assessments: validated, scored from the responses, rescored on correction, audited."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from noim.db.models import DerivedScore, ItemResponse
from noim.db.session import Database
from noim.domain.exceptions import PermissionDenied, ReasonRequired, ValidationError
from noim.services import assessments, audit
from tests.conftest import Actors
from tests.factories import family_with_children


def sdq(value: int) -> dict[int, int | None]:
    return dict.fromkeys(range(1, 26), value)


def test_record_scores_and_stores_every_item(db: Database, actors: Actors) -> None:
    fam = family_with_children(db, actors["coord_gla"], "GLA", (30,))
    child = fam.children[0].trial_id
    responses = sdq(1)
    responses[3] = None
    view = assessments.record_assessment(
        db,
        actors["research_gla"],
        child,
        "baseline",
        "sdq",
        date(2024, 4, 2),
        responses,
        "carer",
        "2-4",
        missing_reasons={3: "dont_know"},
    )
    assert view.scores["emotional"] == 5 and view.scores["total_difficulties"] == 20
    assert view.scoring_version == "sdq-2024.1"
    with db.read() as s:
        rows = {
            r.item: r
            for r in s.scalars(select(ItemResponse).where(ItemResponse.assessment_id == view.id))
        }
        assert len(rows) == 25 and rows[3].value is None and rows[3].missing_reason == "dont_know"
        assert s.scalar(select(DerivedScore.score).where(DerivedScore.scale == "prosocial")) == 5
    assert audit.verify(db, actors["admin"]).ok


def test_invalid_assessments_are_refused_whole(db: Database, actors: Actors) -> None:
    fam = family_with_children(db, actors["coord_gla"], "GLA", (30,))
    child = fam.children[0].trial_id
    bad = sdq(1)
    bad[4] = 7
    with pytest.raises(ValidationError) as info:
        assessments.record_assessment(
            db,
            actors["coord_gla"],
            child,
            "week2",
            "sdq",
            date(2030, 1, 1),
            bad,
            "neighbour",
            "adult",
            missing_reasons={5: "lost", 6: "refused"},
        )
    rules = {p.rule for p in info.value.problems}
    assert rules >= {"ASM-002", "ASM-003", "ASM-004", "ASM-005", "ASM-006", "ASM-007"}
    with db.read() as s:
        assert s.scalar(select(ItemResponse.id)) is None


def test_correction_rescores_with_a_reason(db: Database, actors: Actors) -> None:
    coord = actors["coord_gla"]
    fam = family_with_children(db, coord, "GLA", (30,))
    view = assessments.record_assessment(
        db,
        coord,
        fam.children[0].trial_id,
        "baseline",
        "sdq",
        date(2024, 4, 2),
        sdq(0),
        "carer",
        "2-4",
    )
    assert view.scores["emotional"] == 0
    with pytest.raises(ReasonRequired):
        assessments.correct_response(db, coord, view.id, 3, 2, reason="")
    fixed = assessments.correct_response(
        db, coord, view.id, 3, 2, reason="item 3 was ticked 'certainly true'"
    )
    assert fixed.scores["emotional"] == 2 and fixed.responses[3] == 2
    history = audit.history(
        db, actors["admin"], "derived_scores", str(next(iter(_score_ids(db, view.id, "emotional"))))
    )
    assert [(r.field, r.old, r.new) for r in history if r.field == "score"] == [
        ("score", "0.0", "2.0")
    ]
    assert audit.verify(db, actors["admin"]).ok


def _score_ids(db: Database, assessment_id: int, scale: str) -> list[int]:
    with db.read() as s:
        return list(
            s.scalars(
                select(DerivedScore.id).where(
                    DerivedScore.assessment_id == assessment_id, DerivedScore.scale == scale
                )
            )
        )


def test_site_scope_applies(db: Database, actors: Actors) -> None:
    fam = family_with_children(db, actors["coord_gla"], "GLA", (30,))
    with pytest.raises(PermissionDenied, match="at site 'GLA'"):
        assessments.record_assessment(
            db,
            actors["research_cro"],
            fam.children[0].trial_id,
            "baseline",
            "sdq",
            date(2024, 4, 2),
            sdq(1),
            "carer",
            "2-4",
        )
    with pytest.raises(PermissionDenied):
        assessments.record_assessment(
            db,
            actors["statistician"],
            fam.children[0].trial_id,
            "baseline",
            "sdq",
            date(2024, 4, 2),
            sdq(1),
            "carer",
            "2-4",
        )
