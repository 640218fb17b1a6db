"""Imported assessments against stored data (skipped when identical, IMP-010 when not),
and writing the new ones: scores, rows built column-wise, inserted with ONE audit row
per assessment holding its item responses and derived scores
(``noim.db.audit_grouped.insert_records``), visits linked and completed.

``_score_many`` is the one adapter to the vectorised scorer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlalchemy import Table, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from noim import instruments
from noim.db import bulk
from noim.db.audit_grouped import insert_records
from noim.db.base import utcnow
from noim.db.models import Assessment, DerivedScore, ItemResponse
from noim.domain.codes import RESPONSE_MISSING_REASONS
from noim.domain.roles import Actor
from noim.services.assessments import link_visits, registered_instruments
from noim.services.imports.base import ImportContext, Plan, chunks
from noim.services.imports.reader import Cells
from noim.services.visits import complete_visits

if TYPE_CHECKING:
    from noim.services.imports.assessments import _Groups

Defs = list[instruments.InstrumentDef | None]


def _score_many(
    instrument: str, values: np.ndarray, items: Sequence[int], form: str | None = None
) -> dict[str, np.ndarray]:
    """Scores of many assessments (``noim.instruments.score_many``: NaN where a scale is missing)."""
    return instruments.score_many(instrument, values, items, form)


def _table(model: type[Any]) -> Table:
    return model.__table__  # type: ignore[no-any-return]


def writer(
    s: Session,
    actor: Actor,
    g: _Groups,
    new: np.ndarray,
    unchanged: int,
    defs: Defs,
    ctx: ImportContext,
) -> Plan:
    """The rows of the new assessments (``new``: indices into ``g``), and the step writing them."""
    registered = registered_instruments(s)
    n = int(new.size)
    children = g.child[new].tolist()
    tps = [g.timepoint[k] for k in new.tolist()]
    dates = [g.date[k] for k in new.tolist()]
    links = link_visits(s, children, tps, dates)
    now = utcnow()
    ins = g.instrument[new]
    ins_ids = np.array(
        [registered[(d.code, d.version)] if d is not None else -1 for d in defs], dtype=np.int64
    )
    assessments: dict[str, Sequence[Any]] = {
        "child_id": children,
        "timepoint_code": tps,
        "visit_id": links.visit_ids,
        "instrument_id": ins_ids[ins].tolist(),
        "form": [g.form[k] for k in new.tolist()],
        "respondent_type": [g.respondent[k] for k in new.tolist()],
        "assessed_on": dates,
        "administered_by_id": [actor.user_id] * n,
        "out_of_window": links.out_of_window,
        "completed_at": [now] * n,
    }
    # item responses: the items given and every required item, by assessment then item
    required = np.zeros((len(defs), g.present.shape[1]), dtype=bool)
    for i, d in enumerate(defs):
        if d is not None:
            for number, item_def in d.items.items():
                required[i, number] = not item_def.optional
    a_idx, item = np.nonzero(g.present[new] | required[ins])
    values = g.value[new][a_idx, item]
    codes = g.reason[new][a_idx, item]
    reasons = np.array([*RESPONSE_MISSING_REASONS, "not_answered", None], dtype=object)
    reason_index = np.where(np.isnan(values), np.where(codes >= 0, codes, len(reasons) - 2), -1)
    scores = _scores(g, new, defs)
    details = {
        "item responses": int(a_idx.size),
        "derived scores": sum(int(pos.size) * len(scales) for pos, scales in scores),
        "flagged out of window": sum(links.out_of_window),
        "visits completed": len(links.completions),
    }

    def write() -> None:
        ctx.progress("write", 0, 2)
        conn = s.connection()
        with bulk.large_writes(conn):
            _insert(conn)
            ctx.progress("write", 1, 2)
            complete_visits(s, links.completions)
        ctx.progress("write", 2, 2)

    def _insert(conn: Connection) -> None:
        ids = np.array(bulk.reserve_ids(conn, _table(Assessment), n), dtype=np.int64)
        item_ids = bulk.reserve_ids(conn, _table(ItemResponse), int(a_idx.size))
        responses = {
            "id": item_ids,
            "assessment_id": ids[a_idx],
            "item": item,
            "value": values,  # NaN: missing (stored as NULL)
            "missing_reason": reasons[reason_index],
        }
        # one audit row per assessment: its row, its item responses and its derived scores
        insert_records(
            s,
            Assessment,
            _complete(Assessment, n, {"id": ids.tolist(), **assessments}),
            {
                ItemResponse: responses,
                DerivedScore: _score_columns(s, ids, scores, defs, ins, now),
            },
            link="assessment_id",
        )

    return Plan(
        [],
        n,
        unchanged,
        write,
        unit="assessment",
        details={k: v for k, v in details.items() if v},
    )


def _complete(
    model: type[Any], n: int, given: dict[str, Sequence[Any]]
) -> dict[str, Sequence[Any]]:
    """Every column of ``model``: the ``given`` ones, the others NULL."""
    return {c.name: given.get(c.name, [None] * n) for c in _table(model).columns}


ScoreParts = list[tuple[np.ndarray, list[tuple[str, np.ndarray]]]]


def _scores(g: _Groups, new: np.ndarray, defs: Defs) -> ScoreParts:
    """Scores of the new assessments, by instrument, form and set of items given:
    ``[(positions in new, [(scale, scores)])]`` (NaN: cannot be scored)."""
    if not new.size:
        return []
    forms, form_codes = np.unique(
        np.array([g.form[k] or "" for k in new.tolist()]), return_inverse=True
    )
    pattern = np.column_stack([g.instrument[new], form_codes.reshape(-1), g.present[new]])
    # one kind per distinct row (hashed as bytes: no sort of the whole matrix)
    which, firsts = pd.factorize(np.array([r.tobytes() for r in pattern], dtype=object))
    by_kind = np.argsort(which, kind="stable")
    bounds = np.searchsorted(which[by_kind], np.arange(len(firsts) + 1))
    kinds = pattern[by_kind[bounds[:-1]]]
    out: ScoreParts = []
    for p, kind in enumerate(kinds):
        d = defs[int(kind[0])]
        assert d is not None
        pos = by_kind[bounds[p] : bounds[p + 1]]
        items = [i for i in sorted(d.items) if kind[2 + i]]
        values = g.value[new[pos]][:, items]
        form = str(forms[int(kind[1])]) or None
        result = _score_many(d.code, values, items, form)
        order = [sc.code for sc in d.scales_for(form) if sc.code in result]
        out.append((pos, [(scale, result[scale]) for scale in order]))
    return out


def _score_columns(
    s: Session, ids: np.ndarray, scores: ScoreParts, defs: Defs, ins: np.ndarray, now: datetime
) -> dict[str, Sequence[Any]]:
    """The derived scores' rows, column-wise (with the scoring version), by assessment."""
    parts_pos: list[np.ndarray] = []
    parts_order: list[np.ndarray] = []
    parts_scale: list[np.ndarray] = []
    parts_score: list[np.ndarray] = []
    for positions, scales in scores:
        for rank, (code, values) in enumerate(scales):
            parts_pos.append(positions)
            parts_order.append(np.full(positions.size, rank))
            parts_scale.append(np.full(positions.size, code, dtype=object))
            parts_score.append(values)
    if not parts_pos:
        return {c.name: [] for c in _table(DerivedScore).columns}
    pos = np.concatenate(parts_pos)
    by = np.lexsort((np.concatenate(parts_order), pos))
    pos = pos[by]
    versions = np.array([d.scoring_version if d else "" for d in defs], dtype=object)
    n = int(pos.size)
    return {
        "id": bulk.reserve_ids(s.connection(), _table(DerivedScore), n),
        "assessment_id": ids[pos],
        "scale": np.concatenate(parts_scale)[by],
        "score": np.concatenate(parts_score)[by],  # NaN: cannot be scored (NULL)
        "scoring_version": versions[ins[pos]].tolist(),
        "computed_at": [now] * n,
    }


# --------------------------------------------------------------------------- stored data


def _stored_responses(
    d: instruments.InstrumentDef, g: _Groups, k: int
) -> dict[int, tuple[float | None, str | None]]:
    """What record_assessment would store for assessment ``k``: the items given, and every
    required item (missing ones as not answered)."""
    out: dict[int, tuple[float | None, str | None]] = {}
    for item, item_def in d.items.items():
        if not g.present[k, item] and item_def.optional:
            continue
        v = float(g.value[k, item])
        if not math.isnan(v):
            out[item] = (v, None)
        else:
            code = int(g.reason[k, item])
            out[item] = (None, RESPONSE_MISSING_REASONS[code] if code >= 0 else "not_answered")
    return out


def against_stored(
    s: Session, cells: Cells, g: _Groups, defs: list[instruments.InstrumentDef | None]
) -> tuple[np.ndarray, int]:
    """Indices of the new assessments, and how many are already stored identically."""
    registered = registered_instruments(s)
    ids = [registered[(d.code, d.version)] if d is not None else -1 for d in defs]
    index = {
        (c, tp, ids[i], r, on): k
        for k, (c, tp, i, r, on) in enumerate(
            zip(
                g.child.tolist(),
                g.timepoint,
                g.instrument.tolist(),
                g.respondent,
                g.date,
                strict=True,
            )
        )
    }
    matched: dict[int, tuple[int, str | None]] = {}  # group -> (stored id, form)
    for chunk in chunks(sorted(set(g.child.tolist()))):
        stmt = select(
            Assessment.child_id,
            Assessment.timepoint_code,
            Assessment.instrument_id,
            Assessment.respondent_type,
            Assessment.assessed_on,
            Assessment.id,
            Assessment.form,
        ).where(Assessment.child_id.in_(chunk), Assessment.voided_at.is_(None))
        for r in s.execute(stmt):
            k = index.get((r[0], r[1], r[2], r[3], r[4]))
            if k is not None:
                matched[k] = (r[5], r[6])
    stored: dict[int, dict[int, tuple[float | None, str | None]]] = {}
    for chunk in chunks(sorted(a for a, _f in matched.values())):
        rows = select(
            ItemResponse.assessment_id,
            ItemResponse.item,
            ItemResponse.value,
            ItemResponse.missing_reason,
        ).where(ItemResponse.assessment_id.in_(chunk))
        for aid, item, value, reason in s.execute(rows):
            stored.setdefault(aid, {})[item] = (value, reason)
    unchanged = 0
    for k, (aid, form) in sorted(matched.items()):
        if not g.ok[k]:
            continue
        d = defs[int(g.instrument[k])]
        assert d is not None
        mine = _stored_responses(d, g, k)
        theirs = stored.get(aid, {})
        first = int(g.first_row[k])
        if form != g.form[k]:
            cells.problem(
                first,
                "form",
                g.form[k] or "",
                f"the form of stored assessment {aid} ({form or 'none'}); correct stored data "
                "with a reason, not by importing over it",
                "IMP-010",
            )
        elif mine != theirs:
            item = min(i for i in set(mine) | set(theirs) if mine.get(i) != theirs.get(i))
            row = int(g.entry_row[k, item]) if item < g.entry_row.shape[1] else -1
            got = mine.get(item, (None, "(not in the file)"))
            was = theirs.get(item, (None, "(not stored)"))
            cells.problem(
                row if row >= 0 else first,
                "value",
                got[1] if got[0] is None else got[0],
                f"the stored response to item {item} of assessment {aid} "
                f"({was[1] if was[0] is None else was[0]}); correct stored data with a reason "
                "(noim assessment correct), not by importing over it",
                "IMP-010",
            )
        else:
            unchanged += 1
        g.ok[k] = False  # stored: nothing to write
    new = np.flatnonzero(g.ok)
    return new, unchanged
