"""The bulk path stores and audits exactly what the ORM path would, on every backend."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from noim.db import bulk
from noim.db.audit import insert_rows, update_rows
from noim.db.base import utcnow
from noim.db.models import (
    Assessment,
    AuditLog,
    Child,
    Instrument,
    ItemResponse,
    ServiceUse,
    UnitCost,
)
from noim.db.session import Database
from noim.services import audit
from tests.conftest import Actors, examples
from tests.factories import family_with_children


def _child_and_assessment(db: Database, actors: Actors) -> tuple[int, int]:
    fam = family_with_children(db, actors["coord_gla"], "GLA", (30,))
    with db.write(actors["admin"]) as s:
        child_id = s.scalar(select(Child.id).where(Child.trial_id == fam.children[0].trial_id))
        assert child_id is not None
        instrument = Instrument(code="sdq", version="test", name="SDQ", definition_sha256="0" * 64)
        s.add(instrument)
        s.flush()
        assessment = Assessment(
            child_id=child_id,
            timepoint_code="baseline",
            instrument_id=instrument.id,
            form="2-4",
            respondent_type="carer",
            assessed_on=date(2024, 4, 1),
        )
        s.add(assessment)
        s.flush()
        return child_id, assessment.id


def test_mixed_types_round_trip_through_the_audit_trail(db: Database, actors: Actors) -> None:
    child_id, assessment_id = _child_and_assessment(db, actors)
    admin = actors["admin"]
    with db.write(admin) as s:
        (unit,) = insert_rows(
            s,
            UnitCost,
            [
                {
                    "code": "gp",
                    "service": "GP visit – ünïcode",
                    "unit": "visit",
                    "cost": 45.005,
                    "price_year": 2024,
                    "source": None,
                }
            ],
        )
        insert_rows(
            s,
            ServiceUse,
            [
                {
                    "child_id": child_id,
                    "unit_cost_id": unit,
                    "period_start": date(2024, 1, 1),
                    "period_end": date(2024, 3, 31),
                    "quantity": q,
                }
                for q in (3, 2.5, Decimal("0.125"), "7")
            ],
        )
        insert_rows(
            s,
            ItemResponse,
            [
                {"assessment_id": assessment_id, "item": 1, "value": 2},
                {"assessment_id": assessment_id, "item": 2, "value": 0.1 + 0.2},
                {
                    "assessment_id": assessment_id,
                    "item": 3,
                    "value": None,
                    "missing_reason": "not_answered",
                },
            ],
        )
    with db.read() as s:
        assert s.scalar(select(UnitCost.cost)) == Decimal(
            "45.01"
        )  # half rounded away from zero, everywhere
        assert sorted(s.scalars(select(ServiceUse.quantity))) == [
            Decimal("0.13"),
            Decimal("2.50"),
            Decimal("3.00"),
            Decimal("7.00"),
        ]
        voided = s.scalar(select(ServiceUse.id))
    with db.write(admin, reason="entered twice") as s:
        update_rows(
            s, ServiceUse, {voided: {"voided_at": utcnow(), "void_reason": "entered twice"}}
        )
    result = audit.verify(db, admin)
    assert result.ok, (result.chain.problem, result.data and result.data.problems)


@settings(
    max_examples=examples(10),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    costs=st.lists(
        st.one_of(
            st.decimals(min_value=0, max_value=10**9, places=4, allow_nan=False),
            st.floats(min_value=0, max_value=10**6, allow_nan=False),
            st.integers(min_value=0, max_value=10**9),
        ),
        min_size=1,
        max_size=4,
    ),
    # any single-line text noim accepts (rule TXT-001 refuses control characters and lone
    # surrogates, noim.domain.text)
    service=st.text(
        st.characters(
            exclude_categories=("Cs",), exclude_characters="".join(map(chr, [*range(32), 127]))
        ),
        min_size=1,
        max_size=40,
    ),
)
def test_audited_values_equal_the_values_read_back(
    db: Database, actors: Actors, costs: list[object], service: str
) -> None:
    admin = actors["admin"]
    with db.write(admin) as s:
        keys = insert_rows(
            s,
            UnitCost,
            [
                {
                    "code": uuid.uuid4().hex[:16],
                    "service": service,
                    "unit": "u",
                    "cost": c,
                    "price_year": 2024,
                }
                for c in costs
            ],
        )
    enc = bulk.encoder_for(UnitCost.__table__)  # type: ignore[arg-type]
    with db.read() as s:
        stored = {r.id: r for r in s.scalars(select(UnitCost).where(UnitCost.id.in_(keys)))}
        audited = dict(
            s.execute(
                select(AuditLog.row_key, AuditLog.new_value).where(
                    AuditLog.table_name == "unit_costs",
                    AuditLog.row_key.in_([str(k) for k in keys]),
                )
            ).all()
        )
        for key in keys:
            row = stored[key]
            readback = enc.row({c.name: getattr(row, c.name) for c in UnitCost.__table__.columns})
            assert audited[str(key)] == readback


def test_large_writes_enlarge_the_sqlite_cache_and_restore_it(db: Database, actors: Actors) -> None:
    with db.write(actors["admin"], reason="test") as s:
        conn = s.connection()
        if conn.dialect.name != "sqlite":
            with bulk.large_writes(conn):  # nothing to change on PostgreSQL
                return
        before = conn.exec_driver_sql("PRAGMA cache_size").scalar()
        with bulk.large_writes(conn):
            inside = conn.exec_driver_sql("PRAGMA cache_size").scalar()
        after = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    assert inside == -bulk.LARGE_WRITE_CACHE_KIB
    assert after == before != inside


def test_update_rows_without_reading_back_audits_the_same(db: Database, actors: Actors) -> None:
    fam = family_with_children(db, actors["coord_gla"], "GLA", (10, 30))
    with db.read() as s:
        first, second = s.scalars(
            select(Child.id).where(Child.trial_id.in_([c.trial_id for c in fam.children]))
        ).all()
    change = {"sex": "female", "entered_care_on": date(2024, 2, 3), "voided_at": None}
    trails = []
    for key, reread in ((first, True), (second, False)):
        with db.write(actors["coord_gla"], reason="check") as s:
            changed = update_rows(s, Child, {key: dict(change)}, reread=reread)
            stamp = utcnow()
            update_rows(s, Child, {key: {"eligibility_decided_on": stamp.date()}}, reread=reread)
        with db.read() as s:
            trails.append(
                s.execute(
                    select(AuditLog.action, AuditLog.field, AuditLog.new_value, AuditLog.reason)
                    .where(AuditLog.table_name == "children", AuditLog.row_key == str(key))
                    .where(AuditLog.action != "insert")
                    .order_by(AuditLog.seq)
                ).all()
            )
        assert changed == 1
    assert trails[0] == trails[1] and trails[0]
    result = audit.verify(db, actors["admin"])
    assert result.ok, (result.chain.problem, result.data and result.data.problems)
