"""Operational datasets: the screening log, follow-up visits, data queries, SAEs, protocol
deviations and exits (withdrawals and losses to follow-up), one row per record.

The interim reports build their CONSORT screening numbers, retention, overdue visits, query
ageing, safety tables and exit reasons from these DataFrames only, so that a report read from
a data freeze does not touch a live table.  Each builder is ONE set-based SQL statement run
as an unblinded all-sites reader (``noim.extract.snapshot``: inside a freeze's transaction, or
inside the report's read transaction); the reader's view (site scope) is applied afterwards by
``noim.extract._frozen.for_reader``, in both cases.  None of them has an arm column: the
report takes each child's arm from the ``children`` dataset (closed report only), so blinded
readers never see one.  Free text that the reports do not show (SAE and deviation
descriptions, query messages, screening references) is not extracted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Select, String, cast, literal, null, select, union_all

from noim.db.models import (
    Child,
    DataQuery,
    Family,
    FollowUpVisit,
    LossToFollowUp,
    ProtocolDeviation,
    ScreeningEntry,
    SeriousAdverseEvent,
    Site,
    Trial,
    Withdrawal,
)
from noim.db.session import Database
from noim.domain.roles import Actor
from noim.extract import _frozen
from noim.extract._base import Cutoff, begin, scope_ids
from noim.extract._columns import Column, Dataset, frame

__all__ = [
    "BUILDERS",
    "OPERATIONAL",
    "OPERATIONAL_NAMES",
    "TRIAL",
    "bundle",
    "deviations",
    "exits",
    "queries",
    "saes",
    "screening",
    "visits",
]


def _c(name: str, dtype: str, description: str) -> Column:
    return Column(name, dtype, description)


_CHILD = _c("child_id", "string", "The child's trial ID.")
_FAMILY = _c("family_id", "string", "The family's trial ID.")
_SITE = _c("site", "string", "Site code.")

SCREENING = Dataset(
    "screening",
    "one per live (not voided) screening-log entry screened by `as_of`",
    "The screening log: families screened, eligible or not (with the reason), declined, "
    "enrolled. The CONSORT screening counts and not-eligible reasons are counted from it.",
    (
        _c("entry_id", "int64", "Internal id of the screening entry."),
        _SITE,
        _c("screened_on", "datetime64[ns]", "Date screened."),
        _c("n_children", "int64", "Children in the family screened."),
        _c("eligible", "bool", "The family was eligible."),
        _c("ineligible_reason", "string", "Why not eligible; missing when eligible."),
        _c("declined", "bool", "Eligible but declined to take part."),
        _c("enrolled", "bool", "Enrolled: the entry is linked to a registered family."),
        _c("family_id", "string", "The enrolled family's trial ID; missing when not enrolled."),
    ),
)

VISITS = Dataset(
    "visits",
    "one per live follow-up visit of a child in scope (live child of a family randomised "
    "by `as_of`)",
    "The follow-up schedule and what happened: retention, overdue visits. `status` is the "
    "stored status when read (`scheduled`, `completed`, `missed`, `not_required`); due and "
    "overdue are derived from the window and the as-of date.",
    (
        _CHILD,
        _FAMILY,
        _SITE,
        _c("timepoint", "string", "Timepoint code."),
        _c("target_date", "datetime64[ns]", "Target date of the visit."),
        _c("window_start", "datetime64[ns]", "First day of the visit window."),
        _c("window_end", "datetime64[ns]", "Last day of the visit window."),
        _c("status", "string", "Stored status."),
        _c("completed_on", "datetime64[ns]", "Date completed; missing unless completed."),
    ),
)

QUERIES = Dataset(
    "queries",
    "one per data query raised by `as_of` (any status)",
    "Data queries and their state: open queries and their ageing. The message and the "
    "value seen are not extracted.",
    (
        _c("query_id", "int64", "The query's id (`noim queries show ID`)."),
        _c("site", "string", "Site code of the queried record; missing for trial-wide records."),
        _c("table_name", "string", "Table of the queried record."),
        _c("field", "string", "Field queried; missing for the whole record."),
        _c("rule_id", "string", "Rule that raised it; missing when raised by a person."),
        _c("status", "string", "`open`, `answered`, `resolved` or `closed` when read."),
        _c("raised_on", "datetime64[ns]", "Date raised (UTC)."),
        _c("closed_on", "datetime64[ns]", "Date closed (UTC); missing while not closed."),
    ),
)

SAES = Dataset(
    "saes",
    "one per live serious adverse event reported by `as_of`, of a live child",
    "Serious adverse events for the safety tables (counts and listing). No arm, no "
    "description (free text).",
    (
        _CHILD,
        _FAMILY,
        _SITE,
        _c("onset", "datetime64[ns]", "Date of onset."),
        _c("reported", "datetime64[ns]", "Date reported."),
        _c("category", "string", "SAE category."),
        _c("relatedness", "string", "Relatedness to the intervention; missing when not assessed."),
        _c("expected", "boolean", "Expected; missing when not assessed."),
        _c("outcome", "string", "Outcome; missing while not known."),
    ),
)

DEVIATIONS = Dataset(
    "deviations",
    "one per live protocol deviation that occurred by `as_of`",
    "Protocol deviations by category and severity (no description).",
    (
        _FAMILY,
        _c("child_id", "string", "The child's trial ID; missing for the whole family."),
        _SITE,
        _c("occurred_on", "datetime64[ns]", "Date of the deviation."),
        _c("category", "string", "Category."),
        _c("severity", "string", "`minor` or `major`."),
    ),
)

EXITS = Dataset(
    "exits",
    "one per live withdrawal dated by `as_of` and per live loss to follow-up declared by "
    "`as_of`, of a live child",
    "Withdrawals (every level) and losses to follow-up with their reasons, for the "
    "CONSORT exit reasons.",
    (
        _CHILD,
        _FAMILY,
        _SITE,
        _c("exit", "string", "`withdrawal` or `lost_to_follow_up`."),
        _c(
            "level",
            "string",
            "Withdrawal level (`intervention`, `follow_up`, `data`); missing for a loss.",
        ),
        _c("on", "datetime64[ns]", "Date withdrawn, or date the loss was declared."),
        _c("reason", "string", "The reason recorded."),
    ),
)

#: the trial definition the database was initialised with (one row): names, sites' targets,
#: arms and their labels, teams, timepoints; what reports read besides data
TRIAL = Dataset(
    "trial",
    "one row",
    "The trial's registered short name and registration, and its definition (TOML text, "
    "`noim.domain.trialdef.parse_definition`) with its SHA-256.",
    (
        _c("short_name", "string", "The trial's registered short name."),
        _c("registration", "string", "Registration number."),
        _c("definition_sha256", "string", "SHA-256 of the definition text."),
        _c("definition", "string", "The trial definition (TOML)."),
    ),
)

OPERATIONAL: tuple[Dataset, ...] = (SCREENING, VISITS, QUERIES, SAES, DEVIATIONS, EXITS)
OPERATIONAL_NAMES: tuple[str, ...] = tuple(ds.name for ds in OPERATIONAL)


def _rows(s: Any, dataset: Dataset, stmt: Any, dates: tuple[str, ...] = ()) -> pd.DataFrame:
    """Run ``stmt`` (its columns in the dataset's order) and cast the result; the timestamps
    of columns ``dates`` become their (UTC) dates."""
    rows = s.execute(stmt).all()
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(dataset.columns)
    data = {n: list(c) for n, c in zip(dataset.names, columns, strict=True)}
    for name in dates:
        data[name] = [None if v is None else _utc_date(v) for v in data[name]]
    return frame(dataset, data)


def _utc_date(value: datetime) -> date:
    """The UTC date of a stored timestamp (naive ones are stored in UTC)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.date()


def _screening(s: Any, cutoff: Cutoff, reader: Actor) -> pd.DataFrame:
    e = ScreeningEntry
    return _rows(
        s,
        SCREENING,
        select(
            e.id,
            Site.code,
            e.screened_on,
            e.n_children,
            e.eligible,
            e.ineligible_reason,
            e.declined,
            e.family_id.is_not(None),
            Family.trial_id,
        )
        .join(Site, Site.id == e.site_id)
        .outerjoin(Family, Family.id == e.family_id)
        .where(e.voided_at.is_(None), e.screened_on <= cutoff.as_of)
        .order_by(e.screened_on, e.id),
    )


def _visits(s: Any, cutoff: Cutoff, reader: Actor) -> pd.DataFrame:
    v = FollowUpVisit
    return _rows(
        s,
        VISITS,
        select(
            Child.trial_id,
            Family.trial_id,
            Site.code,
            v.timepoint_code,
            v.target_date,
            v.window_start,
            v.window_end,
            v.status,
            v.completed_on,
        )
        .join(Child, Child.id == v.child_id)
        .join(Family, Family.id == Child.family_id)
        .join(Site, Site.id == Family.site_id)
        .where(v.voided_at.is_(None), v.child_id.in_(scope_ids(reader, cutoff)))
        .order_by(Child.trial_id, v.target_date, v.timepoint_code),
    )


def _queries(s: Any, cutoff: Cutoff, reader: Actor) -> pd.DataFrame:
    q = DataQuery
    return _rows(
        s,
        QUERIES,
        select(
            q.id, Site.code, q.table_name, q.field, q.rule_id, q.status, q.raised_at, q.closed_at
        )
        .outerjoin(Site, Site.id == q.site_id)
        .where(q.raised_at < cutoff.day_after)
        .order_by(q.id),
        dates=("raised_on", "closed_on"),
    )


def _saes(s: Any, cutoff: Cutoff, reader: Actor) -> pd.DataFrame:
    e = SeriousAdverseEvent
    return _rows(
        s,
        SAES,
        select(
            Child.trial_id,
            Family.trial_id,
            Site.code,
            e.onset_date,
            e.reported_on,
            e.category,
            e.relatedness,
            e.expected,
            e.outcome,
        )
        .join(Child, Child.id == e.child_id)
        .join(Family, Family.id == Child.family_id)
        .join(Site, Site.id == Family.site_id)
        .where(e.voided_at.is_(None), Child.voided_at.is_(None), e.reported_on <= cutoff.as_of)
        .order_by(e.onset_date, Child.trial_id, e.id),
    )


def _deviations(s: Any, cutoff: Cutoff, reader: Actor) -> pd.DataFrame:
    d = ProtocolDeviation
    return _rows(
        s,
        DEVIATIONS,
        select(Family.trial_id, Child.trial_id, Site.code, d.occurred_on, d.category, d.severity)
        .join(Family, Family.id == d.family_id)
        .join(Site, Site.id == Family.site_id)
        .outerjoin(Child, Child.id == d.child_id)
        .where(d.voided_at.is_(None), d.occurred_on <= cutoff.as_of)
        .order_by(d.occurred_on, d.id),
    )


def _exits(s: Any, cutoff: Cutoff, reader: Actor) -> pd.DataFrame:
    w, lost = Withdrawal, LossToFollowUp

    def of(model: Any, kind: str, level: Any, on: Any, rank: int) -> Select[Any]:
        return (
            select(
                Child.trial_id.label("child_id"),
                Family.trial_id.label("family_id"),
                Site.code.label("site"),
                literal(kind, String).label("exit"),
                level.label("level"),
                on.label("on"),
                model.reason.label("reason"),
                literal(rank).label("rank"),
                model.id.label("id"),
            )
            .select_from(model)
            .join(Child, Child.id == model.child_id)
            .join(Family, Family.id == Child.family_id)
            .join(Site, Site.id == Family.site_id)
            .where(model.voided_at.is_(None), Child.voided_at.is_(None), on <= cutoff.as_of)
        )

    both = union_all(
        of(w, "withdrawal", w.level, w.withdrawn_on, 0),
        of(lost, "lost_to_follow_up", cast(null(), String), lost.declared_on, 1),
    ).subquery()
    stmt = select(*(both.c[n] for n in EXITS.names)).order_by(
        both.c.child_id, both.c.rank, both.c.on, both.c.id
    )
    return _rows(s, EXITS, stmt)


def _trial(s: Any, cutoff: Cutoff, reader: Actor) -> pd.DataFrame:
    return _rows(
        s,
        TRIAL,
        select(
            Trial.short_name, Trial.registration, Trial.definition_sha256, Trial.definition_toml
        ),
    )


#: name -> builder ``(session, cutoff, reader) -> DataFrame`` (one statement each); the
#: reader must see all sites (site scope is applied when the frame is handed out)
BUILDERS: dict[str, Callable[[Any, Cutoff, Actor], pd.DataFrame]] = {
    "screening": _screening,
    "visits": _visits,
    "queries": _queries,
    "saes": _saes,
    "deviations": _deviations,
    "exits": _exits,
    "trial": _trial,
}


# --------------------------------------------------------------------------- reading


def bundle(
    db: Database,
    actor: Actor,
    names: Sequence[str],
    *,
    as_of: date | None = None,
    freeze: object | None = None,
) -> dict[str, pd.DataFrame]:
    """Several datasets read together, as ``actor`` may see them: from data freeze ``freeze``,
    or live as of ``as_of`` in ONE read transaction.  Both ways go through the same steps:
    the datasets as ``snapshot`` builds them (stored by the freeze as its unblinded all-sites
    reader saw them; or built now, as ``actor`` sees them, so a blinded actor never fetches
    an arm), then ``_frozen.for_reader`` (site scope, masked arm codes).

    ``names`` are ``snapshot`` names; ``scores_wide`` is the carer's wide scores.
    """
    from noim.extract import SNAPSHOT_NAMES, snapshot

    unknown = [n for n in names if n not in SNAPSHOT_NAMES]
    if unknown:  # a programming error
        raise KeyError(f"no dataset {', '.join(unknown)}; expected one of {SNAPSHOT_NAMES}")
    cutoff = begin(actor, ", ".join(names), freeze, as_of)
    need = list(dict.fromkeys([*names, "allocations"]))
    if cutoff.freeze is not None:
        got = _frozen.load(db, actor, cutoff.freeze, need)
    else:
        with db.read(actor) as s:
            got = snapshot(s, cutoff.as_of, need, actor)
    return {n: _frozen.for_reader(got[n], actor, got["allocations"]) for n in names}


def _operational(name: str) -> Callable[..., pd.DataFrame]:
    def read(
        db: Database, actor: Actor, *, as_of: date | None = None, freeze: object | None = None
    ) -> pd.DataFrame:
        return bundle(db, actor, [name], as_of=as_of, freeze=freeze)[name]

    dataset = next(ds for ds in OPERATIONAL if ds.name == name)
    read.__name__ = read.__qualname__ = name
    read.__doc__ = f"{dataset.summary}\n\nOne row {dataset.row.removeprefix('one ')}."
    return read


screening = _operational("screening")
visits = _operational("visits")
queries = _operational("queries")
saes = _operational("saes")
deviations = _operational("deviations")
exits = _operational("exits")
