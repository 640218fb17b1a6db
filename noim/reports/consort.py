"""The CONSORT flow diagram of the interim reports (matplotlib, Agg canvas, no pyplot).

``consort_figure(consort, timepoints)`` draws the boxes from the numbers the report puts under
``"consort"`` in its JSON: screening (families), then one column per level of
``consort["randomised"]`` (one per arm in the closed report, a single pooled column in the
open report) with allocation, follow-up per timepoint, withdrawals and losses, and analysis.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from noim.extract.dummy import DUMMY_ARMS
from noim.reports.figures import literal
from noim.reports.summaries import ANALYSED, RECEIPT_STAGES

__all__ = ["consort_figure"]

_BOX = {"boxstyle": "round,pad=0.4", "facecolor": "#f4f6f8", "edgecolor": "#34495e"}


def _box(ax: Any, x: float, y: float, text: str, size: float = 8) -> None:
    # literal: free text (screening reasons) is drawn as typed, never as mathtext
    ax.text(x, y, literal(text), ha="center", va="center", fontsize=size, bbox=_BOX, wrap=True)


def _arrow(ax: Any, x0: float, y0: float, x1: float, y1: float) -> None:
    ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops={"arrowstyle": "->", "lw": 0.8})


def _receipt(c: dict[str, int]) -> str:
    """The allocation box's receipt lines: families and children by receipt status, with the
    reasons for not receiving it (in families; at most four, most frequent first)."""
    lines = ["Received the allocated intervention"]
    for label, (child_row, family_row) in zip(
        ("yes", "no", "not yet recorded"), RECEIPT_STAGES, strict=True
    ):
        lines.append(
            f"{label}: families n = {c.get(family_row, 0)}, children n = {c.get(child_row, 0)}"
        )
        if label == "no":
            prefix, suffix = "did not receive the allocated intervention: ", " (families)"
            why = sorted(
                (
                    (n, k[len(prefix) : -len(suffix)])
                    for k, n in c.items()
                    if k.startswith(prefix) and k.endswith(suffix) and n
                ),
                key=lambda p: (-p[0], p[1]),
            )
            lines += [f"– {reason}: {n}" for n, reason in why[:4]]
    return "\n".join(lines)


def consort_figure(consort: dict[str, Any], timepoints: Sequence[str]) -> Figure:
    """The flow diagram: screening boxes on top, one column per randomised group below."""
    groups: dict[str, dict[str, int]] = consort["randomised"]
    n = max(len(groups), 1)
    fig = Figure(figsize=(4.2 * n + 1.5, 10))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    reasons = consort.get("not_eligible_reasons", {})
    why = "".join(f"\n  {r}: {c}" for r, c in list(reasons.items())[:4])
    _box(ax, 0.5, 0.95, f"Families screened (n = {consort['screened']})")
    _arrow(ax, 0.5, 0.925, 0.5, 0.885)
    _arrow(ax, 0.5, 0.905, 0.68, 0.905)
    _box(
        ax,
        0.8,
        0.9,
        f"Not eligible (n = {consort['not_eligible']}){why}\n"
        f"Eligible, declined (n = {consort['declined']})",
        7,
    )
    _box(
        ax,
        0.5,
        0.86,
        f"Eligible (n = {consort['eligible']})\nConsented and enrolled "
        f"(n = {consort['consented_enrolled']})",
    )
    width = 1 / n
    for k, (level, c) in enumerate(groups.items()):
        x = width * (k + 0.5)
        _arrow(ax, 0.5, 0.83, x, 0.78)
        name = (
            "All randomised"
            if level == "all"
            else f"{level} (dummy arm)"
            if level in DUMMY_ARMS
            else f"Allocated to {level}"
        )
        _box(
            ax,
            x,
            0.7,
            f"{name}\nfamilies n = {c.get('families randomised', 0)}, "
            f"children n = {c.get('children randomised', 0)}\n" + _receipt(c),
            7.5,
        )
        follow = "\n".join(
            f"followed up at {tp}: n = {c.get(f'followed up at {tp} (SDQ)', 0)}"
            for tp in timepoints
        )
        _arrow(ax, x, 0.6, x, 0.56)
        _box(
            ax,
            x,
            0.46,
            f"Follow-up (SDQ, carer)\n{follow}\n"
            f"withdrawn from intervention: {c.get('withdrawn from intervention', 0)}\n"
            f"withdrawn from follow-up: {c.get('withdrawn from follow up', 0)}\n"
            f"withdrawn from data use: {c.get('withdrawn from data', 0)}\n"
            f"lost to follow-up: {c.get('lost to follow-up', 0)}\n"
            f"excluded after randomisation: {c.get('excluded after randomisation', 0)}",
        )
        _arrow(ax, x, 0.35, x, 0.26)
        _box(
            ax,
            x,
            0.19,
            f"Analysis\nITT set n = {c.get('in the ITT set', 0)}\n"
            f"analysed (primary: SDQ at 30m) n = {c.get(ANALYSED, 0)}",
        )
    return fig
