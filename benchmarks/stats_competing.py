"""Benchmark: competing risks in noim.stats against reference implementations.

* ``cumulative_incidence`` (Aalen–Johansen, both causes, with variance) at 10^4, 10^5,
  10^6 rows against lifelines' ``AalenJohansenFitter`` (one fit per cause).  Times are
  continuous so lifelines does not jitter ties (it does when times are tied; it is a timing
  reference only, cmprsk is the numerical one, see tests/test_stats_competing.py).
  max_abs_diff: largest difference of the two CIFs on a grid of 50 times.  Target: < 1 s at 10^6.
* ``fine_gray`` (two covariates) at 10^3, 10^4, 10^5 rows against ``cmprsk::crr`` run
  through ``Rscript`` when R and cmprsk are installed (timed inside R, without start-up);
  max_abs_diff: largest difference of coefficients and standard errors.  Without R the
  reference columns are empty.

``cases(sizes)`` returns one dict per comparison (name, n, noim_s, reference_name,
reference_s, ratio = reference_s / noim_s, max_abs_diff); ``sizes`` maps "cif" and
"fine_gray" to lists of n.  Run: ``.venv/bin/python benchmarks/stats_competing.py``
(``pip install -e '.[bench]'`` for lifelines).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from noim import stats

DEFAULT_SIZES: dict[str, list[int]] = {
    "cif": [10_000, 100_000, 1_000_000],
    "fine_gray": [1_000, 10_000, 100_000],
}
CRR_LIMIT = 10_000  # crr is O(n^2): 85 s at 10^4 here, hours at 10^5


def _data(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.integers(0, 2, size=n).astype(float)
    t1 = rng.exponential(10.0 * np.exp(-(0.5 * x1 - 0.3 * x2)))
    t2 = rng.exponential(15.0, size=n)
    c = rng.uniform(2.0, 30.0, size=n)
    t = np.minimum(np.minimum(t1, t2), c)
    status = np.where(t == c, 0, np.where(t == t1, 1, 2))
    return pd.DataFrame({"time": t, "status": status, "x1": x1, "x2": x2})


def _timed(fn: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _cif_case(n: int) -> dict[str, Any]:
    df = _data(n)
    noim_s, res = _timed(lambda: stats.cumulative_incidence(df, "time", "status"))
    grid = np.quantile(df["time"], np.linspace(0.01, 0.95, 50))
    ours = res.at(grid)
    row: dict[str, Any] = {"name": "cumulative_incidence", "n": n, "noim_s": round(noim_s, 4)}
    try:
        from lifelines import AalenJohansenFitter
    except ImportError:
        return row | {
            "reference_name": None,
            "reference_s": None,
            "ratio": None,
            "max_abs_diff": None,
        }
    diffs = []
    ref_s = 0.0
    for k in (1, 2):
        ajf = AalenJohansenFitter(calculate_variance=True)
        s, _ = _timed(lambda ajf=ajf, k=k: ajf.fit(df["time"], df["status"], event_of_interest=k))
        ref_s += s
        cif = ajf.cumulative_density_
        theirs = cif.iloc[
            np.searchsorted(cif.index.to_numpy(), grid, side="right") - 1, 0
        ].to_numpy()
        mine = ours[ours["cause"] == k]["estimate"].to_numpy()
        diffs.append(float(np.max(np.abs(theirs - mine))))
    return row | {
        "reference_name": "lifelines AalenJohansenFitter (2 fits)",
        "reference_s": round(ref_s, 4),
        "ratio": round(ref_s / noim_s, 1),
        "max_abs_diff": max(diffs),
    }


_CRR = """
suppressMessages(library(cmprsk))
d <- read.csv("{path}")
tm <- system.time(f <- crr(d$time, d$status, cbind(x1 = d$x1, x2 = d$x2), failcode = 1, gtol = 1e-10))
cat(tm[["elapsed"]], f$coef, sqrt(diag(f$var)), "\\n")
"""


def _fine_gray_case(n: int) -> dict[str, Any]:
    df = _data(n, seed=2)
    noim_s, res = _timed(lambda: stats.fine_gray(df, "time", "status", ["x1", "x2"]))
    row: dict[str, Any] = {"name": "fine_gray", "n": n, "noim_s": round(noim_s, 4)}
    empty = {"reference_name": None, "reference_s": None, "ratio": None, "max_abs_diff": None}
    if shutil.which("Rscript") is None or n > CRR_LIMIT:
        return row | empty
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "d.csv"
        df.to_csv(path, index=False, float_format="%.17g")
        script = Path(tmp) / "crr.R"
        script.write_text(_CRR.format(path=path))
        done = subprocess.run(
            ["Rscript", str(script)], capture_output=True, text=True, timeout=3600, check=False
        )
    if done.returncode != 0:
        return row | empty | {"reference_name": "cmprsk::crr (failed)"}
    values = [float(v) for v in done.stdout.split()]
    ref_s, ref = values[0], np.array(values[1:])
    mine = np.concatenate([res.summary["coef"].to_numpy(), res.summary["se"].to_numpy()])
    return row | {
        "reference_name": "cmprsk::crr (R)",
        "reference_s": round(ref_s, 4),
        "ratio": round(ref_s / max(noim_s, 1e-9), 1),
        "max_abs_diff": float(np.max(np.abs(ref - mine))),
    }


def cases(sizes: dict[str, list[int]] | None = None) -> list[dict[str, Any]]:
    """Run every comparison; ``sizes`` defaults to DEFAULT_SIZES."""
    sizes = sizes or DEFAULT_SIZES
    out = [_cif_case(n) for n in sizes.get("cif", [])]
    out += [_fine_gray_case(n) for n in sizes.get("fine_gray", [])]
    return out


def main() -> None:
    results = cases()
    head = f"{'name':<22} {'n':>9} {'noim s':>9} {'reference':<40} {'ref s':>9} {'ratio':>7} {'max |diff|':>11}"
    print(head)
    for r in results:
        ref_s = "" if r["reference_s"] is None else f"{r['reference_s']:.4f}"
        ratio = "" if r["ratio"] is None else f"{r['ratio']}"
        diff = "" if r["max_abs_diff"] is None else f"{r['max_abs_diff']:.2e}"
        print(
            f"{r['name']:<22} {r['n']:>9} {r['noim_s']:>9.4f} {r['reference_name'] or '-':<40} "
            f"{ref_s:>9} {ratio:>7} {diff:>11}"
        )
    for r in results:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
