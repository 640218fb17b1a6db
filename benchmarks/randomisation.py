"""Benchmark: `noim randomisation simulate` (vectorised, no database) for each method.

Prints a table of seconds for R simulated trials of N families at growing sizes, then one
JSON line per run.  Target (issue 3): 1,000 trials of 400 families in under 5 s per method
on a 2-core machine.  Run: ``.venv/bin/python benchmarks/randomisation.py``.
"""

from __future__ import annotations

import json
import time

from noim.domain.randomisation_sim import simulate_trial
from noim.domain.trialdef import default_definition

SIZES = [(100, 400), (1000, 400), (1000, 2000), (10000, 400)]


def main() -> None:
    definition = default_definition()
    results = []
    for reps, families in SIZES:
        for method in ("minimisation", "blocks"):
            t0 = time.perf_counter()
            r = simulate_trial(definition, families, reps, method, seed=1)
            seconds = time.perf_counter() - t0
            results.append(
                {
                    "method": method,
                    "reps": reps,
                    "families": families,
                    "seconds": round(seconds, 3),
                    "predictability": round(r.predictability, 4),
                    "mean_overall_imbalance": round(float(r.overall_imbalance.mean()), 3),
                }
            )
    print(
        f"{'method':<13} {'reps':>6} {'families':>9} {'seconds':>8} {'predictability':>15} {'mean |imbalance|':>17}"
    )
    for r in results:
        print(
            f"{r['method']:<13} {r['reps']:>6} {r['families']:>9} {r['seconds']:>8} {r['predictability']:>15} "
            f"{r['mean_overall_imbalance']:>17}"
        )
    for r in results:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
