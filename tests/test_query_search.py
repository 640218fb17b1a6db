"""Data queries a page at a time: filters by site, status and age; paging; constant statements."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event

from noim.db.base import utcnow
from noim.db.session import Database
from noim.domain.exceptions import PermissionDenied, ValidationError
from noim.services import queries
from noim.services.query_search import page_queries
from tests.conftest import Actors
from tests.factories import rule_ids, trial_children


def _raise_on(db: Database, actors: Actors, child: str, n: int) -> list[int]:
    return [
        queries.raise_query(db, actors["datamanager"], "children", child, f"check {i}").id
        for i in range(n)
    ]


@contextmanager
def _statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def before(*args: Any) -> None:
        seen.append(args[2])

    event.listen(db.engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", before)


def test_pages_oldest_first_with_the_total(db: Database, actors: Actors) -> None:
    (child,) = trial_children(db, actors, "GLA")
    ids = _raise_on(db, actors, child, 5)
    first = page_queries(db, actors["datamanager"], per_page=2)
    assert [q.id for q in first.queries] == ids[:2]
    assert (first.total, first.pages, first.has_next, first.has_previous) == (5, 3, True, False)
    last = page_queries(db, actors["datamanager"], page=3, per_page=2)
    assert [q.id for q in last.queries] == ids[4:]
    assert (last.has_next, last.has_previous) == (False, True)
    beyond = page_queries(db, actors["datamanager"], page=9, per_page=2)
    assert beyond.queries == () and beyond.total == 5
    assert first.queries[0].trial_id == child and first.queries[0].site == "GLA"


def test_site_scope_and_site_filter(db: Database, actors: Actors) -> None:
    (gla,) = trial_children(db, actors, "GLA")
    (cro,) = trial_children(db, actors, "CRO")
    on_gla = _raise_on(db, actors, gla, 2)
    on_cro = _raise_on(db, actors, cro, 1)
    assert [q.id for q in page_queries(db, actors["coord_gla"]).queries] == on_gla
    assert [q.id for q in page_queries(db, actors["coord_cro"]).queries] == on_cro
    assert [q.id for q in page_queries(db, actors["datamanager"], site="CRO").queries] == on_cro
    assert page_queries(db, actors["datamanager"]).total == 3
    with pytest.raises(PermissionDenied):
        page_queries(db, actors["coord_gla"], site="CRO")
    with pytest.raises(PermissionDenied):
        page_queries(db, actors["dmc_chair"])


def test_status_and_age_filters(db: Database, actors: Actors) -> None:
    (child,) = trial_children(db, actors, "GLA")
    a, b, c = _raise_on(db, actors, child, 3)
    queries.respond(db, actors["coord_gla"], b, "It is right")
    queries.resolve(db, actors["datamanager"], c, "Fine")
    dm = actors["datamanager"]
    assert [q.id for q in page_queries(db, dm, statuses=["open"]).queries] == [a]
    assert [q.id for q in page_queries(db, dm, statuses=["answered", "resolved"]).queries] == [
        b,
        c,
    ]
    later = utcnow().date() + timedelta(days=10)
    assert page_queries(db, dm, min_age=10, today=later).total == 3
    assert page_queries(db, dm, min_age=11, today=later).total == 0
    assert page_queries(db, dm, max_age=10, today=later).total == 3
    assert page_queries(db, dm, max_age=9, today=later).total == 0
    assert page_queries(db, dm, min_age=0, max_age=0).total == 3
    (view,) = page_queries(db, dm, statuses=["open"], today=later).queries
    assert view.age_days == 10


@pytest.mark.parametrize(
    ("kwargs", "rule", "field"),
    [
        ({"statuses": ["pending"]}, "QRY-006", "status"),
        ({"min_age": -1}, "QRY-007", "min_age"),
        ({"min_age": 10, "max_age": 5}, "QRY-007", "max_age"),
        ({"page": 0}, "QRY-008", "page"),
        ({"per_page": 1000}, "QRY-008", "per_page"),
    ],
)
def test_bad_filters_are_refused(
    db: Database, actors: Actors, kwargs: dict[str, Any], rule: str, field: str
) -> None:
    with pytest.raises(ValidationError) as exc:
        page_queries(db, actors["datamanager"], **kwargs)
    assert rule_ids(exc) == {rule}
    assert {p.field for p in exc.value.problems} == {field}


def test_statements_do_not_grow_with_the_queries(db: Database, actors: Actors) -> None:
    children = trial_children(db, actors, "GLA", 3)
    _raise_on(db, actors, children[0], 2)
    with _statements(db) as few:
        small = page_queries(db, actors["coord_gla"], per_page=20)
    for child in children:
        ids = _raise_on(db, actors, child, 12)
        queries.respond(db, actors["coord_gla"], ids[0], "answer")
    with _statements(db) as many:
        big = page_queries(db, actors["coord_gla"], per_page=20)
    assert (small.total, big.total) == (2, 38)
    assert len(big.queries) == 20
    assert len(many) == len(few)
