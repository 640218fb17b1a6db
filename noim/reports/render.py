"""Write an ``InterimReport``: CSV tables, JSON, self-contained HTML and PDF.

* ``<table>.csv`` for every table (fixed float format, ``\\n`` line ends: byte-identical on
  reruns over the same data; text cells that a spreadsheet would run as a formula
  neutralised, ``noim.reports.csvsafe``);
* ``report.json``: the header, the CONSORT numbers (``"consort"``) and every table as
  records (sorted keys, no timestamps: byte-identical on reruns);
* ``report.html``: one file, figures as inline SVG (jinja2 template
  ``templates/interim.html.j2``);
* ``report.pdf``: the same content with matplotlib's ``PdfPages``: a title page, the figures
  and the tables as text pages (no creation date in the metadata).
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jinja2
import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from noim.reports.csvsafe import write_csv
from noim.reports.figures import SVG_HASHSALT, literal
from noim.reports.interim import InterimReport

__all__ = ["FORMATS", "cell", "report_json", "write"]

FORMATS = ("html", "pdf")
_ROWS_PER_PAGE = 34


def cell(value: Any) -> str:
    """A value as text: floats with at most 4 significant digits (1 decimal from 1000 on)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, float | np.floating):
        v = float(value)
        if math.isnan(v):
            return ""
        if math.isinf(v):
            return "not reached" if v > 0 else "-inf"
        if abs(v) >= 1000:
            return f"{v:.1f}"
        return f"{v:.4g}"
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    return value


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {str(c): _jsonable(v) for c, v in zip(df.columns, row, strict=True)}
        for row in df.itertuples(index=False)
    ]


def report_json(report: InterimReport) -> dict[str, Any]:
    """The machine-readable report: header, consort and the tables as records."""
    return {
        **report.header(),
        "consort": _jsonable(report.consort),
        "tables": {name: _records(t) for name, t in report.tables().items()},
    }


#: table name -> title (others: the name, capitalised)
TITLES = {
    "screening": "Screening log (families)",
    "flow": "Participant flow (children)",
    "exit_reasons": "Withdrawals and losses to follow-up: reasons (children)",
    "recruitment": "Families randomised per month, by site, against target",
    "baseline": "Baseline characteristics",
    "retention": "Retention and form completeness per timepoint and site; overdue visits",
    "open_queries": "Open data queries by age",
    "sae_counts": "Serious adverse events by category",
    "sae_listing": "Serious adverse events: listing",
    "deviation_counts": "Protocol deviations by category and severity",
    "permanence_events": "First permanence decision by outcome",
    "cumulative_incidence": "Cumulative incidence of each permanence outcome (12, 24, 30 months)",
    "primary_summary": "SDQ total difficulties at baseline and 30 months (observed)",
    "primary_status": "SDQ total difficulties: observed, missing, not yet reached (ITT)",
    "primary_analysis": "Primary analysis (95% CI)",
}


def _title(name: str) -> str:
    return TITLES.get(name, name.replace("_", " ").capitalize())


def _scope(report: InterimReport) -> str:
    if report.dummy_seed is not None:
        from noim.extract.dummy import describe

        return "CLOSED report layout on DUMMY ARMS. " + describe(report.dummy_seed)
    if report.closed:
        arms = "; ".join(f"{k} = {v}" for k, v in report.consort.get("arms", {}).items())
        return (
            "CLOSED report: results by allocated group, for the DMC and unblinded roles only. "
            f"Arms: {arms}."
        )
    return "OPEN report: every result pooled over all randomised participants."


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": SVG_HASHSALT, "svg.fonttype": "path"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _html(report: InterimReport) -> str:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("noim.reports", "templates"),
        autoescape=True,
        keep_trailing_newline=True,
    )
    svgs = {name: _svg(fig) for name, fig in report.figures.items()}
    sections = []
    for sec in report.sections:
        tables = []
        for name, t in sec.tables.items():
            numeric = [pd.api.types.is_numeric_dtype(t[c]) for c in t.columns]
            rows = [
                [(cell(v), num) for v, num in zip(row, numeric, strict=True)]
                for row in t.itertuples(index=False)
            ]
            tables.append(
                {"name": name, "title": _title(name), "columns": list(t.columns), "rows": rows}
            )
        sections.append(
            {
                "key": sec.key,
                "title": sec.title,
                "figures": [svgs[f] for f in sec.figures if f in svgs],
                "tables": tables,
                "notes": sec.notes,
            }
        )
    template = env.get_template("interim.html.j2")
    return template.render(header=report.header(), scope=_scope(report), sections=sections)


def _text_page(lines: Iterable[str], title: str) -> Figure:
    fig = Figure(figsize=(8.27, 11.69))
    FigureCanvasAgg(fig)
    # literal: free text (a reason with two "$") is shown as typed, never as mathtext
    fig.text(0.06, 0.96, literal(title), fontsize=12, weight="bold", va="top")
    fig.text(0.06, 0.92, literal("\n".join(lines)), fontsize=6.5, family="monospace", va="top")
    return fig


def _table_lines(t: pd.DataFrame) -> list[str]:
    cols = [str(c) for c in t.columns]
    rows = [[cell(v) for v in row] for row in t.itertuples(index=False)]
    widths = [min(40, max([len(c), *(len(r[i]) for r in rows)])) for i, c in enumerate(cols)]

    def fmt(values: list[str]) -> str:
        return "  ".join(v[:w].ljust(w) for v, w in zip(values, widths, strict=True))

    return (
        [fmt(cols), fmt(["-" * w for w in widths]), *(fmt(r) for r in rows)] if rows else ["(none)"]
    )


def _pdf(report: InterimReport, path: Path) -> None:
    h = report.header()
    with PdfPages(path, metadata={"CreationDate": None, "Creator": None, "Producer": None}) as pdf:
        first = [
            f"Registration {h['registration']}",
            f"Data as of {h['as_of']}; source: {h['source']}",
            _scope(report),
            "",
            "Contents:",
            *(f"  {i}. {sec.title}" for i, sec in enumerate(report.sections, 1)),
        ]
        pdf.savefig(_text_page(first, f"{h['trial']}: {h['report']}"))
        for sec in report.sections:
            for name in sec.figures:
                if name in report.figures:
                    pdf.savefig(report.figures[name])
            lines: list[str] = []
            for name, t in sec.tables.items():
                lines += [f"{_title(name)} ({name}.csv)", *_table_lines(t), ""]
            lines += [f"* {n}" for n in sec.notes]
            for k in range(0, max(len(lines), 1), _ROWS_PER_PAGE * 3):
                chunk = lines[k : k + _ROWS_PER_PAGE * 3]
                pdf.savefig(_text_page(chunk, sec.title + (" (continued)" if k else "")))


def write(report: InterimReport, out: Path, formats: Iterable[str] = FORMATS) -> list[Path]:
    """Write the CSV tables, ``report.json`` and the requested formats; return the paths."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, t in report.tables().items():
        written.append(write_csv(t, out / f"{name}.csv"))
    path = out / "report.json"
    path.write_text(json.dumps(report_json(report), indent=2) + "\n", encoding="utf-8")
    written.append(path)
    formats = set(formats)
    if "html" in formats:
        path = out / "report.html"
        path.write_text(_html(report), encoding="utf-8")
        written.append(path)
    if "pdf" in formats:
        path = out / "report.pdf"
        _pdf(report, path)
        written.append(path)
    return written


def produce(
    db: Any,
    actor: Any,
    *,
    closed: bool,
    out: Path,
    formats: Iterable[str] = FORMATS,
    freeze: str | None = None,
    as_of: Any = None,
    dummy_arms: bool = False,
    dummy_seed: int | None = None,
) -> tuple[InterimReport, list[Path]]:
    """Build the interim report (``noim.reports.interim.build``) and write it to ``out``."""
    from noim.reports.interim import build

    seeded = {} if dummy_seed is None else {"dummy_seed": dummy_seed}
    report = build(
        db, actor, closed=closed, freeze=freeze, as_of=as_of, dummy_arms=dummy_arms, **seeded
    )
    return report, write(report, out, formats)
