"""Benchmark: how long ten typical ``noim`` commands take to answer (issue 14, point 1).

Each command runs as a user runs it, in a new process, against the demonstration trial
(``noim demo --families N``, 390 by default, built in a temporary folder; or ``--database URL``:
a SQLite file is copied first, any other database is written to).  One repetition is the
journey of a coordinator (coord_gla) with one family:

  noim --help, noim --version, family register, child add, (child eligibility), consent add,
  randomise, family show, (placement add), placement move, visit complete (a visit of a demo
  child that is due or overdue), followups due

The commands in brackets are set-up and are not timed.  A first repetition warms up (Python
writes its bytecode cache, the database file is read into memory) and is not counted; then
``--runs`` repetitions (5 by default).  For each command it prints the median wall time, the
median CPU time of the process (user + system: less sensitive than the wall time to other
work on the machine), the target and whether the median wall time meets it: ``--help`` and
``--version`` under 0.3 s, every command that reads or writes one record under 0.5 s.  The
load average before and after is printed, since the machine may be shared.

The commands run with Python's bytecode cache on (``PYTHONDONTWRITEBYTECODE`` is removed from
their environment), as an installed noim runs; without it every command compiles noim's
modules again, which is not what users wait for.

Run: ``.venv/bin/python benchmarks/cli.py [--families 390] [--runs 5] [--database URL]``.
Prints a table, then one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

NOIM = [sys.executable, "-c", "from noim.cli import main; main()"]
USER, SITE = "coord_gla", "GLA"

#: (command, target in seconds), in the order of the journey
TARGETS: dict[str, float] = {
    "noim --help": 0.3,
    "noim --version": 0.3,
    "family register": 0.5,
    "child add": 0.5,
    "consent add": 0.5,
    "randomise": 0.5,
    "family show": 0.5,
    "placement move": 0.5,
    "visit complete": 0.5,
    "followups due": 0.5,
}


class Runner:
    """Runs noim commands in new processes and keeps the times of the timed ones."""

    def __init__(self, url: str) -> None:
        self.env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        self.env |= {"NOIM_DATABASE_URL": url, "NOIM_USER": USER}
        self.times: dict[str, list[tuple[float, float]]] = {name: [] for name in TARGETS}
        self.keep = False

    def __call__(self, name: str | None, *args: str) -> str:
        """Run ``noim ARGS``; time it under ``name`` (``None``: set-up, not timed)."""
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            t0 = time.perf_counter()
            proc = subprocess.Popen([*NOIM, *args], stdout=out, stderr=err, env=self.env)
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
            proc.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            err.seek(0)
            if proc.returncode != 0:
                raise SystemExit(
                    f"`noim {' '.join(args)}` failed ({proc.returncode}): {err.read()}"
                )
            if name is not None and self.keep:
                self.times[name].append((wall, usage.ru_utime + usage.ru_stime))
            return out.read()


def due_visits(noim: Runner, n: int) -> list[tuple[str, str, date]]:
    """``n`` visits of different demo children that are due or overdue: (child, timepoint, on)."""
    listed = json.loads(noim(None, "followups", "due", "--site", SITE, "--json"))
    today = date.today()
    out: list[tuple[str, str, date]] = []
    seen: set[str] = set()
    for v in listed:
        if v["status"] in ("due", "overdue") and v["child"] not in seen:
            seen.add(v["child"])
            out.append(
                (v["child"], v["timepoint"], min(date.fromisoformat(v["target_date"]), today))
            )
    if len(out) < n:
        raise SystemExit(f"the trial has {len(out)} children with a visit due at {SITE}; need {n}")
    return out[:n]


def journey(noim: Runner, visit: tuple[str, str, date]) -> None:
    """One family registered, a child added, consented and randomised, its placement moved."""
    today = date.today()
    born, entered = today - timedelta(days=300), today - timedelta(days=100)
    noim("noim --help", "--help")
    noim("noim --version", "--version")
    family = json.loads(noim("family register", "family", "register", "--site", SITE, "--json"))
    fid = family["trial_id"]
    child = json.loads(
        noim(
            "child add",
            *("child", "add", fid, "--dob", str(born), "--sex", "female"),
            *("--entered-care", str(entered), "--json"),
        )
    )
    cid = child["trial_id"]
    noim(None, "child", "eligibility", cid, "--eligible", "--on", str(today))
    noim(
        "consent add",
        *("consent", "add", cid, "--by", "local_authority", "--form-version", "1.0"),
        *("--on", str(today)),
    )
    noim("randomise", "randomise", fid)
    noim("family show", "family", "show", fid)
    noim(None, "placement", "add", cid, "--from", str(entered), "--type", "foster")
    noim(
        "placement move",
        *("placement", "move", cid, "--on", str(today), "--type", "kinship"),
        *("--reason", "planned_move"),
    )
    child_id, timepoint, on = visit
    noim("visit complete", "visit", "complete", child_id, timepoint, "--on", str(on))
    noim("followups due", "followups", "due")


def build_demo(folder: Path, families: int) -> str:
    url = f"sqlite:///{folder / 'demo.db'}"
    args = ["demo", "--families", str(families), "--database", url, "--out", str(folder / "r")]
    done = subprocess.run([*NOIM, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"noim demo failed: {done.stderr}")
    return url


def copy_sqlite(url: str, folder: Path) -> str:
    source = url.removeprefix("sqlite:///")
    target = folder / "copy.db"
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    return f"sqlite:///{target}"


def run(
    url: str | None, families: int, runs: int, progress: Callable[[str], None]
) -> dict[str, Any]:
    built = url is None
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if url is None:
            progress(f"building the demonstration trial ({families} families) ...")
            url = build_demo(folder, families)
        elif url.startswith("sqlite:///"):
            url = copy_sqlite(url, folder)
        noim = Runner(url)
        visits = due_visits(noim, runs + 1)
        load_before = os.getloadavg()[0]
        for i, visit in enumerate(visits):
            noim.keep = i > 0  # the first repetition warms up
            progress(f"repetition {i}{' (warm-up)' if i == 0 else ''} ...")
            journey(noim, visit)
        load_after = os.getloadavg()[0]
    rows = []
    for name, target in TARGETS.items():
        walls = [w for w, _ in noim.times[name]]
        cpus = [c for _, c in noim.times[name]]
        wall = statistics.median(walls)
        rows.append(
            {
                "command": name,
                "median_s": round(wall, 3),
                "min_s": round(min(walls), 3),
                "cpu_s": round(statistics.median(cpus), 3),
                "target_s": target,
                "ok": wall < target,
            }
        )
    return {
        "benchmark": "noim commands",
        "families": families if built else None,
        "runs": runs,
        "load_before": round(load_before, 2),
        "load_after": round(load_after, 2),
        "commands": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--families", type=int, default=390, help="size of the demo to build")
    parser.add_argument("--runs", type=int, default=5, help="timed repetitions (after a warm-up)")
    parser.add_argument(
        "--database", metavar="URL", help="a demonstration trial to use instead of building one"
    )
    args = parser.parse_args()
    result = run(args.database, args.families, args.runs, lambda m: print(m, file=sys.stderr))
    print(
        f"{args.runs} runs; load average {result['load_before']} before, {result['load_after']} after"
    )
    print(f"{'command':<16} {'median s':>9} {'min s':>7} {'cpu s':>7} {'target':>8}  ok")
    for r in result["commands"]:
        print(
            f"{r['command']:<16} {r['median_s']:>9.3f} {r['min_s']:>7.3f} {r['cpu_s']:>7.3f} "
            f"{'< ' + str(r['target_s']):>8}  {'yes' if r['ok'] else 'NO'}"
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
