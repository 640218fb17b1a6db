"""Analysis-ready DataFrames for the statisticians, with blinding applied.

Every function takes ``(db, actor, *, as_of=None, freeze=None)``: ``as_of`` is the
censoring date (default today), ``freeze`` the id of a data freeze to read instead of
the live data (``noim.extract._frozen``; the datasets are stored by ``snapshot``). Each runs a
fixed number of set-based SQL statements whatever the number of families, and returns
exactly the columns and dtypes documented in ``docs/analysis-datasets.md`` (generated
from ``noim.extract._columns``).  Permanence, returns home and re-entries are derived by
``noim.domain.permanence`` (the one implementation the legal services use too).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from functools import partial
from typing import Any

import pandas as pd
from sqlalchemy import func, select

from noim.db.blinding import arm_revealing_services
from noim.db.models import (
    Allocation,
    Assessment,
    Child,
    Consent,
    DecisionType,
    DerivedScore,
    Instrument,
    InterventionReceipt,
    LegalEvent,
    Placement,
    ServiceUse,
    TimepointRow,
    UnitCost,
)
from noim.db.session import Database
from noim.domain.exceptions import NoimError
from noim.domain.permanence import DatedEvent, moves, summarise
from noim.domain.roles import Actor, Role
from noim.extract import _frozen, operations
from noim.extract._base import (
    Cutoff,
    FreezeNotSupported,
    Kid,
    analysable,
    begin,
    cohort,
    keys,
    scope_ids,
    sees_arm,
)
from noim.extract._columns import (
    CHILDREN,
    COSTS,
    DATASETS,
    PERMANENCE,
    PERMANENCE_EVENT_CODES,
    PLACEMENTS,
    REENTRIES,
    SCORES_LONG,
    SCORES_WIDE,
    Column,
    Dataset,
    days,
    frame,
    render,
)
from noim.extract.operations import bundle, deviations, exits, queries, saes, screening, visits

__all__ = [
    "DATASETS",
    "PERMANENCE_EVENT_CODES",
    "SNAPSHOT_NAMES",
    "Column",
    "Dataset",
    "FreezeNotSupported",
    "MixedCurrencies",
    "bundle",
    "children",
    "costs",
    "deviations",
    "exits",
    "permanence",
    "placements",
    "queries",
    "reentries",
    "render",
    "saes",
    "scores",
    "screening",
    "visits",
]


def _dataset(
    db: Database,
    actor: Actor,
    name: str,
    build: Callable[[Any, Actor, Cutoff], pd.DataFrame],
    freeze: object | None,
    as_of: date | None,
) -> pd.DataFrame:
    """Dataset ``name``: read from the freeze when one is named, else built live by ``build``."""
    cutoff = begin(actor, name, freeze, as_of)
    if cutoff.freeze is not None:
        return _frozen.read(db, actor, name, cutoff.freeze)
    with db.read(actor) as s:
        return build(s, actor, cutoff)


def children(
    db: Database, actor: Actor, *, as_of: date | None = None, freeze: object | None = None
) -> pd.DataFrame:
    """One row per child (not voided) of a randomised family: IDs, arm, strata, dates, sets."""
    return _dataset(db, actor, "children", _children, freeze, as_of)


def _children(s: Any, actor: Actor, cutoff: Cutoff) -> pd.DataFrame:
    kids = cohort(s, actor, cutoff)
    data = keys(kids, not sees_arm(actor))
    data.update(
        arm_label=[k.arm_label for k in kids],
        stratum=[k.stratum for k in kids],
        youngest_age_band=[k.factors.get("youngest_age_band") for k in kids],
        family_size=[k.factors.get("family_size") for k in kids],
        sex=[k.sex for k in kids],
        age_at_entry_months=[k.age_at_entry_months for k in kids],
        age_at_entry_days=[days(k.entered_care_on, k.date_of_birth) for k in kids],
        entered_care_on=[k.entered_care_on for k in kids],
        randomised_on=[k.randomised_on for k in kids],
        joined_after_randomisation=[k.joined_after_randomisation for k in kids],
        end_of_follow_up=[k.end_of_follow_up for k in kids],
        end_of_follow_up_reason=[k.end_reason for k in kids],
        itt=[k.itt for k in kids],
        per_protocol=[k.per_protocol for k in kids],
        excluded_post_randomisation=[k.excluded for k in kids],
        major_deviation=[k.major_deviation for k in kids],
        withdrawn_level=[k.withdrawn_level for k in kids],
        withdrawn_on=[k.withdrawn_on for k in kids],
        lost_to_follow_up=[k.lost for k in kids],
    )
    receipts = _receipts(s, actor, cutoff)
    got = [receipts.get(k.family_pk) for k in kids]
    unblinded = sees_arm(actor)  # the time to the service's start could reveal the arm
    data.update(
        intervention_received=[r[0] if r else None for r in got],
        intervention_started_on=[r[1] if r and unblinded else None for r in got],
        intervention_not_received_reason=[r[2] if r else None for r in got],
    )
    return frame(CHILDREN, data)


def _receipts(
    s: Any, actor: Actor, cutoff: Cutoff
) -> dict[int, tuple[bool, date | None, str | None]]:
    """Each family's live intervention receipt as of ``as_of`` (1 statement): a service
    that started after ``as_of`` is left out (not yet received then)."""
    family_ids = select(Child.family_id).where(Child.id.in_(scope_ids(actor, cutoff)))
    out: dict[int, tuple[bool, date | None, str | None]] = {}
    for fid, received, started, reason in s.execute(
        select(
            InterventionReceipt.family_id,
            InterventionReceipt.received,
            InterventionReceipt.started_on,
            InterventionReceipt.reason,
        ).where(
            InterventionReceipt.family_id.in_(family_ids),
            InterventionReceipt.voided_at.is_(None),
        )
    ):
        if received and started is not None and started > cutoff.as_of:
            continue
        out[fid] = (bool(received), started, reason)
    return out


def _events(s: Any, actor: Actor, cutoff: Cutoff) -> dict[int, list[DatedEvent]]:
    """Each child's live legal events dated by ``as_of``, with what their types say (1 statement)."""
    out: dict[int, list[DatedEvent]] = defaultdict(list)
    for cid, eid, on, code, kind, outcome, order in s.execute(
        select(
            LegalEvent.child_id,
            LegalEvent.id,
            LegalEvent.event_date,
            LegalEvent.event_type_code,
            DecisionType.kind,
            DecisionType.permanence_outcome,
            DecisionType.sort_order,
        )
        .join(DecisionType, DecisionType.code == LegalEvent.event_type_code)
        .where(
            LegalEvent.child_id.in_(scope_ids(actor, cutoff)),
            LegalEvent.voided_at.is_(None),
            LegalEvent.event_date <= cutoff.as_of,
        )
    ):
        out[cid].append(DatedEvent(eid, on, code, kind, outcome, order))
    return out


def permanence(
    db: Database, actor: Actor, *, as_of: date | None = None, freeze: object | None = None
) -> pd.DataFrame:
    """Time to the first permanence decision, coded as competing events (0 = censored)."""
    return _dataset(db, actor, "permanence", _permanence, freeze, as_of)


def _joined_on(s: Any, actor: Actor, cutoff: Cutoff) -> dict[int, date]:
    """The date each child who joined its family after the randomisation joined the trial:
    its first live participation consent dated by ``as_of`` (1 statement)."""
    return dict(
        s.execute(
            select(Consent.child_id, func.min(Consent.consented_on))
            .join(Child, Child.id == Consent.child_id)
            .where(
                Consent.child_id.in_(scope_ids(actor, cutoff)),
                Child.joined_after_randomisation.is_(True),
                Consent.voided_at.is_(None),
                Consent.scope == "participation",
                Consent.consented_on <= cutoff.as_of,
            )
            .group_by(Consent.child_id)
        ).all()
    )


def time_origin(k: Kid, joined_on: date | None) -> tuple[date, str]:
    """A child's time origin and which date it is: the latest of the family's randomisation,
    the child's entry to care (never before birth: entry to care is never before it) and
    the date a late joiner joined the trial (ties: the earlier reason in that order)."""
    origin, reason = k.randomised_on, "randomisation"
    if k.entered_care_on > origin:
        origin, reason = k.entered_care_on, "entry_to_care"
    if joined_on is not None and k.joined_after_randomisation and joined_on > origin:
        origin, reason = joined_on, "joined_trial"
    return origin, reason


def _permanence(s: Any, actor: Actor, cutoff: Cutoff) -> pd.DataFrame:
    kids = analysable(cohort(s, actor, cutoff))
    events = _events(s, actor, cutoff)
    joined = _joined_on(s, actor, cutoff)
    cols: dict[str, list[Any]] = {
        n: [] for n in ("decision_on", "decision_type", "outcome", "event", "duration")
    }
    cols.update(days_from_entry=[], decided_before_randomisation=[])
    origins = [time_origin(k, joined.get(k.id)) for k in kids]
    for k, (origin, _why) in zip(kids, origins, strict=True):
        first = summarise(events.get(k.id, [])).first_permanence
        happened = first is not None and first.event_date <= k.end_of_follow_up
        on = first.event_date if first is not None and happened else k.end_of_follow_up
        outcome = first.permanence_outcome if first is not None and happened else None
        cols["decision_on"].append(on if happened else None)
        cols["decision_type"].append(first.code if first is not None and happened else None)
        cols["outcome"].append(outcome)
        cols["event"].append(PERMANENCE_EVENT_CODES[outcome] if outcome else 0)
        cols["duration"].append(max(0, days(on, origin)))
        cols["days_from_entry"].append(max(0, days(on, k.entered_care_on)))
        cols["decided_before_randomisation"].append(happened and on < k.randomised_on)
    data = keys(kids, not sees_arm(actor))
    data.update(
        randomised_on=[k.randomised_on for k in kids],
        entered_care_on=[k.entered_care_on for k in kids],
        time_origin=[o for o, _why in origins],
        time_origin_reason=[why for _o, why in origins],
        end_of_follow_up=[k.end_of_follow_up for k in kids],
        **cols,
    )
    return frame(PERMANENCE, data)


def _scores_long(s: Any, actor: Actor, cutoff: Cutoff, kids: list[Kid]) -> pd.DataFrame:
    rows = s.execute(
        select(
            Assessment.id,
            Assessment.child_id,
            Assessment.timepoint_code,
            Instrument.code,
            Assessment.respondent_type,
            Assessment.assessed_on,
            Assessment.out_of_window,
            Assessment.completed_at.is_not(None),
            DerivedScore.scale,
            DerivedScore.score,
        )
        .join(Instrument, Instrument.id == Assessment.instrument_id)
        .join(DerivedScore, DerivedScore.assessment_id == Assessment.id)
        .where(
            Assessment.child_id.in_(scope_ids(actor, cutoff)),
            Assessment.voided_at.is_(None),
            Assessment.assessed_on <= cutoff.as_of,
        )
    ).all()
    names = [
        "assessment_id",
        "pk",
        "timepoint",
        "instrument",
        "respondent",
        "assessed_on",
        "out_of_window",
        "completed",
        "scale",
        "score",
    ]
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
    raw = pd.DataFrame({n: pd.Series(c, dtype=object) for n, c in zip(names, columns, strict=True)})
    # analysable children only, with their key columns
    masked = not sees_arm(actor)
    key_frame = pd.DataFrame({"pk": [k.id for k in kids], **keys(kids, masked)})
    raw = raw.astype({"pk": "int64"}).merge(key_frame.astype({"pk": "int64"}), on="pk")
    # one assessment per child x timepoint x instrument x respondent: completed first,
    # then the earliest assessed_on, then the first recorded
    chosen = (
        raw[["assessment_id", "pk", "timepoint", "instrument", "respondent", "assessed_on"]]
        .assign(incomplete=~raw["completed"].astype(bool))
        .drop_duplicates("assessment_id")
        .sort_values(["incomplete", "assessed_on", "assessment_id"])
        .drop_duplicates(["pk", "timepoint", "instrument", "respondent"])["assessment_id"]
    )
    raw = raw[raw["assessment_id"].isin(chosen)]
    raw = raw.sort_values(["child_id", "timepoint", "instrument", "respondent", "scale"])
    data = {name: raw[name].to_numpy() for name in SCORES_LONG.names}
    data["score"] = pd.to_numeric(raw["score"], errors="coerce").to_numpy(dtype=float)
    return frame(SCORES_LONG, data)


def scores(
    db: Database,
    actor: Actor,
    *,
    as_of: date | None = None,
    freeze: object | None = None,
    wide: bool = False,
    respondent: str = "carer",
) -> pd.DataFrame:
    """Derived scores of live assessments, long (default) or wide (one row per child).

    ``respondent`` picks the respondent type of the wide form's scores.
    """
    cutoff = begin(actor, "scores", freeze, as_of)
    if cutoff.freeze is not None:
        return _frozen.read_scores(db, actor, cutoff.freeze, wide=wide, respondent=respondent)
    with db.read(actor) as s:
        kids = analysable(cohort(s, actor, cutoff))
        long = _scores_long(s, actor, cutoff, kids)
        if not wide:
            return long
        order = timepoint_order(s)
    return widen(long, kids_frame(kids, not sees_arm(actor)), order, respondent)


def timepoint_order(s: Any) -> list[str]:
    """The timepoint codes in schedule order (1 statement)."""
    return list(
        s.scalars(select(TimepointRow.code).order_by(TimepointRow.sort_order, TimepointRow.code))
    )


def kids_frame(kids: list[Kid], masked: bool) -> pd.DataFrame:
    """The key columns of ``kids`` (one row per child, in order)."""
    return pd.DataFrame(keys(kids, masked))


def widen(
    long: pd.DataFrame, kid_keys: pd.DataFrame, order: list[str], respondent: str
) -> pd.DataFrame:
    """The wide scores: one row per child of ``kid_keys``, one column per instrument x scale x
    timepoint of ``respondent``'s scores in ``long`` (columns in instrument, scale, schedule order)."""
    position = {code: i for i, code in enumerate(order)}
    sub = long[long["respondent"] == respondent]
    parts = sub[["instrument", "scale", "timepoint"]].astype(object).drop_duplicates()
    combos = sorted(
        parts.itertuples(index=False, name=None),
        key=lambda t: (t[0], t[1], position.get(t[2], len(position)), t[2]),
    )
    names = [f"{i}_{sc}_{tp}".lower() for i, sc, tp in combos]
    column = (sub["instrument"] + "_" + sub["scale"] + "_" + sub["timepoint"]).str.lower()
    table = (
        pd.DataFrame({"child_id": sub["child_id"], "column": column, "score": sub["score"]})
        .pivot(index="child_id", columns="column", values="score")
        .reindex(index=list(kid_keys["child_id"]), columns=names)
    )
    data: dict[str, Any] = {name: kid_keys[name].to_numpy() for name in SCORES_WIDE.names}
    data.update({name: table[name].to_numpy(dtype=float) for name in names})
    return frame(SCORES_WIDE, data, extra=names)


#: the datasets ``snapshot`` makes: the analysis datasets, the operational ones
#: (``noim.extract.operations``), and what reading them back needs (``allocations``,
#: ``timepoints``) or what reports read besides data (``trial``)
SNAPSHOT_NAMES: tuple[str, ...] = (
    "children",
    "permanence",
    "scores",
    "scores_wide",
    "placements",
    "reentries",
    "costs",
    *_frozen.BLINDED_VARIANTS.values(),
    "allocations",
    "timepoints",
    *operations.OPERATIONAL_NAMES,
    "trial",
)


_BLINDED_READER = Actor("noim-freeze-blinded", Role.STATISTICIAN)


def snapshot(
    s: Any, as_of: date, names: Sequence[str] = SNAPSHOT_NAMES, reader: Actor | None = None
) -> dict[str, pd.DataFrame]:
    """Datasets ``names`` as an unblinded all-sites reader sees them on ``as_of``, read in
    the session ``s`` (a freeze's one transaction, or a report's read transaction).

    Besides the analysis and operational datasets: ``allocations`` (each family's masked
    code, to mask at read time), ``timepoints`` (the schedule order, to widen other
    respondents' scores) and ``trial`` (the trial definition).  Only what ``names`` needs is
    read.

    ``reader`` defaults to the unblinded all-sites reader a freeze uses.  Live reads pass
    their own actor, so a blinded one never fetches an arm (its masked codes instead) and a
    site-scoped one only its sites' children; ``_frozen.for_reader`` then gives the same
    frames as reading a freeze back.
    """
    if reader is None:
        reader = Actor("noim-freeze", Role.UNBLINDED_STATISTICIAN)
    cutoff = Cutoff(as_of)
    memo: dict[str, Any] = {}

    def once(key: str, make: Callable[[], Any]) -> Any:
        if key not in memo:
            memo[key] = make()
        return memo[key]

    def kids() -> list[Kid]:
        return once("kids", lambda: cohort(s, reader, cutoff))  # type: ignore[no-any-return]

    def long() -> pd.DataFrame:
        return once("long", lambda: _scores_long(s, reader, cutoff, analysable(kids())))

    def order() -> list[str]:
        return once("order", lambda: timepoint_order(s))  # type: ignore[no-any-return]

    makers: dict[str, Callable[[], pd.DataFrame]] = {
        "children": lambda: _children(s, reader, cutoff),
        "permanence": lambda: _permanence(s, reader, cutoff),
        "scores": long,
        "scores_wide": lambda: widen(
            long(), kids_frame(analysable(kids()), not sees_arm(reader)), order(), "carer"
        ),
        "placements": lambda: _placements(s, reader, cutoff),
        "reentries": lambda: _reentries(s, reader, cutoff),
        "costs": lambda: _costs(s, reader, cutoff),
        # as a blinded reader sees it (without the services that reveal the arm), read
        # back by blinded roles in place of ``costs`` (``_frozen.BLINDED_VARIANTS``)
        "costs_blinded": lambda: _costs(s, _BLINDED_READER, cutoff),
        "allocations": lambda: _allocations(s, kids()),
        "timepoints": lambda: pd.DataFrame({"code": pd.Series(order(), dtype="string")}),
    }
    for name, build in operations.BUILDERS.items():
        makers[name] = partial(build, s, cutoff, reader)
    return {name: makers[name]() for name in names}


def _allocations(s: Any, kids: list[Kid]) -> pd.DataFrame:
    """Each family's masked code (1 statement)."""
    families = sorted({(k.family_id, k.family_pk) for k in kids})
    masked = dict(
        s.execute(
            select(Allocation.family_id, Allocation.masked_code).where(
                Allocation.family_id.in_([pk for _f, pk in families])
            )
        ).all()
    )
    return pd.DataFrame(
        {
            "family_id": pd.Series([f for f, _pk in families], dtype="string"),
            "masked_code": pd.Series([masked[pk] for _f, pk in families], dtype="string"),
        }
    )


def placements(
    db: Database, actor: Actor, *, as_of: date | None = None, freeze: object | None = None
) -> pd.DataFrame:
    """Placements, moves and days in care per child, up to the end of follow-up."""
    return _dataset(db, actor, "placements", _placements, freeze, as_of)


def _placements(s: Any, actor: Actor, cutoff: Cutoff) -> pd.DataFrame:
    kids = analysable(cohort(s, actor, cutoff))
    spans: dict[int, list[tuple[date, date | None]]] = defaultdict(list)
    for cid, start, end in s.execute(
        select(Placement.child_id, Placement.start_date, Placement.end_date)
        .where(
            Placement.child_id.in_(scope_ids(actor, cutoff)),
            Placement.voided_at.is_(None),
            Placement.start_date <= cutoff.as_of,
        )
        .order_by(Placement.child_id, Placement.start_date, Placement.id)
    ):
        spans[cid].append((start, end))
    cols: dict[str, list[Any]] = {
        n: []
        for n in (
            "n_placements",
            "moves",
            "two_or_more_moves",
            "last_placement_end",
            "days_in_care",
            "days_placed",
        )
    }
    for k in kids:
        eofu = k.end_of_follow_up
        mine = [(a, b) for a, b in spans.get(k.id, []) if a <= eofu]
        n = len(mine)
        ends = [b for _a, b in mine]
        closed = bool(mine) and all(b is not None and b <= eofu for b in ends)
        last_end = max(b for b in ends if b is not None) if closed else None
        cols["n_placements"].append(n)
        cols["moves"].append(moves(n))
        cols["two_or_more_moves"].append(moves(n) >= 2)
        cols["last_placement_end"].append(last_end)
        cols["days_in_care"].append(
            max(0, days(last_end if last_end is not None else eofu, k.entered_care_on))
        )
        cols["days_placed"].append(
            sum(days(min(b if b is not None else eofu, eofu), a) for a, b in mine)
        )
    data = keys(kids, not sees_arm(actor))
    data.update(
        entered_care_on=[k.entered_care_on for k in kids],
        end_of_follow_up=[k.end_of_follow_up for k in kids],
        **cols,
    )
    return frame(PLACEMENTS, data)


def reentries(
    db: Database, actor: Actor, *, as_of: date | None = None, freeze: object | None = None
) -> pd.DataFrame:
    """Returns home and re-entries to care after a return home, per child."""
    return _dataset(db, actor, "reentries", _reentries, freeze, as_of)


def _reentries(s: Any, actor: Actor, cutoff: Cutoff) -> pd.DataFrame:
    kids = analysable(cohort(s, actor, cutoff))
    events = _events(s, actor, cutoff)
    cols: dict[str, list[Any]] = {
        n: []
        for n in (
            "returned_home",
            "returned_home_on",
            "n_returns_home",
            "reentered",
            "reentered_on",
            "days_to_reentry",
            "duration",
            "event",
        )
    }
    for k in kids:
        eofu = k.end_of_follow_up
        summary = summarise([e for e in events.get(k.id, []) if e.event_date <= eofu])
        homes = summary.returns_home
        after_home = [r for r in summary.reentries if r.after_return_home_on is not None]
        first = after_home[0] if after_home else None
        cols["returned_home"].append(bool(homes))
        cols["returned_home_on"].append(homes[0].event_date if homes else None)
        cols["n_returns_home"].append(len(homes))
        cols["reentered"].append(first is not None)
        cols["reentered_on"].append(first.on if first else None)
        gap = (
            days(first.on, first.after_return_home_on)
            if first and first.after_return_home_on
            else None
        )
        cols["days_to_reentry"].append(gap)
        if gap is not None:
            cols["duration"].append(gap)
        elif homes:
            cols["duration"].append(days(eofu, homes[-1].event_date))
        else:
            cols["duration"].append(None)
        cols["event"].append(int(first is not None))
    data = keys(kids, not sees_arm(actor))
    data.update(end_of_follow_up=[k.end_of_follow_up for k in kids], **cols)
    return frame(REENTRIES, data)


class MixedCurrencies(NoimError):
    """Service costs in more than one currency cannot be summed."""


def costs(
    db: Database, actor: Actor, *, as_of: date | None = None, freeze: object | None = None
) -> pd.DataFrame:
    """Total service cost per child (quantity x unit cost), with currency and price years."""
    return _dataset(db, actor, "costs", _costs, freeze, as_of)


def _costs(s: Any, actor: Actor, cutoff: Cutoff) -> pd.DataFrame:
    kids = analysable(cohort(s, actor, cutoff))
    revealing = arm_revealing_services(s)
    blinded = not sees_arm(actor)
    uses: dict[int, list[tuple[date, Decimal, Decimal, str, int, bool]]] = defaultdict(list)
    stmt = (
        select(
            ServiceUse.child_id,
            ServiceUse.period_start,
            ServiceUse.quantity,
            UnitCost.cost,
            UnitCost.currency,
            UnitCost.price_year,
            UnitCost.code,
        )
        .join(UnitCost, UnitCost.id == ServiceUse.unit_cost_id)
        .where(
            ServiceUse.child_id.in_(scope_ids(actor, cutoff)),
            ServiceUse.voided_at.is_(None),
            ServiceUse.period_start <= cutoff.as_of,
        )
    )
    if blinded:  # a blinded reader never fetches the services that reveal the arm
        stmt = stmt.where(UnitCost.code.not_in(sorted(revealing)))
    for cid, start, qty, cost, currency, year, code in s.execute(stmt):
        uses[cid].append((start, Decimal(qty), Decimal(cost), currency, year, code in revealing))
    cols: dict[str, list[Any]] = {
        n: []
        for n in (
            "n_records",
            "total_cost",
            "arm_revealing_records",
            "arm_revealing_cost",
            "currency",
            "price_years",
        )
    }
    currencies: set[str] = set()
    for k in kids:
        mine = [u for u in uses.get(k.id, []) if u[0] <= k.end_of_follow_up]
        total = sum((q * c for _s, q, c, _cur, _y, _r in mine), Decimal(0))
        own = [u for u in mine if u[5]]
        cur = sorted({u[3] for u in mine})
        currencies.update(cur)
        cols["n_records"].append(len(mine))
        cols["total_cost"].append(float(total))
        cols["arm_revealing_records"].append(None if blinded else len(own))
        cols["arm_revealing_cost"].append(
            None if blinded else float(sum((q * c for _s, q, c, _cur, _y, _r in own), Decimal(0)))
        )
        cols["currency"].append(cur[0] if cur else None)
        cols["price_years"].append(";".join(str(y) for y in sorted({u[4] for u in mine})) or None)
    if len(currencies) > 1:
        raise MixedCurrencies(
            f"service use is costed in {', '.join(sorted(currencies))}; expected one currency "
            "(convert the unit costs to one currency before extracting costs)"
        )
    data = keys(kids, not sees_arm(actor))
    data.update(end_of_follow_up=[k.end_of_follow_up for k in kids], **cols)
    return frame(COSTS, data)
