"""The records data queries are about: which tables may be queried, and each record's site and trial ID."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Table, func, literal, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from noim.db.audit import model_for, pk_columns
from noim.db.models import Assessment, Child, Family
from noim.domain.exceptions import Problem, ValidationError

_CHUNK = 500  # keys per IN (...) list
#: audited tables that hold no trial data to query (the queries themselves, users, set-up)
NOT_QUERYABLE = frozenset(
    {
        "data_queries",
        "data_query_messages",
        "users",
        "user_sites",
        "roles",
        "trial",
        "data_freezes",
        "randomisation_state",
        "allocation_list",
    }
)


def queryable_table(name: str) -> Table:
    """The table ``name`` if data queries may be raised on it (else QRY-003)."""
    try:
        model = model_for(name)
    except KeyError:
        model = None
    if (
        model is None
        or name in NOT_QUERYABLE
        or not model.__audited__
        or model.__identifiable__
        or len(pk_columns(model.__table__)) != 1  # type: ignore[arg-type]
    ):
        raise ValidationError(
            Problem("data query", "table", name, "QRY-003", "a table of trial data, e.g. children")
        )
    table: Table = model.__table__  # type: ignore[assignment]
    return table


def key_value(table: Table, key: str) -> Any:
    """``key`` as a value of the table's primary key (else QRY-004)."""
    (pk,) = pk_columns(table)
    if pk.type.python_type is int:
        if not key.strip().isdigit():
            raise ValidationError(
                Problem(
                    f"{table.name} record",
                    "key",
                    key,
                    "QRY-004",
                    "a record number (or a trial ID for children and families)",
                )
            )
        return int(key)
    return key


def _info_select(table: Table) -> Select[Any]:
    """(key, trial ID, site id) of the rows of ``table``, through its link to a child or family."""
    children: Table = Child.__table__  # type: ignore[assignment]
    families: Table = Family.__table__  # type: ignore[assignment]
    assessments: Table = Assessment.__table__  # type: ignore[assignment]
    (pk,) = pk_columns(table)
    c = table.c
    if table is children:
        return select(pk, c.trial_id, families.c.site_id).join_from(
            table, families, families.c.id == c.family_id
        )
    if table is families:
        return select(pk, c.trial_id, c.site_id)
    if "child_id" in c:
        child = children.alias("child")
        family = families.alias("family")
        family_id = func.coalesce(child.c.family_id, c.family_id) if "family_id" in c else None
        from_ = table.outerjoin(child, child.c.id == c.child_id).outerjoin(
            family, family.c.id == (family_id if family_id is not None else child.c.family_id)
        )
        trial_id = func.coalesce(child.c.trial_id, family.c.trial_id)
        return select(pk, trial_id, family.c.site_id).select_from(from_)
    if "family_id" in c:
        family = families.alias("family")
        return select(pk, family.c.trial_id, family.c.site_id).select_from(
            table.outerjoin(family, family.c.id == c.family_id)
        )
    if "assessment_id" in c:
        a, child, family = assessments.alias("a"), children.alias("child"), families.alias("family")
        return select(pk, child.c.trial_id, family.c.site_id).select_from(
            table.join(a, a.c.id == c.assessment_id)
            .join(child, child.c.id == a.c.child_id)
            .join(family, family.c.id == child.c.family_id)
        )
    site = c.site_id if "site_id" in c else literal(None)
    return select(pk, literal(None), site)


def record_info(
    s: Session, table: Table, keys: Collection[Any]
) -> dict[str, tuple[str | None, int | None]]:
    """Trial ID and site id of the rows of ``table`` with primary keys ``keys``, by key as text."""
    if not keys:
        return {}
    (pk,) = pk_columns(table)
    ordered = sorted(keys)
    out: dict[str, tuple[str | None, int | None]] = {}
    for start in range(0, len(ordered), _CHUNK):
        stmt = _info_select(table).where(pk.in_(ordered[start : start + _CHUNK]))
        for k, tid, site in s.execute(stmt):
            out[str(k)] = (
                str(tid) if tid is not None else None,
                int(site) if site is not None else None,
            )
    return out


def find_record(s: Session, table_name: str, key: str) -> tuple[Table, str, str | None, int | None]:
    """The record a query is raised on: (table, row key, trial ID, site id); QRY-003/004 if none.

    ``key`` is the primary key, or a trial ID for children and families.
    """
    table = queryable_table(table_name)
    key = key.strip()
    if table.name in ("children", "families") and not key.isdigit():
        found = s.scalar(select(table.c.id).where(table.c.trial_id == key.upper()))
        if found is None:
            raise ValidationError(
                Problem(
                    f"{table.name} record",
                    "key",
                    key,
                    "QRY-004",
                    f"the trial ID of one of the {table.name}",
                )
            )
        key = str(found)
    value = key_value(table, key)
    info = record_info(s, table, [value])
    if str(value) not in info:
        raise missing_record(table.name, key)
    trial_id, site_id = info[str(value)]
    return table, str(value), trial_id, site_id


def missing_record(table_name: str, key: str) -> ValidationError:
    """QRY-004: no record ``key`` in ``table_name`` (also what a blinded reader is told of a
    record hidden from them, so the two cannot be told apart)."""
    return ValidationError(
        Problem(
            f"{table_name} record",
            "key",
            key,
            "QRY-004",
            f"the key of an existing record of {table_name}",
        )
    )
