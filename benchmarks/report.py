"""Benchmark: ``noim report interim --closed`` at growing numbers of families.

Builds the synthetic randomised trial of ``benchmarks/extract.py`` (audited bulk inserts:
about 1.5 children per family with placements, legal events, SDQ at two timepoints,
service use and some withdrawals), adds an unblinded statistician, then runs the command
in this process (click's test runner, as the CLI runs it) and reports the wall time, the SQL
statements issued (constant across sizes) and the files written.

Run: ``.venv/bin/python benchmarks/report.py [--sizes 400,2000,10000] [--format html,pdf]
[--freeze]`` (a temporary SQLite file per size).  With ``--freeze`` a data freeze is made after
the build and the report is read from it (``--freeze ID``: every dataset loaded, hashed and
verified against the freeze and its audit row) instead of live data.  Prints a table and one JSON line per size.  Target:
under 30 s at 10,000 families on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from sqlalchemy import event
from sqlalchemy.engine import Engine

sys.path.insert(0, str(Path(__file__).resolve().parent))

from extract import AS_OF, Counter, build

from noim.cli import noim_cli
from noim.db.session import Database
from noim.services import freezes, users


def run(n_families: int, formats: str, frozen: bool = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        t0 = time.perf_counter()
        db = build(url, n_families)
        users.add_user(
            db, users.resolve_actor(db, "bench"), "dmc_stat", "unblinded_statistician", ()
        )
        when = ["--as-of", AS_OF.isoformat()]
        if frozen:
            made = freezes.create_freeze(db, users.resolve_actor(db, "bench"), label="bench")
            when = ["--freeze", str(made.id)]
        db.dispose()
        built = time.perf_counter() - t0
        out = Path(tmp) / "report"
        args = ["--database", url, "--user", "dmc_stat", "report", "interim", "--closed"]
        args += [*when, "--out", str(out), "--format", formats]
        count = Counter()
        event.listen(Engine, "before_cursor_execute", count)
        t = time.perf_counter()
        result = CliRunner().invoke(noim_cli, args)
        seconds = time.perf_counter() - t
        event.remove(Engine, "before_cursor_execute", count)
        if result.exit_code != 0:
            raise SystemExit(f"report failed at {n_families} families: {result.output}")
        loading = _load_seconds(url, int(when[1])) if frozen else None
        return {
            "benchmark": "report interim --closed" + (" --freeze" if frozen else ""),
            "families": n_families,
            "formats": formats,
            "statements": len(count.statements),
            "files": len(list(out.iterdir())),
            "seconds": round(seconds, 3),
            "build_seconds": round(built, 2),
            # reading every dataset the report reads from the freeze (best of 5)
            "load_seconds": loading,
        }


def _load_seconds(url: str, freeze_id: int) -> float:
    from noim import extract
    from noim.reports.interim import REPORT_DATASETS

    db = Database(url)
    reader = users.resolve_actor(db, "dmc_stat")
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        extract.bundle(db, reader, REPORT_DATASETS, freeze=freeze_id)
        best = min(best, time.perf_counter() - t)
    db.dispose()
    return round(best, 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", default="400,2000,10000", help="numbers of families")
    parser.add_argument("--format", default="html,pdf", help="report formats (html,pdf)")
    parser.add_argument("--freeze", action="store_true", help="read the report from a data freeze")
    args = parser.parse_args()
    results = [run(int(n), args.format, args.freeze) for n in args.sizes.split(",")]
    print(f"{'families':>9} {'stmts':>6} {'files':>6} {'seconds':>9}")
    for r in results:
        print(f"{r['families']:>9} {r['statements']:>6} {r['files']:>6} {r['seconds']:>9.2f}")
    for r in results:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
