"""Validation rules: the registry, each set rule on every write, and ``noim check``."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from noim.db import rule_runner, touched
from noim.db.base import Base, utcnow
from noim.db.models import (
    AuditHead,
    Carer,
    Child,
    ChildCarer,
    DataQuery,
    DataQueryMessage,
    DecisionType,
    Family,
    LegalEvent,
    LegalProceedings,
    Placement,
)
from noim.db.rule_checks import CHECKS, READS
from noim.db.session import Database
from noim.domain.exceptions import PermissionDenied, ValidationError
from noim.domain.rules import RULE_ID, RULE_LIST, RULES, SET, parse_registry
from noim.services import assessments, consent, families, randomisation, rules, users
from noim.services.assessments import AssessmentView
from tests.conftest import Actors
from tests.dbutil import raw
from tests.factories import family_with_children

NOIM = Path(__file__).resolve().parent.parent / "noim"
ENTRY = date(2024, 3, 1)


# --------------------------------------------------------------------------- helpers


def a_child(
    db: Database, actors: Actors, age: int = 10, site: str = "GLA", entered: date = ENTRY
) -> tuple[str, int]:
    """(trial ID, id) of a new child who entered care on ``entered`` aged ``age`` months."""
    coord = actors["coord_gla" if site == "GLA" else "coord_cro"]
    fam = family_with_children(db, coord, site, (age,), entered=entered)
    trial_id = fam.children[0].trial_id
    with db.read() as s:
        return trial_id, int(s.scalar(select(Child.id).where(Child.trial_id == trial_id)))


def queries(db: Database, rule: str) -> list[DataQuery]:
    with db.read() as s:
        rows = list(s.scalars(select(DataQuery).where(DataQuery.rule_id == rule)))
        s.expunge_all()
        return rows


def audit_seq(db: Database) -> int:
    with db.read() as s:
        return int(s.scalar(select(AuditHead.last_seq)))


def allow_birth_after_entry(s: Session) -> None:
    """Lift the database's own CHECK (entry to care after birth) for this transaction."""
    conn = s.connection()
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA ignore_check_constraints = ON")
    else:
        conn.exec_driver_sql(
            "ALTER TABLE children DROP CONSTRAINT IF EXISTS ck_children_entered_care_after_birth"
        )


def place(db: Database, actors: Actors, child_id: int, *spans: tuple[date, date | None]) -> None:
    with db.write(actors["coord_gla"]) as s:
        for start, end in spans:
            s.add(
                Placement(
                    child_id=child_id, start_date=start, end_date=end, placement_type="foster"
                )
            )


def sdq() -> dict[int, int | None]:
    return dict.fromkeys(range(1, 26), 1)


def baseline_sdq(db: Database, actors: Actors, trial_id: str) -> AssessmentView:
    """A carer's baseline SDQ (2-4 form) of ``trial_id`` on 2024-04-02, by the Glasgow researcher."""
    return assessments.record_assessment(
        db,
        actors["research_gla"],
        trial_id,
        "baseline",
        "sdq",
        date(2024, 4, 2),
        sdq(),
        "carer",
        "2-4",
    )


def ready_and_randomise(db: Database, actors: Actors, trial_id: str) -> None:
    coord = actors["coord_gla"]
    consent.decide_eligibility(db, coord, trial_id, True, ENTRY + timedelta(days=10))
    consent.record_consent(db, coord, trial_id, "local_authority", "v3", ENTRY + timedelta(days=11))
    randomisation.setup(db, actors["admin"], 7)
    with db.read() as s:
        family = s.scalar(
            select(Family.trial_id)
            .join(Child, Child.family_id == Family.id)
            .where(Child.trial_id == trial_id)
        )
    randomisation.randomise(db, coord, str(family))


# --------------------------------------------------------------------------- the registry


def _ids_used_in_source() -> dict[str, list[str]]:
    used: dict[str, list[str]] = {}
    literal = re.compile(r"""["']([A-Z]{2,3}-\d{3})["']""")
    for path in sorted(NOIM.rglob("*.py")):
        for m in literal.finditer(path.read_text(encoding="utf-8")):
            used.setdefault(m.group(1), []).append(str(path.relative_to(NOIM.parent)))
    return used


def test_every_rule_id_used_in_noim_is_registered_once() -> None:
    used = _ids_used_in_source()
    assert len(used) > 40  # the scan finds the services' rule ids
    missing = {rid: where for rid, where in used.items() if rid not in RULES}
    assert missing == {}, f"rule ids used but not in noim/domain/rules.py: {missing}"
    ids = [r.id for r in RULE_LIST]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    assert twice == [], f"rules registered twice: {twice}"
    assert all(RULE_ID.match(i) for i in ids)


def test_set_rules_are_exactly_the_checks() -> None:
    assert {r.id for r in RULE_LIST if r.kind == SET} == set(CHECKS)
    assert {r.id: r.severity for r in RULE_LIST if r.kind == SET} == {
        "CHD-010": "hard",
        "CHD-011": "soft",
        "CNS-010": "soft",
        "RND-020": "soft",
        "PLC-010": "hard",
        "PLC-011": "soft",
        "LGL-010": "hard",
        "ASM-010": "soft",
        "ASM-011": "hard",
    }


def test_the_documentation_lists_every_set_and_query_rule() -> None:
    text = (NOIM.parent / "docs" / "data-queries.md").read_text(encoding="utf-8")
    wanted = [r.id for r in RULE_LIST if r.kind == SET or r.id.startswith("QRY-")]
    assert [i for i in wanted if f"`{i}`" not in text] == []


def test_registry_lines_are_checked() -> None:
    assert parse_registry("ABC-001 soft set t.f  a description")[0].field == "f"
    assert parse_registry("ABC-001 hard inline t.-  whole record")[0].field is None
    for bad in ("ABC-01 soft set t.f x", "ABC-001 medium set t.f x", "ABC-001 soft set t x"):
        with pytest.raises(ValueError, match="rules registry line 1"):
            parse_registry(bad)


# --------------------------------------------------------------------------- children


def test_chd_010_date_of_birth_after_entry_is_refused(db: Database, actors: Actors) -> None:
    trial_id, cid = a_child(db, actors)
    before = audit_seq(db)
    with pytest.raises(ValidationError) as info, db.write(actors["coord_gla"], reason="x") as s:
        allow_birth_after_entry(s)  # the rule holds even without the database's own CHECK
        s.get_one(Child, cid).date_of_birth = ENTRY + timedelta(days=3)
    (p,) = info.value.problems
    assert (p.rule, p.field, p.value) == ("CHD-010", "date_of_birth", "2024-03-04")
    assert f"children {cid} ({trial_id})" == p.record and "on or before entry to care" in str(p)
    with db.read() as s:
        assert s.get_one(Child, cid).date_of_birth < ENTRY
    assert audit_seq(db) == before and queries(db, "CHD-010") == []


def test_chd_011_age_over_60_months_is_accepted_with_one_query(
    db: Database, actors: Actors
) -> None:
    trial_id, cid = a_child(db, actors, age=30)
    with db.write(actors["coord_gla"], reason="typed from the referral") as s:
        s.get_one(Child, cid).date_of_birth = date(2019, 3, 1)  # exactly 60 months: fine
    assert queries(db, "CHD-011") == []
    with db.write(actors["coord_gla"], reason="typed from the referral") as s:
        s.get_one(Child, cid).date_of_birth = date(2019, 2, 1)  # 61 months
    (q,) = queries(db, "CHD-011")
    assert (q.table_name, q.row_key, q.field, q.status) == (
        "children",
        str(cid),
        "entered_care_on",
        "open",
    )
    assert q.value_seen == "2024-03-01" and "61 months old" in q.message and trial_id in q.message
    assert q.site_id is not None and q.raised_by_id is None
    # a further write to the same child does not open a second query
    place(db, actors, cid, (ENTRY, None))
    assert len(queries(db, "CHD-011")) == 1


# --------------------------------------------------------------------------- consent and randomisation


@pytest.mark.parametrize(
    ("consented_on", "expected"),
    [
        (date(2022, 12, 1), "at most 366 days before entry to care"),
        (date(2030, 1, 1), "not after today"),
    ],
)
def test_cns_010_implausible_consent_dates_open_a_query(
    db: Database, actors: Actors, consented_on: date, expected: str
) -> None:
    trial_id, _cid = a_child(db, actors, age=30)
    consent.record_consent(db, actors["coord_gla"], trial_id, "local_authority", "v3", ENTRY)
    assert queries(db, "CNS-010") == []
    consent.record_consent(db, actors["coord_gla"], trial_id, "local_authority", "v3", consented_on)
    (q,) = queries(db, "CNS-010")
    assert q.table_name == "consents" and expected in q.message
    assert q.value_seen == consented_on.isoformat()


def test_cns_010_consent_long_after_entry(db: Database, actors: Actors) -> None:
    entered = date(2022, 1, 1)
    trial_id, _cid = a_child(db, actors, age=30, entered=entered)
    coord = actors["coord_gla"]
    on_time = entered + timedelta(days=1096)
    consent.record_consent(db, coord, trial_id, "local_authority", "v3", on_time)
    assert queries(db, "CNS-010") == []  # 3 years (1096 days) after entry: plausible
    consent.record_consent(
        db, coord, trial_id, "local_authority", "v3", on_time + timedelta(days=1)
    )
    (q,) = queries(db, "CNS-010")
    assert "at most 1096 days after entry to care (2022-01-01); it is 1097 days after" in q.message


def test_rnd_020_randomisation_long_after_entry_opens_a_query(db: Database, actors: Actors) -> None:
    trial_id, _cid = a_child(db, actors)  # entered care 2024-03-01, randomised today
    ready_and_randomise(db, actors, trial_id)
    (q,) = queries(db, "RND-020")
    assert q.table_name == "allocations" and q.field == "randomised_at"
    assert q.value_seen == utcnow().date().isoformat() and "at most 731 days after" in q.message
    assert "NIM" not in q.message and "SAU" not in q.message  # no arm in a rule's message


def test_rnd_020_randomisation_soon_after_entry_passes(db: Database, actors: Actors) -> None:
    coord = actors["coord_gla"]
    entered = utcnow().date() - timedelta(days=40)
    fam = families.register_family(db, coord, "GLA", "GCC")
    child = families.add_child(
        db, coord, fam.trial_id, entered - timedelta(days=300), "male", entered
    )
    consent.decide_eligibility(db, coord, child.trial_id, True, entered)
    consent.record_consent(db, coord, child.trial_id, "local_authority", "v3", entered)
    randomisation.setup(db, actors["admin"], 7)
    randomisation.randomise(db, coord, fam.trial_id)
    assert queries(db, "RND-020") == []


def test_rnd_020_runs_over_the_whole_family_of_a_corrected_child(
    db: Database, actors: Actors
) -> None:
    """A write touching one child checks the family's randomisation against the earliest
    entry to care of all its children (the check reads only the touched families)."""
    coord = actors["coord_gla"]
    entered = utcnow().date() - timedelta(days=40)
    fam = families.register_family(db, coord, "GLA", "GCC")
    kids = [
        families.add_child(db, coord, fam.trial_id, entered - timedelta(days=d), "male", entered)
        for d in (900, 300)
    ]
    for kid in kids:
        consent.decide_eligibility(db, coord, kid.trial_id, True, entered)
        consent.record_consent(db, coord, kid.trial_id, "local_authority", "v3", entered)
    randomisation.setup(db, actors["admin"], 7)
    randomisation.randomise(db, coord, fam.trial_id)
    assert queries(db, "RND-020") == []
    earliest = entered - timedelta(days=800)
    families.correct_child(
        db, coord, kids[0].trial_id, {"entered_care_on": earliest}, "entry date from the file"
    )
    (q,) = queries(db, "RND-020")
    assert q.table_name == "allocations" and f"({earliest})" in q.message


# --------------------------------------------------------------------------- placements and legal events


def test_plc_010_adjacent_placements_pass_overlapping_ones_are_refused(
    db: Database, actors: Actors
) -> None:
    trial_id, cid = a_child(db, actors)
    place(db, actors, cid, (ENTRY, date(2024, 6, 1)), (date(2024, 6, 1), None))
    before = audit_seq(db)
    with pytest.raises(ValidationError) as info:
        place(db, actors, cid, (date(2024, 5, 1), date(2024, 7, 1)))
    rules_found = {(p.rule, p.field) for p in info.value.problems}
    assert rules_found == {("PLC-010", "start_date")}
    assert "do not overlap" in str(info.value) and trial_id in str(info.value)
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Placement)) == 2
    assert audit_seq(db) == before


def test_plc_010_two_open_ended_placements_overlap(db: Database, actors: Actors) -> None:
    _trial_id, cid = a_child(db, actors)
    place(db, actors, cid, (ENTRY, None))
    with pytest.raises(ValidationError, match="PLC-010"):
        place(db, actors, cid, (date(2025, 1, 1), None))
    # a voided placement no longer counts
    with db.write(actors["coord_gla"]) as s:
        p = s.scalars(select(Placement).where(Placement.child_id == cid)).one()
        p.voided_at, p.void_reason = utcnow(), "entered twice"
    place(db, actors, cid, (date(2025, 1, 1), None))


def test_plc_011_placement_before_entry_to_care_opens_a_query(db: Database, actors: Actors) -> None:
    _trial_id, cid = a_child(db, actors)
    place(db, actors, cid, (ENTRY, date(2024, 4, 1)))
    assert queries(db, "PLC-011") == []
    place(db, actors, cid, (date(2024, 2, 1), date(2024, 3, 1)))
    (q,) = queries(db, "PLC-011")
    assert q.table_name == "placements" and "on or after entry to care (2024-03-01)" in q.message


def _code(s: Session) -> str:
    return str(s.scalars(select(DecisionType.code).order_by(DecisionType.sort_order)).first())


def test_lgl_010_event_before_its_proceedings_is_refused(db: Database, actors: Actors) -> None:
    _trial_id, cid = a_child(db, actors)
    with db.write(actors["coord_gla"]) as s:
        proceedings = LegalProceedings(
            child_id=cid,
            jurisdiction="scotland",
            kind="childrens_hearing",
            started_on=date(2024, 4, 1),
        )
        s.add(proceedings)
        s.flush()
        s.add(
            LegalEvent(
                child_id=cid,
                proceedings_id=proceedings.id,
                event_type_code=_code(s),
                event_date=date(2024, 4, 1),
            )
        )
        pid = proceedings.id
    with pytest.raises(ValidationError) as info, db.write(actors["coord_gla"]) as s:
        s.add(
            LegalEvent(
                child_id=cid,
                proceedings_id=pid,
                event_type_code=_code(s),
                event_date=date(2024, 3, 15),
            )
        )
    (p,) = info.value.problems
    assert (p.rule, p.field, p.value) == ("LGL-010", "event_date", "2024-03-15")
    assert "started 2024-04-01" in p.expected
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(LegalEvent)) == 1


# --------------------------------------------------------------------------- assessments


def test_asm_010_carer_respondent_must_have_cared_for_the_child(
    db: Database, actors: Actors
) -> None:
    trial_id, cid = a_child(db, actors, age=30)
    view = baseline_sdq(db, actors, trial_id)
    with db.write(actors["coord_gla"], reason="respondent named") as s:
        carer = Carer(site_id=1, carer_type="foster")
        s.add(carer)
        s.flush()
        s.add(
            ChildCarer(
                child_id=cid, carer_id=carer.id, relationship="foster_carer", start_date=ENTRY
            )
        )
        s.flush()
        from noim.db.models import Assessment

        s.get_one(Assessment, view.id).respondent_carer_id = carer.id
        carer_id = carer.id
    assert queries(db, "ASM-010") == []
    with db.write(actors["coord_gla"]) as s:
        link = s.scalars(select(ChildCarer).where(ChildCarer.child_id == cid)).one()
        link.end_date = date(2024, 4, 1)  # the placement ended the day before the assessment
    (q,) = queries(db, "ASM-010")
    assert (q.table_name, q.row_key, q.value_seen) == ("assessments", str(view.id), str(carer_id))
    assert "cared for the child on 2024-04-02" in q.message


def test_asm_011_follow_up_before_randomisation_is_refused(db: Database, actors: Actors) -> None:
    trial_id, _cid = a_child(db, actors, age=30)
    # a 15-month follow-up recorded before the family was randomised ...
    assessments.record_assessment(
        db, actors["research_gla"], trial_id, "15m", "sdq", date(2025, 6, 2), sdq(), "carer", "2-4"
    )
    # ... makes its randomisation today a follow-up dated before randomisation
    with pytest.raises(ValidationError) as info:
        ready_and_randomise(db, actors, trial_id)
    assert {p.rule for p in info.value.problems} == {"ASM-011"}
    assert "15m follow-up dated on or after the family's randomisation" in str(info.value)


def test_asm_011_baseline_before_randomisation_passes(db: Database, actors: Actors) -> None:
    trial_id, _cid = a_child(db, actors, age=30)
    baseline_sdq(db, actors, trial_id)
    ready_and_randomise(db, actors, trial_id)
    assert queries(db, "ASM-011") == []


# --------------------------------------------------------------------------- when the rules run


def test_a_write_that_touches_no_child_runs_no_rule(
    db: Database, actors: Actors, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Any] = []
    real = rule_runner.run_checks
    monkeypatch.setattr(
        rule_runner,
        "run_checks",
        lambda s, scope, written=None: calls.append(scope) or real(s, scope, written),
    )
    users.add_user(db, actors["admin"], "new_dm", "data_manager", ())
    assert calls == []
    _trial_id, cid = a_child(db, actors)
    assert calls and all(scope is not None for scope in calls)
    assert cid in calls[-1]


def test_the_scope_covers_families_and_assessments(db: Database, actors: Actors) -> None:
    fam = family_with_children(db, actors["coord_gla"], "GLA", (5, 20), entered=ENTRY)
    with db.read() as s:
        ids = set(
            s.scalars(
                select(Child.id).where(Child.trial_id.in_([c.trial_id for c in fam.children]))
            )
        )
        family_id = s.scalar(select(Child.family_id).where(Child.id.in_(ids)).limit(1))
        assert rule_runner.scope_of(s, touched.Touched(families={int(family_id)})) == ids
        big = touched.Touched(children=set(range(1, rule_runner.WHOLE_DATABASE_ABOVE + 2)))
        assert rule_runner.scope_of(s, big) is None


def _tables_in(sql: str) -> set[str]:
    """The tables of noim's schema that ``sql`` names."""
    return {t for t in Base.metadata.tables if re.search(rf"\b{t}\b", sql)}


def test_each_rule_declares_every_written_table_it_reads(db: Database, actors: Actors) -> None:
    """``READS`` decides which rules a write runs: a table missing there would let a write
    through unchecked, so it is compared with the SQL each check really runs."""
    from sqlalchemy import event

    assert set(READS) == set(CHECKS)
    _trial_id, cid = a_child(db, actors)
    seen: list[str] = []

    def capture(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        for rule, check in CHECKS.items():
            for scope in (None, frozenset({cid})):
                seen.clear()
                with db.read() as s:
                    check(s, scope)
                read = set().union(*(_tables_in(sql) for sql in seen))
                # every table the check reads that a unit of work can write is declared
                writable = {t for t in read if touched.links_to_children(Base.metadata.tables[t])}
                assert writable <= READS[rule], (rule, writable - READS[rule])
                assert {"children", "families"} <= read
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)


def test_a_write_runs_only_the_rules_that_read_what_it_wrote(
    db: Database, actors: Actors, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[str] = []
    for rule, check in list(CHECKS.items()):
        monkeypatch.setitem(
            CHECKS, rule, lambda s, scope, _r=rule, _c=check: ran.append(_r) or _c(s, scope)
        )
    _trial_id, cid = a_child(db, actors)
    assert set(ran) == set(CHECKS)  # a new family and child: every rule reads them
    ran.clear()
    place(db, actors, cid, (ENTRY, None))
    assert sorted(ran) == ["PLC-010", "PLC-011"]
    # and a placement that overlaps another is still refused
    ran.clear()
    with pytest.raises(ValidationError, match="PLC-010"):
        place(db, actors, cid, (ENTRY + timedelta(days=10), None))
    assert sorted(ran) == ["PLC-010", "PLC-011"]


def _break_behind_noims_back(db: Database, child_id: int, dob: date) -> None:
    """Store a date of birth noim would refuse, as data written before the rules existed."""
    with raw(db.url) as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA ignore_check_constraints = ON")
        else:
            conn.exec_driver_sql(
                "ALTER TABLE children DROP CONSTRAINT IF EXISTS ck_children_entered_care_after_birth"
            )
        conn.execute(
            text("UPDATE children SET date_of_birth = :d WHERE id = :i"), {"d": dob, "i": child_id}
        )


def test_many_children_touched_checks_the_whole_database(
    db: Database, actors: Actors, monkeypatch: pytest.MonkeyPatch
) -> None:
    _a, old = a_child(db, actors)
    with raw(db.url) as conn:
        conn.execute(
            text("UPDATE children SET date_of_birth = '2018-01-01' WHERE id = :i"), {"i": old}
        )
    a_child(db, actors)  # touches only the new child: the old one is not checked
    assert queries(db, "CHD-011") == []
    monkeypatch.setattr(rule_runner, "WHOLE_DATABASE_ABOVE", 0)
    a_child(db, actors)
    assert [q.row_key for q in queries(db, "CHD-011")] == [str(old)]
    # over the whole database, a hard violation elsewhere does not refuse the write ...
    _break_behind_noims_back(db, old, ENTRY + timedelta(days=400))
    _new, new = a_child(db, actors)
    # ... but one in what the unit of work wrote does
    with pytest.raises(ValidationError, match="CHD-010"), db.write(actors["coord_gla"], "x") as s:
        allow_birth_after_entry(s)
        s.get_one(Child, new).date_of_birth = date(2025, 1, 1)


# --------------------------------------------------------------------------- noim check


def test_check_opens_queries_for_old_data_and_closes_them_when_fixed(
    db: Database, actors: Actors
) -> None:
    dm = actors["datamanager"]
    trial_id, cid = a_child(db, actors)
    _other, other = a_child(db, actors)
    _break_behind_noims_back(db, cid, ENTRY + timedelta(days=5))  # hard: CHD-010
    with raw(db.url) as conn:  # soft: CHD-011 (entered care aged 6 years)
        conn.execute(
            text("UPDATE children SET date_of_birth = '2018-01-01' WHERE id = :i"), {"i": other}
        )
    report = rules.check(db, dm)
    by_rule = {r.rule: r for r in report.rules}
    assert (by_rule["CHD-010"].violations, by_rule["CHD-010"].opened) == (1, 1)
    assert (by_rule["CHD-011"].violations, by_rule["CHD-011"].opened) == (1, 1)
    assert report.opened == 2 and report.closed == 0 and report.still_open == 2
    assert rules.check(db, dm).opened == 0  # nothing new the second time
    # a known hard violation does not block other writes to the child ...
    place(db, actors, cid, (ENTRY, None))
    # ... and once the data are fixed, noim check closes the query
    families.correct_child(
        db,
        actors["coord_gla"],
        trial_id,
        {"date_of_birth": date(2023, 1, 1)},
        "checked the birth certificate",
    )
    report = rules.check(db, dm)
    by_rule = {r.rule: r for r in report.rules}
    assert (
        by_rule["CHD-010"].violations,
        by_rule["CHD-010"].closed,
        by_rule["CHD-010"].still_open,
    ) == (0, 1, 0)
    assert by_rule["CHD-011"].still_open == 1
    (q,) = queries(db, "CHD-010")
    assert q.status == "closed" and q.closed_at is not None
    with db.read() as s:
        (m,) = s.scalars(select(DataQueryMessage).where(DataQueryMessage.query_id == q.id))
        assert (
            m.body == "closed by noim check: the data now satisfy CHD-010"
            and m.status_to == "closed"
        )


def test_check_does_not_reopen_what_a_data_manager_resolved(db: Database, actors: Actors) -> None:
    from noim.services import queries as query_service

    dm = actors["datamanager"]
    _trial_id, cid = a_child(db, actors)
    with raw(db.url) as conn:
        conn.execute(
            text("UPDATE children SET date_of_birth = '2018-01-01' WHERE id = :i"), {"i": cid}
        )
    rules.check(db, dm)
    (q,) = queries(db, "CHD-011")
    query_service.resolve(db, dm, q.id, "confirmed with the social worker: the age is right")
    assert rules.check(db, dm).opened == 0
    assert [x.status for x in queries(db, "CHD-011")] == ["resolved"]


def test_check_is_for_data_managers_and_administrators(db: Database, actors: Actors) -> None:
    for who in ("coord_gla", "research_gla", "statistician"):
        with pytest.raises(PermissionDenied):
            rules.check(db, actors[who])
    assert rules.check(db, actors["admin"]).violations == 0
