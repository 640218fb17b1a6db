"""Benchmark: ``noim import assessments`` against a raw sqlite3 executemany of the same rows.

Builds a fresh database (``noim init`` and a synthetic trial of randomised children with
their follow-up visits, inserted through the audited bulk path), writes long-format SDQ
files of each size (seeded numpy Generator; 25 item responses per assessment; each size
holds different assessments), and times:

* ``noim``: ``run_import`` of the file: reading, set-based validation, scoring, visit
  linking, inserts and the audit trail (one grouped audit row per assessment holding the
  assessment, its item responses and its derived scores; the visits completed audited
  field by field), committed;
* ``raw``: the sqlite3 module's ``executemany`` of the same rows (already parsed) into a
  table of the same shape (the DDL of ``item_responses``: columns, constraints, indexes)
  in a fresh SQLite file with noim's settings (WAL, synchronous NORMAL, and the page cache
  noim's large writes use, ``noim.db.bulk.LARGE_WRITE_CACHE_KIB``), committed.

Prints a table, then a JSON line ``{"rows": N, "noim_rows_per_s": ..., "raw_rows_per_s":
..., "ratio": ...}`` for the largest size (ratio = noim / raw; the target is >= 0.25).

Run: ``.venv/bin/python benchmarks/import.py [--sizes 10000,100000,1000000]
[--postgresql URL]``.  ``--postgresql`` imports into that (empty) database instead of a
temporary SQLite file.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.schema import CreateIndex, CreateTable

from noim.db.audit import insert_rows
from noim.db.bulk import LARGE_WRITE_CACHE_KIB
from noim.db.models import Allocation, Child, Family, ItemResponse, Site
from noim.db.session import Database
from noim.domain import trial_ids
from noim.domain.durations import add_months
from noim.domain.trialdef import default_definition
from noim.services import setup, users
from noim.services.imports import run_import
from noim.services.visits import schedule_children

N_CHILDREN = 2000
RANDOMISED = datetime(2022, 12, 1, 10, 0, tzinfo=UTC)
RESPONDENTS = ("carer", "birth_parent", "teacher")
HEADER = "child_id,timepoint,instrument,form,respondent,date,item,value,missing_reason\n"


def prepare(url: str) -> tuple[Database, list[tuple[str, date]]]:
    """A trial with ``N_CHILDREN`` randomised children (one per family) and their visits."""
    definition = default_definition()
    setup.initialise(url, definition, "bench")
    db = Database(url)
    admin = users.resolve_actor(db, "bench")
    now = datetime.now(UTC)
    with db.write(admin, reason="benchmark set-up") as s:
        site = s.scalars(select(Site).where(Site.code == "GLA")).one()
        family_ids = insert_rows(
            s,
            Family,
            [
                {
                    "trial_id": trial_ids.family_id(site.id_prefix, i + 1),
                    "site_id": site.id,
                    "site_seq": i + 1,
                    "registered_at": now,
                    "registered_by_id": admin.user_id,
                }
                for i in range(N_CHILDREN)
            ],
        )
        entered = [date(2022, 1, 10) + timedelta(days=i % 300) for i in range(N_CHILDREN)]
        child_rows = [
            {
                "trial_id": trial_ids.child_id(trial_ids.family_id(site.id_prefix, i + 1), 1),
                "family_id": fid,
                "child_number": 1,
                "date_of_birth": add_months(entered[i], -(6 + i % 40)),
                "sex": ("female", "male")[i % 2],
                "entered_care_on": entered[i],
                "eligibility_status": "eligible",
                "eligibility_decided_on": entered[i] + timedelta(days=20),
            }
            for i, fid in enumerate(family_ids)
        ]
        insert_rows(s, Child, child_rows)
        arms = [a.code for a in definition.arms]
        insert_rows(
            s,
            Allocation,
            [
                {
                    "family_id": fid,
                    "arm_code": arms[i % len(arms)],
                    "method": "minimisation",
                    "stratum": "bench",
                    "factors": {},
                    "sequence_number": i + 1,
                    "masked_code": f"B{i + 1:06d}",
                    "randomised_at": RANDOMISED,
                    "randomised_by_id": admin.user_id,
                }
                for i, fid in enumerate(family_ids)
            ],
        )
        children = list(s.scalars(select(Child).order_by(Child.id)))
        schedule_children(s, definition, children, RANDOMISED.date())
    return db, [(r["trial_id"], r["entered_care_on"]) for r in child_rows]  # type: ignore[misc]


def write_file(
    path: Path, n_rows: int, offset: int, children: list[tuple[str, date]], seed: int
) -> list[tuple[int, int, float | None, str | None]]:
    """A long SDQ file of ``n_rows`` rows (assessments ``offset`` ...); returns its rows."""
    rng = np.random.default_rng(seed)
    n = n_rows // 25
    values = rng.integers(0, 3, size=(n, 25))
    missing = rng.random((n, 25)) < 0.02
    lines = [HEADER]
    rows: list[tuple[int, int, float | None, str | None]] = []
    for a in range(n):
        j = offset + a
        child, entered = children[j % len(children)]
        r = j // len(children)
        tp = ("baseline", "15m", "30m")[r % 3]
        respondent = RESPONDENTS[(r // 3) % 3]
        if tp == "baseline":
            on = entered + timedelta(days=40 + r // 9)
        elif tp == "15m":
            on = add_months(entered, 15) + timedelta(days=r // 9)
        else:
            on = add_months(RANDOMISED.date(), 30) + timedelta(days=r // 9)
        prefix = f"{child},{tp},sdq,2-4,{respondent},{on.isoformat()},"
        for i in range(25):
            if missing[a, i]:
                lines.append(f"{prefix}{i + 1},,dont_know\n")
                rows.append((a, i + 1, None, "dont_know"))
            else:
                lines.append(f"{prefix}{i + 1},{values[a, i]},\n")
                rows.append((a, i + 1, float(values[a, i]), None))
    path.write_text("".join(lines), encoding="utf-8")
    return rows


def raw_reference(rows: Sequence[tuple[int, int, float | None, str | None]], folder: Path) -> float:
    """Seconds for sqlite3's executemany of ``rows`` into a table shaped as item_responses."""
    table = ItemResponse.__table__
    ddl = str(CreateTable(table).compile(dialect=sqlite_dialect.dialect()))  # type: ignore[arg-type]
    ddl = ddl.replace("item_responses", "ref").replace(
        "FOREIGN KEY(assessment_id) REFERENCES assessments (id) ON DELETE RESTRICT", "CHECK (1)"
    )
    indexes = [
        str(CreateIndex(ix).compile(dialect=sqlite_dialect.dialect())).replace(
            "item_responses", "ref"
        )
        for ix in table.indexes  # type: ignore[attr-defined]
    ]
    path = folder / f"raw-{len(rows)}.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(f"PRAGMA cache_size = -{LARGE_WRITE_CACHE_KIB}")  # as noim's import
    conn.execute(ddl)
    for ix in indexes:
        conn.execute(ix)
    params = [(k + 1, a + 1, item, v, reason) for k, (a, item, v, reason) in enumerate(rows)]
    t0 = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO ref (id, assessment_id, item, value, missing_reason) VALUES (?, ?, ?, ?, ?)",
        params,
    )
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000,1000000", help="rows per file")
    parser.add_argument("--postgresql", metavar="URL", help="an empty PostgreSQL database")
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = args.postgresql or f"sqlite:///{folder / 'noim.db'}"
        db, children = prepare(url)
        actor = users.resolve_actor(db, "bench")
        offset = 0
        for k, n in enumerate(sizes):
            path = folder / f"sdq-{n}.csv"
            rows = write_file(path, n, offset, children, seed=2026 + k)
            offset += n // 25
            t0 = time.perf_counter()
            report = run_import(db, actor, "assessments", path)
            noim_s = time.perf_counter() - t0
            assert report.new_records == n // 25, report.summary
            raw_s = raw_reference(rows, folder)
            results.append(
                {
                    "rows": len(rows),
                    "noim_s": round(noim_s, 3),
                    "noim_rows_per_s": round(len(rows) / noim_s),
                    "raw_s": round(raw_s, 3),
                    "raw_rows_per_s": round(len(rows) / raw_s),
                    "ratio": round(raw_s / noim_s, 3),
                    "out_of_window": report.details.get("flagged out of window", 0),
                }
            )
        db.dispose()
    backend = "PostgreSQL" if args.postgresql else "SQLite"
    print(f"noim import assessments into {backend}; scoring: noim.instruments.score_many")
    print(
        f"{'rows':>9} {'noim s':>8} {'noim rows/s':>12} {'raw s':>7} {'raw rows/s':>11} {'ratio':>6}"
    )
    for r in results:
        print(
            f"{r['rows']:>9,} {r['noim_s']:>8} {r['noim_rows_per_s']:>12,} {r['raw_s']:>7} "
            f"{r['raw_rows_per_s']:>11,} {r['ratio']:>6}"
        )
    last = results[-1]
    print(
        json.dumps(
            {
                "rows": last["rows"],
                "noim_rows_per_s": last["noim_rows_per_s"],
                "raw_rows_per_s": last["raw_rows_per_s"],
                "ratio": last["ratio"],
            }
        )
    )


if __name__ == "__main__":
    main()
