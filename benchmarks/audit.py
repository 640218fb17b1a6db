"""Benchmark: audited writes and audit verification at growing sizes.

Times, for N rows of ``service_use`` (a trial-data table with foreign keys):

* ``noim bulk``: ``noim.db.audit.insert_rows`` (one executemany, one audit row per inserted row,
  hash chain computed in Python, all in one transaction);
* ``raw``: the sqlite3 driver's executemany of the same rows into a table of the same shape (no audit,
  no validation) as the reference (SQLite only);
* ``verify``: ``noim audit verify`` (hash chain and data reconciliation) over the result;
* ``orm``: audited ORM inserts through a unit of work (flush per 500 objects), at the smaller sizes.

Prints a table and one JSON line per size.  Run: ``.venv/bin/python benchmarks/audit.py [--sizes 1000,10000,100000]
[--database URL]`` (default: a temporary SQLite file per size).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select, text

from noim.db.audit import insert_rows
from noim.db.audit_verify import verify_chain, verify_data
from noim.db.models import Child, ServiceUse, UnitCost
from noim.db.session import Database
from noim.domain.trialdef import default_definition
from noim.services import families, setup, users


def prepare(url: str) -> tuple[Database, int, int]:
    setup.initialise(url, default_definition(), "bench")
    db = Database(url)
    admin = users.resolve_actor(db, "bench")
    fam = families.register_family(db, admin, "GLA")
    families.add_child(
        db,
        admin,
        fam.trial_id,
        date(2023, 1, 1),
        "female",
        date(2024, 1, 1),
        today=date(2025, 1, 1),
    )
    with db.write(admin) as s:
        s.add(
            UnitCost(
                code="sw_hour",
                service="Social worker",
                unit="hour",
                cost=Decimal("45.00"),
                price_year=2024,
            )
        )
        s.flush()
        child_id = s.scalar(select(Child.id))
        unit_id = s.scalar(select(UnitCost.id))
    assert child_id is not None and unit_id is not None
    return db, child_id, unit_id


def rows(n: int, child_id: int, unit_id: int) -> list[dict[str, object]]:
    start = date(2024, 1, 1)
    return [
        {
            "child_id": child_id,
            "unit_cost_id": unit_id,
            "period_start": start + timedelta(days=i % 300),
            "period_end": start + timedelta(days=i % 300 + 30),
            "quantity": Decimal(i % 17),
            "source": "bench",
        }
        for i in range(n)
    ]


def bench(n: int, url: str | None, orm_limit: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        target = url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        db, child_id, unit_id = prepare(target)
        admin = users.resolve_actor(db, "bench")
        data = rows(n, child_id, unit_id)

        t0 = time.perf_counter()
        with db.write(admin) as s:
            insert_rows(s, ServiceUse, data)
        bulk = time.perf_counter() - t0

        with (
            db.engine.begin() as conn
        ):  # reference: the same rows into a table of the same shape, no audit
            conn.execute(text("CREATE TEMP TABLE ref AS SELECT * FROM service_use WHERE 0 = 1"))
            params = [
                (
                    r["child_id"],
                    r["unit_cost_id"],
                    r["period_start"].isoformat(),
                    r["period_end"].isoformat(),
                    str(r["quantity"]),
                    r["source"],
                )
                for r in data
            ]
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            t0 = time.perf_counter()
            cursor.executemany(
                "INSERT INTO ref (child_id, unit_cost_id, period_start, period_end, quantity, source) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                params,
            )
            raw = time.perf_counter() - t0

        t0 = time.perf_counter()
        with db.engine.connect() as conn:
            chain = verify_chain(conn)
            report = verify_data(conn)
        verify = time.perf_counter() - t0
        assert chain.ok and report.ok, (chain.problem, report.problems)

        orm = None
        if n <= orm_limit:
            t0 = time.perf_counter()
            with db.write(admin) as s:
                for i, r in enumerate(data):
                    s.add(ServiceUse(**r))
                    if i % 500 == 499:
                        s.flush()
            orm = time.perf_counter() - t0
        db.dispose()
    return {
        "rows": n,
        "noim_bulk_s": round(bulk, 3),
        "noim_rows_per_s": round(n / bulk),
        "raw_rows_per_s": round(n / raw),
        "ratio": round(raw / bulk, 3),
        "verify_s": round(verify, 3),
        "orm_rows_per_s": None if orm is None else round(n / orm),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument(
        "--database", help="an empty database URL (default: temporary SQLite files)"
    )
    parser.add_argument(
        "--orm-limit", type=int, default=10000, help="largest size also timed through the ORM"
    )
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    results = [bench(n, args.database, args.orm_limit) for n in sizes]
    header = f"{'rows':>9} {'bulk s':>8} {'noim rows/s':>12} {'raw rows/s':>11} {'ratio':>6} {'verify s':>9} {'orm rows/s':>11}"
    print(header)
    for r in results:
        orm = "-" if r["orm_rows_per_s"] is None else f"{r['orm_rows_per_s']:,}"
        print(
            f"{r['rows']:>9,} {r['noim_bulk_s']:>8} {r['noim_rows_per_s']:>12,} {r['raw_rows_per_s']:>11,} "
            f"{r['ratio']:>6} {r['verify_s']:>9} {orm:>11}"
        )
    for r in results:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
