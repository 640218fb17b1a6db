"""The family and child record views (noim.services.record_view): status grid, sections,
site scope, blinding, identities, a constant number of statements, record histories."""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import event

from noim.db.session import Database
from noim.domain.exceptions import NotFound, PermissionDenied, ValidationError
from noim.domain.trialdef import default_definition
from noim.services import (
    assessments,
    consent,
    exclusions,
    families,
    legal,
    people,
    people_identity,
    placements,
    queries,
    randomisation,
    record_view,
    safety,
    visits,
)
from tests.conftest import Actors, starting_from
from tests.factories import family_with_children

#: the day the views are read (as of)
TODAY = date(2026, 1, 1)
R_DAY = date(2024, 4, 1)
SEED = 20240501
SDQ = {i: (i % 3) for i in range(1, 26)}


@dataclass(frozen=True)
class Built:
    family: str
    #: a child of 10 months at entry (2024-03-01)
    young: str
    #: a child of 30 months at entry
    older: str
    parent_id: int
    carer_id: int


def arm_words() -> set[str]:
    """Every arm code, arm name, site label and team name (of a team delivering an arm)."""
    d = default_definition()
    words: set[str] = set()
    for arm in d.arms:
        words |= {arm.code, arm.name, *arm.labels.values()}
    for site in d.sites:
        for team in site.teams:
            if team.arm is not None:
                words |= {team.code, team.name}
    return words


def strings_in(value: Any) -> Iterator[str]:
    """Every string held anywhere in ``value`` (dataclasses, mappings, sequences)."""
    if isinstance(value, str):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from strings_in(getattr(value, f.name))
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings_in(k)
            yield from strings_in(v)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            yield from strings_in(v)


def revealed(value: Any) -> set[str]:
    """The arm words found (as whole words) in any string of ``value``."""
    found = set()
    for text in strings_in(value):
        for w in arm_words():
            if re.search(rf"(?<![A-Za-z0-9]){re.escape(w)}(?![A-Za-z0-9])", text):
                found.add(w)
    return found


def build(db: Database, actors: Actors, site: str = "GLA") -> Built:
    """A randomised family of two children with a late, a missed and overdue visits, and a
    record in every section, free texts naming the arms' teams."""
    coord = actors["coord_gla" if site == "GLA" else "coord_cro"]
    research = actors["research_gla" if site == "GLA" else "research_cro"]
    with contextlib.suppress(ValidationError):  # set up by an earlier call
        randomisation.setup(db, actors["admin"], SEED)
    fam = family_with_children(db, coord, site, (10, 30))
    young, older = (c.trial_id for c in fam.children)
    for child in (young, older):
        consent.decide_eligibility(db, coord, child, True, date(2024, 3, 20))
        consent.record_consent(db, coord, child, "local_authority", "v3.1", date(2024, 3, 21))
    at = datetime(R_DAY.year, R_DAY.month, R_DAY.day, 10, tzinfo=UTC)
    randomisation.randomise(db, coord, fam.trial_id, randomised_at=at)
    # baseline window 2024-03-29 .. 2024-06-07: the older child's SDQ after it closed
    assessments.record_assessment(
        db, research, older, "baseline", "sdq", date(2024, 6, 20), SDQ, form="2-4"
    )
    visits.record_missed(db, research, older, "15m", "carer moved away (GIFT knew)", today=TODAY)
    placements.add_placement(db, coord, young, date(2024, 3, 1), "foster", today=TODAY)
    placements.move_child(db, coord, young, date(2024, 9, 1), "kinship", "disruption", today=TODAY)
    words = "LIFT" if site == "CRO" else "GIFT"
    event_type = "sc.cpo" if site == "GLA" else "en.C1"
    legal.record_event(
        db, coord, young, event_type, date(2024, 3, 2), notes=f"{words} attended", today=TODAY
    )
    parent = people.add_parent(db, coord, fam.trial_id, "mother", 1995, True)
    people.link_parent(db, coord, parent.id, young, True, date(2023, 5, 1))
    people_identity.set_parent_identity(db, coord, parent.id, given_name="Morag", postcode="G1 1AA")
    carer = people.add_carer(db, coord, site, "kinship", "K-17")
    people.link_carer(db, coord, carer.id, young, "kinship_carer", date(2024, 9, 1))
    people_identity.set_carer_identity(db, coord, carer.id, given_name="Isla", phone="0141")
    families.set_child_identity(db, coord, young, given_name="Ailsa", family_name="Brown")
    safety.add_sae(
        db,
        coord,
        young,
        date(2024, 10, 1),
        date(2024, 10, 2),
        "hospitalisation",
        f"admitted; the {words} team was told",
    )
    safety.add_deviation(
        db,
        coord,
        fam.trial_id,
        date(2024, 5, 1),
        "visit",
        "minor",
        "New Orleans Intervention Model session in the wrong order",
        child_trial_id=older,
    )
    consent.record_withdrawal(
        db, coord, young, date(2025, 11, 1), "intervention", "carer", f"no time for {words}"
    )
    queries.raise_query(
        db, actors["datamanager"], "children", young, f"check the date ({words})", "sex"
    )
    queries.raise_query(db, actors["datamanager"], "families", fam.trial_id, "LA?")
    return Built(fam.trial_id, young, older, parent.id, carer.id)


#: a test given ``built`` starts from a copy of the trial holding ``build``'s family (built
#: once per run and backend; ``tests/web/test_records.py`` shares it)
prebuilt, db_url, built = starting_from("record_view_family", build, fixture="built")


# --------------------------------------------------------------------------- the grid


def test_grid_statuses(db: Database, actors: Actors, built: Built) -> None:
    b = built
    view = record_view.child_view(db, actors["coord_gla"], b.older, today=TODAY)
    g = view.grid
    assert g.forms == ("visit", "sdq", "bitsea", "pedsql")
    assert [r.timepoint for r in g.rows] == ["baseline", "15m", "30m"]
    sdq = g.cell("baseline", "sdq")
    assert (sdq.status, sdq.on, sdq.count) == ("complete_late", date(2024, 6, 20), 1)
    assert sdq.assessment_id is not None
    assert g.cell("baseline", "visit").status == "complete_late"  # completed by the SDQ
    # the forms the visit still needs: its window closed
    assert g.cell("baseline", "bitsea").status == "overdue"
    assert g.cell("baseline", "pedsql").status == "overdue"
    missed = g.cell("15m", "sdq")
    assert missed.status == "missed" and missed.note == "carer moved away (GIFT knew)"
    assert g.cell("15m", "visit").status == "missed"
    # 30m opens 2026-08-01, when the child is over 5 years old: no BITSEA nor PedsQL
    assert [c.status for c in g.rows[2].cells] == [
        "not_due",
        "not_due",
        "not_required",
        "not_required",
    ]
    assert g.cell("30m", "visit").visit_id is not None

    young = record_view.child_view(db, actors["coord_gla"], b.young, today=TODAY).grid
    assert young.cell("15m", "visit").status == "overdue"  # 2025-05-01 .. 2025-09-01
    assert young.cell("15m", "pedsql").status == "overdue"
    # 10 months at entry: too young for the SDQ and (at baseline) for the BITSEA
    sdq = young.cell("baseline", "sdq")
    assert sdq.status == "not_required" and "sdq is for from 24 months" in (sdq.note or "")
    assert young.cell("baseline", "bitsea").status == "not_required"
    assert young.cell("15m", "bitsea").status == "overdue"  # 24 months by then
    # during the window: due
    during = record_view.child_view(db, actors["coord_gla"], b.young, today=date(2025, 6, 1))
    assert during.grid.cell("15m", "visit").status == "due"
    assert during.grid.cell("15m", "pedsql").status == "due"


def test_grid_before_randomisation(db: Database, actors: Actors) -> None:
    """No visits yet: the baseline is dated from entry to care, the follow-up after
    randomisation is not due."""
    fam = family_with_children(db, actors["coord_gla"], "GLA", (30,))
    child = fam.children[0].trial_id
    g = record_view.child_view(db, actors["coord_gla"], child, today=date(2024, 4, 15)).grid
    assert g.cell("baseline", "visit").status == "due"
    assert g.cell("baseline", "visit").visit_id is None
    assert g.cell("30m", "sdq").status == "not_due"
    view = record_view.child_view(db, actors["coord_gla"], child, today=date(2024, 4, 15))
    assert view.randomisation is None


# --------------------------------------------------------------------------- sections


def test_child_sections(db: Database, actors: Actors, built: Built) -> None:
    b = built
    v = record_view.child_view(db, actors["coord_gla"], b.young, today=TODAY)
    assert (v.family, v.site, v.jurisdiction) == (b.family, "GLA", "scotland")
    assert [p.placement_type for p in v.placements] == ["foster", "kinship"]
    assert v.moves == 1 and v.current_placement is not None
    assert v.current_placement.placement_type == "kinship"
    (event_,) = v.events
    assert event_.event_type == "sc.cpo" and "Child Protection Order" in event_.label
    assert [c.carer_id for c in v.carers] == [b.carer_id]
    assert [p.parent_id for p in v.parents] == [b.parent_id]
    assert v.carer_identities[b.carer_id].given_name == "Isla"
    assert v.parent_identities[b.parent_id].postcode == "G1 1AA"
    assert v.identity is not None and v.identity.given_name == "Ailsa"
    assert [s.category for s in v.saes] == ["hospitalisation"]
    assert v.deviations == ()  # the deviation names the older child
    assert [w.level for w in v.withdrawals] == ["intervention"]
    assert [q.field for q in v.queries] == ["sex"]
    assert len(v.consents) == 1
    assert v.randomisation is not None and v.randomisation.arm is not None
    assert v.randomisation.randomised_on == R_DAY

    older = record_view.child_view(db, actors["coord_gla"], b.older, today=TODAY)
    assert [d.severity for d in older.deviations] == ["minor"]
    assert older.identity is not None and older.identity.given_name is None


def test_family_sections(db: Database, actors: Actors, built: Built) -> None:
    b = built
    exclusions.exclude_child(db, actors["coord_gla"], b.older, date(2024, 5, 1), "age", TODAY)
    f = record_view.family_view(db, actors["coord_gla"], b.family, today=TODAY)
    assert [c.trial_id for c in f.children] == [b.young, b.older]
    assert (f.site, f.local_authority, f.voided) == ("GLA", "GCC", False)
    assert [p.id for p in f.parents] == [b.parent_id]
    assert f.parent_identities[b.parent_id].given_name == "Morag"
    # every query on the family and its children; each child's own in its view
    assert sorted(q.table for q in f.queries) == ["children", "families"]
    assert {q.record for q in f.queries} == {b.young, b.family}
    assert [x.child for x in f.exclusions] == [b.older]
    assert f.children[1].exclusions[0].reason == "age" and f.children[0].exclusions == ()
    assert f.intervention_status == "not_recorded"
    assert f.randomisation is not None and f.randomisation.arm is not None
    arm = f.randomisation.arm
    d = default_definition()
    assert arm.label == d.arm(arm.code).label_at("GLA")
    assert arm.team in {t.name for t in d.site("GLA").teams if t.arm == arm.code}
    assert revealed(f)  # an unblinded view does hold the arm: the blinding test can fail


# --------------------------------------------------------------------------- blinding


@pytest.mark.parametrize("user", ["research_gla", "datamanager", "statistician"])
def test_blinded_roles_get_no_arm(db: Database, actors: Actors, user: str, built: Built) -> None:
    b = built
    f = record_view.family_view(db, actors[user], b.family, today=TODAY)
    assert revealed(f) == set()
    assert f.randomisation is not None and f.randomisation.arm is None
    assert f.randomisation.randomised_on == R_DAY
    assert f.intervention is None and f.intervention_status is None
    for child in (b.young, b.older):
        assert revealed(record_view.child_view(db, actors[user], child, today=TODAY)) == set()
    # the free texts are there, masked
    young = f.children[0]
    assert "[arm masked]" in young.saes[0].description
    assert "[arm masked]" in young.withdrawals[0].reason  # type: ignore[operator]
    assert "[arm masked]" in f.children[1].deviations[0].description


@pytest.mark.parametrize("user", ["research_gla", "datamanager", "statistician"])
def test_no_identities_without_read_identifiable(
    db: Database, actors: Actors, user: str, built: Built
) -> None:
    b = built
    f = record_view.family_view(db, actors[user], b.family, today=TODAY)
    assert f.parent_identities == {}
    for c in f.children:
        assert c.identity is None and c.carer_identities == {} and c.parent_identities == {}
    held = set(strings_in(f))
    assert not held & {"Ailsa", "Brown", "Morag", "Isla", "G1 1AA", "0141"}


def test_unblinded_statistician_sees_arm_but_no_identities(
    db: Database, actors: Actors, built: Built
) -> None:
    b = built
    f = record_view.family_view(db, actors["unblinded_stat"], b.family, today=TODAY)
    assert f.randomisation is not None and f.randomisation.arm is not None
    assert f.children[0].identity is None


# --------------------------------------------------------------------------- permissions


def test_other_site_refused(db: Database, actors: Actors, built: Built) -> None:
    b = built
    for user in ("coord_cro", "research_cro"):
        with pytest.raises(PermissionDenied, match="site 'GLA'"):
            record_view.family_view(db, actors[user], b.family)
        with pytest.raises(PermissionDenied, match="site 'GLA'"):
            record_view.child_view(db, actors[user], b.young)
    with pytest.raises(PermissionDenied, match="read_trial_data"):
        record_view.family_view(db, actors["dmc_chair"], b.family)
    with pytest.raises(NotFound):
        record_view.family_view(db, actors["coord_gla"], "G-9999-G")


def test_cro_family_in_england(db: Database, actors: Actors) -> None:
    b = build(db, actors, "CRO")
    v = record_view.child_view(db, actors["coord_cro"], b.young, today=TODAY)
    assert v.jurisdiction == "england_wales"
    assert v.events[0].event_type == "en.C1"
    with pytest.raises(PermissionDenied):
        record_view.child_view(db, actors["coord_gla"], b.young)


# --------------------------------------------------------------------------- statements


@contextlib.contextmanager
def counted(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(args[2])

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def test_statements_do_not_grow_with_the_trial(db: Database, actors: Actors, built: Built) -> None:
    b = built
    coord, statistician = actors["coord_gla"], actors["statistician"]  # resolved before counting
    counts = []
    for extra in (1, 3):  # 3 families, then 9: the trial grows, the statements must not
        for _ in range(extra):
            build(db, actors)
            build(db, actors, "CRO")
        with counted(db) as fam:
            record_view.family_view(db, coord, b.family, today=TODAY)
        with counted(db) as child:
            record_view.child_view(db, coord, b.young, today=TODAY)
        with counted(db) as blinded:
            record_view.family_view(db, statistician, b.family, today=TODAY)
        counts.append((len(fam), len(child), len(blinded)))
    assert counts[0] == counts[1], counts
    assert counts[0][0] < 40, counts


# --------------------------------------------------------------------------- histories


def test_record_history(db: Database, actors: Actors, built: Built) -> None:
    b = built
    h = record_view.record_history(db, actors["coord_gla"], "children", b.young)
    assert h.trial_id == b.young and h.entries[0].action == "insert"
    assert h.entries[0].user == "coord_gla"
    # the allocation's arm column, masked for a blinded role as `noim audit show` does
    fam = record_view.record_history(db, actors["coord_gla"], "families", b.family)
    fam_id = fam.key
    from sqlalchemy import select

    from noim.db.models import Allocation

    with db.read() as s:
        alloc_id = s.scalar(select(Allocation.id).where(Allocation.family_id == int(fam_id)))
    seen = record_view.record_history(db, actors["coord_gla"], "allocations", str(alloc_id))
    assert revealed(seen.entries)
    for user in ("research_gla", "statistician", "datamanager"):
        masked = record_view.record_history(db, actors[user], "allocations", str(alloc_id))
        assert masked.entries and revealed(masked.entries) == set()
    # identities: values hidden from roles that may not read them
    hist = record_view.record_history(db, actors["research_gla"], "children", b.young)
    assert hist.entries
    with db.read() as s:
        from noim.db.models import ChildIdentity

        ident = s.scalar(select(ChildIdentity.id))
    # the trail holds digests of identity values, never the values themselves
    shown = record_view.record_history(db, actors["coord_gla"], "child_identities", str(ident))
    assert shown.entries and "[identifiable]" not in str(shown.entries)
    assert shown.entries[0].new is not None and "given_name" in shown.entries[0].new
    hidden = record_view.record_history(db, actors["research_gla"], "child_identities", str(ident))
    assert [e.new for e in hidden.entries] == ["[identifiable]"] * len(shown.entries)


def test_record_history_refused(db: Database, actors: Actors, built: Built) -> None:
    b = built
    with pytest.raises(PermissionDenied, match="site 'GLA'"):
        record_view.record_history(db, actors["coord_cro"], "children", b.young)
    with pytest.raises(PermissionDenied, match="read_trial_data"):
        record_view.record_history(db, actors["dmc_chair"], "children", b.young)
    with pytest.raises(PermissionDenied, match="no site"):
        record_view.record_history(db, actors["coord_gla"], "users", "1")
    assert record_view.record_history(db, actors["datamanager"], "users", "1").entries
    with pytest.raises(NotFound):
        record_view.record_history(db, actors["coord_gla"], "no_such_table", "1")
    with pytest.raises(NotFound):
        record_view.record_history(db, actors["coord_gla"], "children", "999999")
    with pytest.raises(NotFound):
        record_view.record_history(db, actors["coord_gla"], "children", "x'; drop")


def test_hidden_service_use_has_no_history_for_blinded_roles(db: Database, actors: Actors) -> None:
    from decimal import Decimal

    from noim.services import economics

    b = build(db, actors)
    dm = actors["datamanager"]
    economics.add_unit_cost(db, dm, "nim_session", "IFT session", "session", Decimal("90"), 2024)
    use = economics.add_service_use(
        db, actors["coord_gla"], b.young, "nim_session", R_DAY, date(2024, 6, 1), Decimal(3)
    )
    query = queries.raise_query(db, actors["coord_gla"], "service_use", str(use.id), "count?")
    for table, key in (("service_use", str(use.id)), ("data_queries", str(query.id))):
        assert record_view.record_history(db, actors["coord_gla"], table, key).entries
        for user in ("research_gla", "statistician", "datamanager"):
            with pytest.raises(NotFound):
                record_view.record_history(db, actors[user], table, key)
    # nor is the query on it in the record views of blinded roles
    assert [q.table for q in record_view.family_view(db, dm, b.family).queries] == [
        "children",
        "families",
    ]
    seen = record_view.family_view(db, actors["coord_gla"], b.family).queries
    assert "service_use" in [q.table for q in seen]
