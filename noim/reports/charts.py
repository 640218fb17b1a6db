"""Other figures of the interim reports: recruitment against target, by site."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["recruitment_figure"]

_COLOURS = ("#1b6ca8", "#d1495b", "#2e933c", "#edae49")


def recruitment_figure(rec: pd.DataFrame, targets: Mapping[str, int | None]) -> Figure:
    """Cumulative families randomised per month, one line per site, with each site's target
    as a dashed line (``rec``: site, month ``YYYY-MM``, randomised, cumulative)."""
    fig = Figure(figsize=(7.5, 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    months = sorted(rec["month"].unique().tolist())
    pos = {m: i for i, m in enumerate(months)}
    for k, site in enumerate(sorted(targets)):
        colour = _COLOURS[k % len(_COLOURS)]
        part = rec[rec["site"] == site]
        if len(part):
            ax.step(
                [pos[m] for m in part["month"]],
                part["cumulative"].tolist(),
                where="post",
                color=colour,
                label=f"{site} randomised",
            )
        target = targets[site]
        if target:
            ax.axhline(target, color=colour, ls="--", lw=0.8, label=f"{site} target ({target})")
    step = max(1, len(months) // 8)
    ax.set_xticks(range(0, len(months), step))
    ax.set_xticklabels(months[::step], rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("Families randomised (cumulative)")
    ax.set_title("Recruitment against target, by site", fontsize=10, loc="left")
    ax.legend(fontsize=7, frameon=False)
    return fig
