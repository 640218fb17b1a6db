"""Benchmark: every noim.stats comparison against its reference, in one run (issue 5, point 6).

Runs the ``cases(...)`` of each area module in this folder at every size of ``--sizes``
(default 10^4, 10^5, 10^6), then prints one table and one JSON line per comparison
(name, n, noim_s, reference_name, reference_s, ratio = reference_s / noim_s,
max_abs_diff):

* ``stats_survival``  Kaplan–Meier and Cox (Efron) vs lifelines; Cox also vs statsmodels
  PHReg up to 10^5 (PHReg takes minutes at 10^6);
* ``stats_models``    ``compare_arms`` (mixed, clustered ANCOVA, GEE) vs statsmodels; MixedLM
  and GEE only up to 10^5 (statsmodels loops over the families in Python);
* ``stats_competing`` (when present) cumulative incidence vs lifelines' AalenJohansenFitter at
  every size; Fine–Gray vs R's ``cmprsk::crr`` up to 10^5 (empty reference without R).

Caps are printed with the results; ``--no-caps`` runs every comparison at every size.
Run: ``pip install -e '.[bench]'`` (lifelines), then
``.venv/bin/python benchmarks/stats.py [--sizes 10000,100000,1000000] [--only survival,models]``
(``make bench`` runs the quick sizes 10^4 and 10^5).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the area modules live here

Row = dict[str, Any]

#: (area, comparison) -> largest n it is run at (its reference is too slow beyond)
CAPS = {
    ("survival", "cox_efron vs statsmodels.PHReg"): 100_000,
    ("models", "compare_arms mixed vs statsmodels MixedLM"): 100_000,
    ("models", "compare_arms gee vs statsmodels GEE"): 100_000,
    ("competing", "fine_gray vs cmprsk::crr"): 100_000,
}


def _survival(sizes: Sequence[int], capped: bool) -> list[Row]:
    import stats_survival

    limit = CAPS["survival", "cox_efron vs statsmodels.PHReg"] if capped else max(sizes)
    rows: list[Row] = stats_survival.cases(sizes, statsmodels_max=limit)
    return rows


def _models(sizes: Sequence[int], capped: bool) -> list[Row]:
    import stats_models

    max_n = {
        "mixed": CAPS["models", "compare_arms mixed vs statsmodels MixedLM"],
        "gee": CAPS["models", "compare_arms gee vs statsmodels GEE"],
    }
    rows: list[Row] = stats_models.cases(sizes, max_n=max_n if capped else None)
    return rows


def _competing(sizes: Sequence[int], capped: bool) -> list[Row]:
    import stats_competing

    limit = CAPS["competing", "fine_gray vs cmprsk::crr"] if capped else max(sizes)
    rows: list[Row] = stats_competing.cases(
        {"cif": list(sizes), "fine_gray": [n for n in sizes if n <= limit]}
    )
    return rows


#: area -> (module, runner); an area whose module is absent is reported and skipped
AREAS: dict[str, tuple[str, Callable[[Sequence[int], bool], list[Row]]]] = {
    "survival": ("stats_survival", _survival),
    "models": ("stats_models", _models),
    "competing": ("stats_competing", _competing),
}


def _cell(value: Any, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def table(rows: Sequence[Row]) -> str:
    """The rows as a fixed-width text table."""
    lines = [
        f"{'comparison':<28} {'n':>9} {'noim s':>9} {'reference':<36} {'ref s':>9} "
        f"{'ratio':>8} {'max |diff|':>10}"
    ]
    for r in rows:
        lines.append(
            f"{r['name']:<28} {r['n']:>9} {_cell(r['noim_s'], '.4f'):>9} "
            f"{r['reference_name'] or '-':<36} {_cell(r['reference_s'], '.3f'):>9} "
            f"{_cell(r['ratio'], '.1f'):>8} {_cell(r['max_abs_diff'], '.2e'):>10}"
        )
    return "\n".join(lines)


def run(sizes: Sequence[int], areas: Sequence[str], capped: bool) -> tuple[list[Row], list[str]]:
    """Every comparison of ``areas`` at ``sizes``; returns the rows and notes (caps, skips)."""
    rows: list[Row] = []
    notes: list[str] = []
    for area in areas:
        module, runner = AREAS[area]
        if importlib.util.find_spec(module) is None:
            notes.append(f"{area}: skipped (benchmarks/{module}.py is not in this checkout)")
            continue
        t0 = time.perf_counter()
        try:
            rows += runner(sizes, capped)
        except ImportError as exc:
            notes.append(
                f"{area}: skipped ({exc}; install the references with pip install -e '.[bench]')"
            )
            continue
        notes.append(f"{area}: {time.perf_counter() - t0:.1f} s")
        if capped:
            notes += [
                f"capped: {name} only up to n = {cap:,}"
                for (where, name), cap in CAPS.items()
                if where == area and max(sizes) > cap
            ]
    return rows, notes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="10000,100000,1000000", help="comma-separated numbers of rows"
    )
    parser.add_argument(
        "--only", default=",".join(AREAS), help=f"comma-separated areas among {', '.join(AREAS)}"
    )
    parser.add_argument(
        "--no-caps", action="store_true", help="run slow references at every size too"
    )
    args = parser.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--sizes {args.sizes!r}: expected comma-separated whole numbers")
    areas = [a.strip() for a in args.only.split(",") if a.strip()]
    unknown = [a for a in areas if a not in AREAS]
    if unknown or not sizes:
        parser.error(f"--only {args.only!r}: expected areas among {', '.join(AREAS)}")
    rows, notes = run(sizes, areas, capped=not args.no_caps)
    print(table(rows))
    for note in notes:
        print(f"# {note}")
    for r in rows:
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
