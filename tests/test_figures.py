"""Survival figures (noim.reports.figures): curves, numbers at risk, deterministic files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from noim import stats
from noim.reports import figures


@pytest.fixture
def frame() -> pd.DataFrame:
    # arm A: times 1..5 (events at 1, 3, 5; censored 2, 4); arm B: 2, 2, 6 (censored at 6)
    return pd.DataFrame(
        {
            "t": [1, 2, 3, 4, 5, 2, 2, 6],
            "e": [1, 0, 1, 0, 1, 1, 1, 0],
            "cause": [1, 0, 2, 0, 1, 2, 1, 0],
            "arm": ["A"] * 5 + ["B"] * 3,
        }
    )


def risk_texts(fig: Figure, panel: int = 0) -> list[str]:
    """The numbers printed in a panel's at-risk table, row by row."""
    risk = fig.axes[2 * panel + 1]
    return [t.get_text() for t in risk.texts]


def test_km_figure_curves_and_numbers_at_risk(frame: pd.DataFrame) -> None:
    km = stats.kaplan_meier(frame, "t", "e", group="arm")
    fig = figures.km_figure(km, "Time to event", at_times=[0, 2, 4, 6], ci=True)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_title() == "Time to event"
    curves = [line for line in ax.get_lines() if line.get_linestyle() == "-"]
    assert [c.get_label() for c in curves] == ["A", "B"]
    x, y = curves[0].get_data()
    assert list(x) == [0, 1, 2, 3, 4, 5]
    np.testing.assert_allclose(y, [1, 0.8, 0.8, 0.8 * 2 / 3, 0.8 * 2 / 3, 0])
    # at risk at 0, 2, 4, 6: A has 5, 4, 2, 0; B has 3, 3, 1, 1
    assert risk_texts(fig) == ["5", "4", "2", "0", "3", "3", "1", "1"]
    assert len(ax.collections) >= 2  # the CI bands
    failure = figures.km_figure(km, failure=True)
    _, yf = failure.axes[0].get_lines()[0].get_data()
    np.testing.assert_allclose(yf, 1 - np.asarray(y))


def test_km_figure_without_group_and_all_censored() -> None:
    df = pd.DataFrame({"t": [3, 5, 8], "e": [0, 0, 0]})
    fig = figures.km_figure(stats.kaplan_meier(df, "t", "e"), at_times=[0, 4])
    _, y = fig.axes[0].get_lines()[0].get_data()
    assert set(y) == {1.0}
    assert risk_texts(fig) == ["3", "2", "1"]  # the ticks run on to 8, the last time


def test_axes_and_numbers_at_risk_cover_the_data() -> None:
    """A curve never runs past the last labelled tick: ticks given every 6 months up to 30
    are extended by 6 up to the longest follow-up (59.5 months here: a child at risk for
    1,810 days), with the numbers at risk under each."""
    assert figures.covering([0, 6, 12, 18, 24, 30], 59.5) == [
        0,
        6,
        12,
        18,
        24,
        30,
        36,
        42,
        48,
        54,
        60,
    ]
    assert figures.covering([0, 6, 12], 12.0) == [0, 6, 12]
    assert figures.covering([0, 6, 12], 3.0) == [0, 6, 12]  # never shortened
    assert figures.covering([0], 50.0) == [0]
    month = figures.DAYS_PER_MONTH
    df = pd.DataFrame({"t": [100, 400, 900, 1810], "e": [1, 0, 1, 0], "c": [1, 0, 2, 0]})
    km = figures.km_figure(
        stats.kaplan_meier(df, "t", "e"), at_times=[0, 6, 12, 18, 24, 30], scale=month
    )
    ax = km.axes[0]
    ticks = list(ax.get_xticks())
    assert ticks[-1] == 60 and ax.get_xlim()[1] >= 1810 / month
    assert max(ax.get_lines()[0].get_data()[0]) <= ticks[-1]
    assert risk_texts(km) == ["4", "3", "3", "2", "2", "1", "1", "1", "1", "1", "0"]
    cif = stats.cumulative_incidence(df, "t", "c")
    times = figures.covering([0, 12, 24], 1810 / month)
    at = figures.numbers_at_risk(df, "t", None, times, scale=month)
    fig = figures.cif_figure(cif, at_times=[0, 12, 24], at_risk=at, scale=month)
    assert list(fig.axes[0].get_xticks()) == [0, 12, 24, 36, 48, 60]
    assert risk_texts(fig) == ["4", "3", "2", "1", "1", "0"]
    # the curve is carried to the last follow-up (59.5 months), inside the axis
    assert max(fig.axes[0].get_lines()[0].get_data()[0]) == pytest.approx(1810 / month)
    assert fig.axes[0].get_xlim()[1] >= 60


def test_cif_figure_panels_and_exact_numbers_at_risk(frame: pd.DataFrame) -> None:
    cif = stats.cumulative_incidence(frame, "t", "cause", group="arm")
    at = figures.numbers_at_risk(frame, "t", "arm", [0, 3, 6])
    assert at.to_dict("index") == {"A": {0: 5, 3: 3, 6: 0}, "B": {0: 3, 3: 1, 6: 1}}
    fig = figures.cif_figure(
        cif, {1: "Return home", 2: "Adoption"}, "Permanence", at_times=[0, 3, 6], at_risk=at
    )
    assert [fig.axes[0].get_title(), fig.axes[2].get_title()] == ["Return home", "Adoption"]
    # arm A, cause 1: events at 1 and 5 among 5, 4(at 1)... Aalen-Johansen by hand
    x, y = fig.axes[0].get_lines()[0].get_data()
    assert list(x)[:2] == [0.0, 1.0] and y[1] == pytest.approx(0.2)
    assert risk_texts(fig, 1) == ["5", "3", "0", "3", "1", "1"]
    # without at_risk the counts come from the step table (next event time)
    fig2 = figures.cif_figure(cif, at_times=[0])
    assert risk_texts(fig2) == ["5", "3"]


def test_scale_shows_days_as_months(frame: pd.DataFrame) -> None:
    km = stats.kaplan_meier(frame.assign(t=frame["t"] * 30), "t", "e")
    fig = figures.km_figure(km, scale=30.0, at_times=[0, 3])
    x, _ = fig.axes[0].get_lines()[0].get_data()
    assert list(x) == [0, 1, 2, 3, 4, 5, 6]
    assert risk_texts(fig) == ["8", "4", "1"]  # ticks 0, 3 and 6 (the last time)


def test_save_writes_png_and_identical_svg(frame: pd.DataFrame, tmp_path: Path) -> None:
    km = stats.kaplan_meier(frame, "t", "e", group="arm")
    cif = stats.cumulative_incidence(frame, "t", "cause", group="arm")
    paths = figures.save(figures.km_figure(km, "KM"), tmp_path / "one" / "km")
    assert [p.name for p in paths] == ["km.png", "km.svg"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = paths[1].read_text()
    assert svg.startswith("<?xml") and "<dc:date>" not in svg
    again = figures.save(figures.km_figure(km, "KM"), tmp_path / "two" / "km")
    assert [p.read_bytes() for p in paths] == [p.read_bytes() for p in again]
    c1 = figures.save(figures.cif_figure(cif), tmp_path / "cif1")
    c2 = figures.save(figures.cif_figure(cif), tmp_path / "cif2")
    assert c1[1].read_bytes() == c2[1].read_bytes()


def test_no_pyplot_and_agg_backend() -> None:
    """Building and saving a figure never imports pyplot (no global figure registry) and
    needs no display."""
    code = (
        "import sys, tempfile, pandas as pd\n"
        "from noim import stats\n"
        "from noim.reports import figures\n"
        "df = pd.DataFrame({'t': [1, 2, 3], 'e': [1, 0, 1]})\n"
        "fig = figures.km_figure(stats.kaplan_meier(df, 't', 'e'))\n"
        "figures.save(fig, tempfile.mkdtemp() + '/km')\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n"
        "print(type(fig.canvas).__name__)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"} | {"MPLBACKEND": "agg"}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "FigureCanvasAgg"
