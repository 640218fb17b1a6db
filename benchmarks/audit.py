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

``--families 400,2000,10000`` measures ``noim audit verify`` instead, on demonstration trials of
those sizes (``noim demo --families N``, built once and kept in ``--keep DIR``, default
``$TMPDIR/noim-audit-bench``; ``--postgresql URL`` builds them in PostgreSQL databases
``noim_bench_audit_<N>`` created through that URL, a role allowed to create databases).  Verify runs
as a user would run it, in a new process, and its peak memory is that process's peak resident set
size (``os.wait4``).  Prints a table (families, audit rows, data rows, verify seconds, its CPU
seconds, peak MB, load average at the start) and one JSON line per size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from noim.db.audit import audited_tables, insert_rows
from noim.db.audit_verify import verify_chain, verify_data
from noim.db.models import AuditLog, Child, ServiceUse, UnitCost
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


# --------------------------------------------------------------------------- verify on demo trials

NOIM = [sys.executable, "-c", "from noim.cli import main; main()"]


def _run_measured(args: list[str]) -> tuple[int, str, float, float, float]:
    """Run ``args`` in a new process: (exit code, stdout, seconds, CPU seconds, peak resident
    set in MB).  The CPU seconds (user + system) are the fairer figure on a shared machine."""
    with tempfile.TemporaryFile("w+") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, text=True)
        _pid, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        # ru_maxrss is in kilobytes on Linux (bytes on macOS)
        scale = 1024 * 1024 if sys.platform == "darwin" else 1024
        cpu = usage.ru_utime + usage.ru_stime
        return proc.returncode, out.read(), seconds, cpu, usage.ru_maxrss / scale


def _demo_url(n: int, keep: Path, postgresql: str | None) -> str:
    """The database of the demonstration trial of ``n`` families, built when missing."""
    if postgresql is None:
        keep.mkdir(parents=True, exist_ok=True)
        path = keep / f"demo-{n}.db"
        url = f"sqlite:///{path}"
        exists = path.exists()
    else:
        name = f"noim_bench_audit_{n}"
        url = make_url(postgresql).set(database=name).render_as_string(hide_password=False)
        admin = create_engine(postgresql, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                exists = bool(
                    conn.execute(
                        text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
                    ).scalar()
                )
                if not exists:
                    conn.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            admin.dispose()
    if not exists:
        print(f"building the demonstration trial of {n:,} families in {url} ...", file=sys.stderr)
        with tempfile.TemporaryDirectory() as tmp:
            args = [*NOIM, "demo", "--families", str(n), "--database", url]
            done = subprocess.run(
                [*args, "--out", str(Path(tmp) / "reports"), "--json"],
                capture_output=True,
                text=True,
                check=False,
            )
        if done.returncode != 0:
            raise SystemExit(f"noim demo --families {n} failed:\n{done.stderr}")
    return url


def _counts(url: str) -> tuple[int, int]:
    """(audit rows, rows of the audited tables)."""
    db = Database(url)
    try:
        with db.engine.connect() as conn:
            audit_rows = int(conn.execute(select(func.count()).select_from(AuditLog)).scalar_one())
            data_rows = sum(
                int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                for t in audited_tables()
            )
    finally:
        db.dispose()
    return audit_rows, data_rows


def bench_verify(n: int, keep: Path, postgresql: str | None) -> dict[str, object]:
    url = _demo_url(n, keep, postgresql)
    audit_rows, data_rows = _counts(url)
    args = [*NOIM, "--database", url, "--user", "admin", "audit", "verify", "--json"]
    code, out, seconds, cpu, peak = _run_measured(args)
    if code != 0:
        raise SystemExit(f"noim audit verify failed on the demo of {n} families:\n{out}")
    return {
        "benchmark": "noim audit verify",
        "backend": make_url(url).get_backend_name(),
        "families": n,
        "audit_rows": audit_rows,
        "data_rows": data_rows,
        "verify_s": round(seconds, 2),
        "verify_cpu_s": round(cpu, 2),
        "peak_mb": round(peak),
        "load_at_start": round(os.getloadavg()[0], 2),
    }


def main_verify(sizes: list[int], keep: Path, postgresql: str | None) -> None:
    results = [bench_verify(n, keep, postgresql) for n in sizes]
    print(
        f"{'families':>9} {'audit rows':>11} {'data rows':>11} {'verify s':>9} {'CPU s':>7} "
        f"{'peak MB':>8} {'load':>5}"
    )
    for r in results:
        print(
            f"{r['families']:>9,} {r['audit_rows']:>11,} {r['data_rows']:>11,} "
            f"{r['verify_s']:>9} {r['verify_cpu_s']:>7} {r['peak_mb']:>8} {r['load_at_start']:>5}"
        )
    for r in results:
        print(json.dumps(r))


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
    parser.add_argument(
        "--families",
        help="measure noim audit verify on demonstration trials of these sizes (e.g. 400,2000,10000)",
    )
    parser.add_argument(
        "--keep",
        type=Path,
        default=Path(tempfile.gettempdir()) / "noim-audit-bench",
        help="folder of the demonstration trials (SQLite), built once and reused",
    )
    parser.add_argument(
        "--postgresql",
        metavar="URL",
        help="build the demonstration trials in PostgreSQL (a role allowed to create databases)",
    )
    args = parser.parse_args()
    if args.families:
        main_verify([int(x) for x in args.families.split(",")], args.keep, args.postgresql)
        return
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
