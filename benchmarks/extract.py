"""Benchmark: the analysis extracts (``noim.extract``) at growing numbers of families.

Builds a synthetic randomised trial with ``noim.db.audit.insert_rows`` (audited bulk
inserts, one per table and size; about 1.5 children per family, each with two
placements, two legal events, two SDQ assessments with six derived scores each and two
service-use records), then times each extract as the blinded statistician and
reports the rows returned and the SQL statements run (constant across sizes).

Run: ``.venv/bin/python benchmarks/extract.py [--sizes 1000,5000,20000] [--database URL]``
(default: a temporary SQLite file per size; with ``--database`` the URL must point to an
empty database, and only the first size is run).  Prints a table and one JSON line per
extract and size.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import event, select

from noim import extract
from noim.db.audit import insert_rows
from noim.db.base import utcnow
from noim.db.models import (
    Allocation,
    Assessment,
    Child,
    DerivedScore,
    Family,
    Instrument,
    LegalEvent,
    Placement,
    ServiceUse,
    Site,
    UnitCost,
    User,
    Withdrawal,
)
from noim.db.session import Database
from noim.domain import trial_ids
from noim.domain.trialdef import default_definition
from noim.services import setup, users

AS_OF = date(2026, 10, 31)
SCALES = ("emotional", "conduct", "hyperactivity", "peer", "prosocial", "total_difficulties")

EXTRACTS: dict[str, Callable[..., pd.DataFrame]] = {
    "children": extract.children,
    "permanence": extract.permanence,
    "scores (long)": extract.scores,
    "scores (wide)": lambda db, actor, **kw: extract.scores(
        db, actor, wide=True, respondent="researcher", **kw
    ),
    "placements": extract.placements,
    "reentries": extract.reentries,
    "costs": extract.costs,
}


def build(url: str, n_families: int, seed: int = 5) -> Database:
    """A trial of ``n_families`` randomised families written with audited bulk inserts."""
    setup.initialise(url, default_definition(), "bench")
    db = Database(url)
    admin = users.resolve_actor(db, "bench")
    users.add_user(db, admin, "statistician", "statistician", ())
    rng = np.random.default_rng(seed)
    with db.write(admin, reason="benchmark data") as s:
        sites = {
            code: (sid, prefix)
            for sid, code, prefix in s.execute(select(Site.id, Site.code, Site.id_prefix))
        }
        admin_id = s.scalar(select(User.id).where(User.name == "bench"))
        sdq = s.scalar(select(Instrument.id).where(Instrument.code == "sdq"))
        (unit_id,) = insert_rows(
            s,
            UnitCost,
            [
                {
                    "code": "sw_hour",
                    "service": "Social worker",
                    "unit": "hour",
                    "cost": Decimal("45.50"),
                    "currency": "GBP",
                    "price_year": 2023,
                }
            ],
        )
        fam_rows, kid_rows, alloc_rows = [], [], []
        site_codes = sorted(sites)
        seq = dict.fromkeys(site_codes, 0)
        now = utcnow()
        entered: list[date] = []
        for i in range(n_families):
            code = site_codes[i % len(site_codes)]
            seq[code] += 1
            fam_rows.append(
                {
                    "trial_id": trial_ids.family_id(sites[code][1], seq[code]),
                    "site_id": sites[code][0],
                    "site_seq": seq[code],
                    "in_care_proceedings": True,
                    "registered_at": now,
                    "registered_by_id": admin_id,
                }
            )
            entered.append(date(2023, 1, 1) + timedelta(days=int(rng.integers(0, 700))))
        fam_ids = insert_rows(s, Family, fam_rows)
        for i, (fid, fam) in enumerate(zip(fam_ids, fam_rows, strict=True)):
            n_kids = 1 + int(rng.random() < 0.5)
            for k in range(1, n_kids + 1):
                kid_rows.append(
                    {
                        "trial_id": trial_ids.child_id(fam["trial_id"], k),
                        "family_id": fid,
                        "child_number": k,
                        "date_of_birth": entered[i] - timedelta(days=int(rng.integers(30, 1500))),
                        "sex": "female" if rng.random() < 0.5 else "male",
                        "entered_care_on": entered[i],
                        "eligibility_status": "eligible",
                        "eligibility_decided_on": entered[i],
                        "joined_after_randomisation": False,
                    }
                )
            randomised = entered[i] + timedelta(days=30)
            alloc_rows.append(
                {
                    "family_id": fid,
                    "arm_code": "NIM" if rng.random() < 0.5 else "SAU",
                    "method": "minimisation",
                    "stratum": "bench",
                    "factors": {"site": "x", "youngest_age_band": "12-35m", "family_size": "1"},
                    "sequence_number": i + 1,
                    "masked_code": f"M{i:07d}",
                    "randomised_at": datetime.combine(randomised, datetime.min.time(), tzinfo=UTC),
                    "randomised_by_id": admin_id,
                }
            )
        kid_ids = insert_rows(s, Child, kid_rows)
        insert_rows(s, Allocation, alloc_rows)
        placements, events, asmts, uses, withdrawals = [], [], [], [], []
        for cid, kid in zip(kid_ids, kid_rows, strict=True):
            start = kid["entered_care_on"]
            move = start + timedelta(days=int(rng.integers(30, 600)))
            placements.append(
                {
                    "child_id": cid,
                    "start_date": start,
                    "end_date": move,
                    "placement_type": "foster",
                    "end_reason": "planned_move",
                }
            )
            placements.append({"child_id": cid, "start_date": move, "placement_type": "kinship"})
            code = "sc.plan_adoption" if rng.random() < 0.5 else "sc.return_home"
            events.append({"child_id": cid, "event_type_code": "sc.cpo", "event_date": start})
            events.append(
                {
                    "child_id": cid,
                    "event_type_code": code,
                    "event_date": start + timedelta(days=int(rng.integers(60, 900))),
                }
            )
            for tp, offset in (("baseline", 40), ("30m", 950)):
                asmts.append(
                    {
                        "child_id": cid,
                        "timepoint_code": tp,
                        "instrument_id": sdq,
                        "respondent_type": "researcher",
                        "assessed_on": start + timedelta(days=offset),
                        "out_of_window": False,
                        "completed_at": now,
                    }
                )
            for m in range(2):
                p0 = start + timedelta(days=60 + 200 * m)
                uses.append(
                    {
                        "child_id": cid,
                        "unit_cost_id": unit_id,
                        "period_start": p0,
                        "period_end": p0 + timedelta(days=30),
                        "quantity": Decimal(int(rng.integers(1, 20))),
                    }
                )
            if rng.random() < 0.05:
                withdrawals.append(
                    {
                        "child_id": cid,
                        "withdrawn_on": start + timedelta(days=400),
                        "level": "follow_up",
                        "requested_by": "carer",
                        "reason": "bench",
                    }
                )
        insert_rows(s, Placement, placements)
        insert_rows(s, LegalEvent, events)
        asmt_ids = insert_rows(s, Assessment, asmts)
        insert_rows(
            s,
            DerivedScore,
            [
                {
                    "assessment_id": a,
                    "scale": sc,
                    "score": float(rng.integers(0, 10)),
                    "scoring_version": "sdq-2024.1",
                    "computed_at": now,
                }
                for a in asmt_ids
                for sc in SCALES
            ],
        )
        insert_rows(s, ServiceUse, uses)
        insert_rows(s, Withdrawal, withdrawals)
    return db


class Counter:
    """A ``before_cursor_execute`` listener counting statements (not SQLite's BEGIN)."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.startswith("BEGIN"):
            self.statements.append(statement)


def run(url: str, n_families: int) -> list[dict[str, Any]]:
    t0 = time.perf_counter()
    db = build(url, n_families)
    built = time.perf_counter() - t0
    actor = users.resolve_actor(db, "statistician")
    out = []
    try:
        for name, fn in EXTRACTS.items():
            count = Counter()
            event.listen(db.engine, "before_cursor_execute", count)
            t = time.perf_counter()
            df = fn(db, actor, as_of=AS_OF)
            seconds = time.perf_counter() - t
            event.remove(db.engine, "before_cursor_execute", count)
            out.append(
                {
                    "extract": name,
                    "families": n_families,
                    "rows": len(df),
                    "columns": len(df.columns),
                    "statements": len(count.statements),
                    "seconds": round(seconds, 4),
                    "build_seconds": round(built, 2),
                    "backend": db.dialect,
                }
            )
    finally:
        db.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,5000,20000", help="numbers of families")
    parser.add_argument("--database", help="URL of an EMPTY database (first size only)")
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    results: list[dict[str, Any]] = []
    if args.database:
        results += run(args.database, sizes[0])
    else:
        for n in sizes:
            with tempfile.TemporaryDirectory() as tmp:
                results += run(f"sqlite:///{Path(tmp) / 'bench.db'}", n)
    print(f"{'extract':<15} {'families':>9} {'rows':>8} {'cols':>5} {'stmts':>6} {'seconds':>9}")
    for r in results:
        print(
            f"{r['extract']:<15} {r['families']:>9} {r['rows']:>8} {r['columns']:>5} "
            f"{r['statements']:>6} {r['seconds']:>9.3f}"
        )
    for r in results:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
