"""Survival figures with numbers at risk: Kaplan–Meier and cumulative incidence.

Every function builds a ``matplotlib.figure.Figure`` on the Agg canvas directly (pyplot is
never imported, so no global figure registry fills up and nothing depends on a display),
and returns it.  ``save(fig, stem)`` writes ``stem.png`` and ``stem.svg`` deterministically:
the same figure gives byte-identical files on every run (no date in the SVG metadata, a
fixed ``svg.hashsalt`` for the element ids, set only for that call).

The inputs are the result objects of ``noim.stats``: ``kaplan_meier(...)`` (its ``.table``:
group, time, n_risk, ... survival, lower, upper) and ``cumulative_incidence(...)`` (its
``.table``: group, cause, time, n_risk, ... estimate, lower, upper).  Times are shown
divided by ``scale`` (e.g. ``scale=30.4375`` shows days as months); ``at_times`` are
given in the displayed unit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = [
    "DAYS_PER_MONTH",
    "cif_figure",
    "covering",
    "km_figure",
    "label",
    "literal",
    "numbers_at_risk",
    "save",
]

#: days in an average month, for showing day counts as months
DAYS_PER_MONTH = 30.4375
#: salt of the SVG element ids: fixed so that SVG files are identical across runs
SVG_HASHSALT = "noim"


def literal(text: str) -> str:
    """``text`` (free text typed by a user) for a matplotlib text artist, drawn as typed: every
    ``$`` escaped, so two of them never start mathtext (which could fail to parse and stop
    the report).  ``parse_math=False`` is not enough: wrapped text is measured as mathtext
    regardless (matplotlib 3.11)."""
    return text.replace("$", r"\$")


_COLOURS = ("#1b6ca8", "#d1495b", "#2e933c", "#edae49", "#6a4c93", "#00798c", "#8d6a9f")
_STYLES = ("-", "--", ":", "-.")


def numbers_at_risk(
    df: pd.DataFrame,
    duration: str,
    group: str | None,
    times: Sequence[float],
    scale: float = 1.0,
) -> pd.DataFrame:
    """Subjects still at risk (``duration / scale >= t``) at each displayed time, by group.

    Returns a DataFrame indexed by the group levels in sorted order ("all" without a
    group), one column per time.  Exact from the data; use it for cumulative incidence
    figures, whose step table holds event times only.
    """
    t = np.asarray(df[duration], dtype=float) / scale
    keys = pd.Series("all", index=df.index) if group is None else df[group]
    levels = sorted(keys.unique().tolist(), key=lambda v: (str(type(v)), v))
    rows = {
        level: [int((t[(keys == level).to_numpy()] >= x).sum()) for x in times] for level in levels
    }
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(times))


def _at_risk_from_table(
    table: pd.DataFrame, levels: Sequence[Any], times: Sequence[float], scale: float
) -> pd.DataFrame:
    """Numbers at risk read from a step table: n_risk at the first listed time >= t, 0 after
    the last.  Exact when the table lists every distinct time (Kaplan–Meier's does)."""
    rows = {}
    for level in levels:
        part = table[table["group"] == level]
        tt = part["time"].to_numpy(dtype=float) / scale
        n = part["n_risk"].to_numpy()
        idx = np.searchsorted(tt, np.asarray(times, dtype=float), side="left")
        rows[level] = [int(n[i]) if i < len(n) else 0 for i in idx]
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(times))


def _levels(table: pd.DataFrame) -> list[Any]:
    group = table["group"]
    if isinstance(group.dtype, pd.CategoricalDtype):
        present = set(group.unique().tolist())
        return [c for c in group.cat.categories.tolist() if c in present]
    return list(dict.fromkeys(group.tolist()))


def _default_times(max_time: float) -> list[float]:
    """About six round ticks from 0 to the largest time."""
    if max_time <= 0:
        return [0.0]
    raw = max_time / 6
    magnitude = 10 ** np.floor(np.log10(raw))
    step = min(m * magnitude for m in (1, 2, 3, 5, 6, 10) if m * magnitude >= raw)
    return [float(x) for x in np.arange(0, max_time + step / 2, step) if x <= max_time]


def covering(times: Sequence[float], max_time: float) -> list[float]:
    """``times`` extended by their last step until they reach ``max_time``: the axis ticks,
    and the numbers at risk printed under them, then cover every follow-up time (no curve
    runs on past the last labelled tick)."""
    out = [float(t) for t in times]
    if len(out) < 2 or out[-1] - out[-2] <= 0:
        return out
    step = out[-1] - out[-2]
    while out[-1] < max_time - 1e-9 * max(1.0, abs(max_time)):
        out.append(out[-1] + step)
    return out


def _label(labels: Mapping[Any, str] | None, level: Any) -> str:
    return str(labels.get(level, level)) if labels else str(level)


def _risk_table(
    ax: Axes,
    counts: pd.DataFrame,
    levels: Sequence[Any],
    labels: Mapping[Any, str] | None,
    colours: Sequence[str],
) -> None:
    """Write the numbers at risk under the curves: one row per group, one column per time."""
    ax.set_ylim(len(levels) - 0.5, -0.5)
    ax.set_yticks(range(len(levels)))
    ax.set_yticklabels([_label(labels, lv) for lv in levels], fontsize=8)
    for tick, colour in zip(ax.get_yticklabels(), colours, strict=False):
        tick.set_color(colour)
    for row, level in enumerate(levels):
        for t, n in counts.loc[level].items():
            ax.text(float(t), row, str(int(n)), ha="center", va="center", fontsize=8)
    ax.tick_params(axis="both", length=0)
    ax.tick_params(axis="y", pad=14)
    ax.tick_params(axis="x", labelbottom=False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title("Number at risk", fontsize=8, loc="left")


def _new_figure(
    n_panels: int, n_groups: int, width: float
) -> tuple[Figure, list[Axes], list[Axes]]:
    risk_height = 0.35 + 0.22 * n_groups
    fig = Figure(figsize=(width * n_panels, 3.6 + risk_height), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, n_panels, height_ratios=[3.6, risk_height])
    axes: list[Axes] = []
    risks: list[Axes] = []
    for k in range(n_panels):
        ax = fig.add_subplot(grid[0, k], sharey=axes[0] if axes else None)
        axes.append(ax)
        risks.append(fig.add_subplot(grid[1, k], sharex=ax))
    return fig, axes, risks


def _step(ax: Axes, x: np.ndarray[Any, Any], y: np.ndarray[Any, Any], **kw: Any) -> None:
    ax.step(x, y, where="post", **kw)


def km_figure(
    km_result: Any,
    title: str = "",
    *,
    at_times: Sequence[float] | None = None,
    ci: bool = False,
    failure: bool = False,
    scale: float = 1.0,
    labels: Mapping[Any, str] | None = None,
    xlabel: str = "Time",
    ylabel: str | None = None,
    censor_marks: bool = True,
    width: float = 6.4,
) -> Figure:
    """Kaplan–Meier step curves by group with the numbers at risk under the axis.

    Parameters
    ----------
    km_result : the result of ``stats.kaplan_meier`` (its ``table`` is drawn).
    title : figure title.
    at_times : displayed times at which to print the numbers at risk (default: about six
        round ticks over the follow-up); extended by their last step to cover the longest
        follow-up time (``covering``).
    ci : draw the 95% confidence bands (shaded).
    failure : draw 1 − S(t) (cumulative probability of the event) instead of S(t).
    scale : times are divided by it for display (``DAYS_PER_MONTH`` shows days as months).
    labels : display names of the group levels (default: the levels themselves).
    censor_marks : mark censoring times with a small vertical tick.
    """
    table: pd.DataFrame = km_result.table
    levels = _levels(table)
    colours = [_COLOURS[i % len(_COLOURS)] for i in range(len(levels))]
    fig, (ax,), (risk,) = _new_figure(1, len(levels), width)
    max_time = float(table["time"].max()) / scale if len(table) else 0.0
    for level, colour in zip(levels, colours, strict=True):
        part = table[table["group"] == level]
        x = np.concatenate(([0.0], part["time"].to_numpy(dtype=float) / scale))
        surv = np.concatenate(([1.0], part["survival"].to_numpy(dtype=float)))
        lower = np.concatenate(([1.0], part["lower"].to_numpy(dtype=float)))
        upper = np.concatenate(([1.0], part["upper"].to_numpy(dtype=float)))
        if failure:
            surv, lower, upper = 1 - surv, 1 - upper, 1 - lower
        _step(ax, x, surv, color=colour, linewidth=1.6, label=_label(labels, level))
        if ci:
            ax.fill_between(x, lower, upper, step="post", color=colour, alpha=0.15, linewidth=0)
        if censor_marks:
            censored = part["n_censor"].to_numpy() > 0
            ax.plot(
                x[1:][censored],
                surv[1:][censored],
                linestyle="none",
                marker="|",
                markersize=6,
                color=colour,
            )
    times = covering(at_times, max_time) if at_times is not None else _default_times(max_time)
    counts = _at_risk_from_table(table, levels, times, scale)
    _finish(ax, title, xlabel, ylabel or ("Cumulative probability" if failure else "Survival"))
    ax.set_xticks(times)
    ax.set_xlim(0, max(max_time, max(times)) * 1.02 or 1.0)
    _risk_table(risk, counts, levels, labels, colours)
    if len(levels) > 1:
        ax.legend(frameon=False, fontsize=8, loc="lower left" if not failure else "upper left")
    return fig


def cif_figure(
    cif_result: Any,
    cause_labels: Mapping[int, str] | None = None,
    title: str = "",
    *,
    causes: Sequence[int] | None = None,
    at_times: Sequence[float] | None = None,
    at_risk: pd.DataFrame | None = None,
    ci: bool = False,
    scale: float = 1.0,
    labels: Mapping[Any, str] | None = None,
    xlabel: str = "Time",
    ylabel: str = "Cumulative incidence",
    width: float = 4.2,
) -> Figure:
    """Cumulative incidence curves: one panel per cause, one curve per group, at-risk table.

    Parameters
    ----------
    cif_result : the result of ``stats.cumulative_incidence`` (its ``table`` is drawn).
    cause_labels : display names of the causes (``{1: "Return home", ...}``).
    causes : which causes to draw (default: every cause in the table).
    at_times : displayed times at which to print the numbers at risk; extended by their
        last step to cover the longest follow-up time (``covering``).
    at_risk : numbers at risk (index = group levels, columns = the displayed times), e.g.
        from ``numbers_at_risk(df, "duration", "arm", covering(times, longest), scale)``.
        Without it (or for a displayed time it lacks) they are read from the step table,
        which lists event times only: the count at the next event time, which misses
        subjects censored in between (give ``at_risk`` for exact ones).
    ci : draw the 95% confidence bands (shaded).
    scale, labels, xlabel, ylabel : as for ``km_figure``.
    """
    table: pd.DataFrame = cif_result.table
    levels = _levels(table)
    chosen = list(causes) if causes is not None else sorted(set(table["cause"].tolist()))
    colours = [_COLOURS[i % len(_COLOURS)] for i in range(len(levels))]
    fig, axes, risks = _new_figure(len(chosen), len(levels), width)
    max_time = float(table["time"].max()) / scale if len(table) else 0.0
    last_times = getattr(cif_result, "last_time", {}) or {}
    max_time = max([max_time, *(float(t) / scale for t in last_times.values())])
    times = covering(at_times, max_time) if at_times is not None else _default_times(max_time)
    missing = [t for t in times if at_risk is None or t not in at_risk.columns]
    if missing:
        first = table[table["cause"] == chosen[0]] if chosen else table
        read = _at_risk_from_table(first, levels, times, scale)
        at_risk = read if at_risk is None else at_risk.reindex(columns=times).fillna(read)
    assert at_risk is not None
    for ax, risk, cause in zip(axes, risks, chosen, strict=True):
        for i, (level, colour) in enumerate(zip(levels, colours, strict=True)):
            part = table[(table["group"] == level) & (table["cause"] == cause)]
            x = part["time"].to_numpy(dtype=float) / scale
            y = part["estimate"].to_numpy(dtype=float)
            if len(x) == 0 or x[0] > 0:
                x, y = np.concatenate(([0.0], x)), np.concatenate(([0.0], y))
                lower = np.concatenate(([0.0], part["lower"].to_numpy(dtype=float)))
                upper = np.concatenate(([0.0], part["upper"].to_numpy(dtype=float)))
            else:
                lower = part["lower"].to_numpy(dtype=float)
                upper = part["upper"].to_numpy(dtype=float)
            last = getattr(cif_result, "last_time", {}).get(level)
            if last is not None and last / scale > x[-1]:  # carry the curve to the last follow-up
                x, y = np.append(x, last / scale), np.append(y, y[-1])
                lower, upper = np.append(lower, lower[-1]), np.append(upper, upper[-1])
            style = _STYLES[i % len(_STYLES)]
            _step(
                ax, x, y, color=colour, linestyle=style, linewidth=1.6, label=_label(labels, level)
            )
            if ci:
                ax.fill_between(x, lower, upper, step="post", color=colour, alpha=0.15, linewidth=0)
        name = cause_labels.get(cause, f"Cause {cause}") if cause_labels else f"Cause {cause}"
        _finish(ax, name, xlabel, ylabel if ax is axes[0] else "")
        ax.set_xticks(times)
        ax.set_xlim(0, max(max_time, max(times)) * 1.02 or 1.0)
        _risk_table(risk, at_risk.loc[levels, times], levels, labels, colours)
        if len(levels) > 1 and ax is axes[0]:
            ax.legend(frameon=False, fontsize=8, loc="upper left")
    axes[0].set_ylim(0, 1)
    if title:
        fig.suptitle(title)
    return fig


def _finish(ax: Axes, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1.02)
    ax.grid(True, color="#dddddd", linewidth=0.5)
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)


def label(fig: Figure, text: str) -> Figure:
    """Put ``text`` at the top of ``fig`` in bold red (e.g. "DUMMY ARMS: not the allocation"
    on a figure drawn on dummy arms): the figure's title becomes ``text`` above the title it
    had.  Returns ``fig``."""
    title = fig.get_suptitle()
    fig.suptitle(
        literal(text) + (f"\n{title}" if title else ""),
        color="#b00020",
        weight="bold",
        fontsize=11,
    )
    return fig


def save(fig: Figure, path_stem: str | Path, dpi: int = 150) -> list[Path]:
    """Write ``fig`` as ``<stem>.png`` and ``<stem>.svg`` (byte-identical on reruns).

    Returns the two paths.  The SVG carries no date and its element ids are salted with a
    fixed string (``svg.hashsalt``, set for this call only); the PNG carries no date either.
    """
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    png, svg = stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".svg")
    with matplotlib.rc_context({"svg.hashsalt": SVG_HASHSALT, "svg.fonttype": "path"}):
        fig.savefig(png, format="png", dpi=dpi, metadata={"Software": None})
        fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
    return [png, svg]
