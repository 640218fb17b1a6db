"""Benchmark: ``noim demo`` end to end (build, data freeze, both interim reports) by size.

Runs ``noim demo --families N`` as a user would (a new process, a temporary SQLite file
and report folder per size) and reports the wall time, the time of each stage the
command announces (start-up, recruitment, screening, randomisation, follow-up, safety and
costs, freeze and reports), the families and children built, and the load average at the
start (the machine may be shared).  ``--verify`` then runs ``noim audit verify`` and
``noim check --json`` on the result and reports whether the audit chain is intact and
the number of hard-rule violations (must be 0).

Run: ``.venv/bin/python benchmarks/demo.py [--sizes 400,2000,10000] [--verify]``.
Prints a table and one JSON line per size.  Targets (2 cores): the default trial
(390 families) well under a minute; 10,000 families in under 5 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

NOIM = [sys.executable, "-c", "from noim.cli import main; main()"]
STAGE = re.compile(r"^\.\.\. (.+)$")


def _noim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NOIM, *args], capture_output=True, text=True, check=False)


def run(n_families: int, seed: int, verify: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'demo.db'}"
        load = os.getloadavg()[0]
        args = [*NOIM, "demo", "--families", str(n_families), "--seed", str(seed)]
        args += ["--database", url, "--out", str(Path(tmp) / "reports")]
        t0 = time.perf_counter()
        stages: dict[str, float] = {}
        last, current = t0, None
        with (
            open(Path(tmp) / "out.txt", "w+") as out,
            subprocess.Popen(args, stdout=out, stderr=subprocess.PIPE, text=True) as proc,
        ):
            assert proc.stderr is not None
            errors = []
            for line in proc.stderr:  # the stages are announced on stderr: "... screening"
                m = STAGE.match(line.strip())
                if m is None:
                    errors.append(line)
                    continue
                now = time.perf_counter()
                stages[current or "start-up"] = round(now - last, 2)
                last, current = now, m.group(1)
        seconds = time.perf_counter() - t0
        if current is not None:
            stages[current] = round(t0 + seconds - last, 2)
        if proc.returncode != 0:
            raise SystemExit(f"noim demo failed at {n_families} families:\n{''.join(errors)}")
        with sqlite3.connect(Path(tmp) / "demo.db") as conn:
            children = conn.execute("SELECT count(*) FROM children").fetchone()[0]
        result: dict[str, Any] = {
            "benchmark": "noim demo",
            "families": n_families,
            "children": children,
            "seconds": round(seconds, 2),
            "stages": stages,
            "load_at_start": round(load, 2),
        }
        if verify:
            t = time.perf_counter()
            audit = _noim("--database", url, "--user", "admin", "audit", "verify")
            check = _noim("--database", url, "--user", "admin", "check", "--json")
            rules = json.loads(check.stdout)["rules"] if check.returncode == 0 else []
            result["audit_intact"] = audit.returncode == 0 and "intact" in audit.stdout
            result["hard_violations"] = sum(
                r["violations"] for r in rules if r["severity"] == "hard"
            )
            result["verify_seconds"] = round(time.perf_counter() - t, 2)
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", default="400,2000,10000", help="numbers of families")
    parser.add_argument("--seed", type=int, default=2026, help="the demo's seed")
    parser.add_argument(
        "--verify", action="store_true", help="also run noim audit verify and noim check"
    )
    args = parser.parse_args()
    results = [run(int(n), args.seed, args.verify) for n in args.sizes.split(",")]
    print(f"{'families':>9} {'children':>9} {'seconds':>9} {'load':>5}  stages (s)")
    for r in results:
        stages = ", ".join(f"{k} {v}" for k, v in r["stages"].items())
        print(
            f"{r['families']:>9} {r['children'] or '':>9} {r['seconds']:>9.1f} "
            f"{r['load_at_start']:>5.1f}  {stages}"
        )
    for r in results:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
