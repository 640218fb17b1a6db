"""Reports and analysis datasets as downloads (one file each), for the web application.

``interim_report`` builds the open or closed interim report (``noim.reports.render.produce``,
the code behind ``noim report interim``) from a data freeze (or the live data) in a
temporary folder and returns one file: the HTML, the PDF, or a zip of everything written
(CSV tables, report.json, HTML and PDF).  The reader's capability is checked before
anything is built (``read_open_report`` / ``read_closed_report``).  ``dataset_csv`` returns
one analysis dataset (``noim.extract``, blinding and site scope applied for the reader) as
CSV whose text cells a spreadsheet cannot run as formulas. .
"""

from __future__ import annotations

import io
import re
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from noim.db.session import Database
from noim.domain.exceptions import NotFound
from noim.domain.roles import Actor

#: what a report download may be
REPORT_FORMATS = ("html", "pdf", "zip")
REPORT_KINDS = ("open", "closed")
#: the analysis datasets (``noim.extract.DATASETS``' names; ``scores_wide`` is the wide form)
DATASET_NAMES = (
    "children",
    "permanence",
    "scores",
    "scores_wide",
    "placements",
    "reentries",
    "costs",
)
_MEDIA = {
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "zip": "application/zip",
    "csv": "text/csv; charset=utf-8",
}


@dataclass(frozen=True)
class Download:
    filename: str
    media_type: str
    content: bytes


def _source(freeze: int | None, as_of: date) -> str:
    return f"freeze{freeze}" if freeze is not None else f"live-{as_of.isoformat()}"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "noim"


def interim_report(
    db: Database,
    actor: Actor,
    kind: str,
    fmt: str,
    *,
    freeze: int | None = None,
    as_of: date | None = None,
) -> Download:
    """The ``kind`` ("open" or "closed") interim report as one ``fmt`` file."""
    from noim.reports import render
    from noim.reports.interim import report_reader

    if kind not in REPORT_KINDS:
        raise NotFound(f"no report {kind!r}; expected one of {', '.join(REPORT_KINDS)}")
    if fmt not in REPORT_FORMATS:
        raise NotFound(f"no report format {fmt!r}; expected one of {', '.join(REPORT_FORMATS)}")
    closed = kind == "closed"
    report_reader(actor, closed)  # refused here, before anything is built
    formats = ["html", "pdf"] if fmt == "zip" else [fmt]
    with tempfile.TemporaryDirectory(prefix="noim-report-") as tmp:
        out = Path(tmp)
        report, paths = render.produce(
            db,
            actor,
            closed=closed,
            out=out,
            formats=formats,
            freeze=None if freeze is None else str(freeze),
            as_of=as_of,
        )
        stem = _safe(f"noim-{kind}-interim-report-{_source(freeze, report.as_of)}")
        if fmt != "zip":
            content = (out / f"report.{fmt}").read_bytes()
            return Download(f"{stem}.{fmt}", _MEDIA[fmt], content)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
            for path in sorted(paths):
                z.write(path, f"{stem}/{path.relative_to(out).as_posix()}")
        return Download(f"{stem}.zip", _MEDIA["zip"], buffer.getvalue())


def _extractor(name: str) -> Callable[..., Any]:
    from noim import extract

    if name == "scores_wide":
        return lambda db, actor, **kw: extract.scores(db, actor, wide=True, **kw)
    found: Callable[..., Any] = getattr(extract, name)
    return found


def dataset_csv(
    db: Database,
    actor: Actor,
    name: str,
    *,
    freeze: int | None = None,
    as_of: date | None = None,
) -> Download:
    """Analysis dataset ``name`` as ``actor`` may read it, as CSV (``analyse`` needed)."""
    from noim.reports.csvsafe import write_csv

    if name not in DATASET_NAMES:
        raise NotFound(f"no analysis dataset {name!r}; expected one of {', '.join(DATASET_NAMES)}")
    kwargs: dict[str, Any] = {"freeze": freeze} if freeze is not None else {"as_of": as_of}
    frame = _extractor(name)(db, actor, **kwargs)
    with tempfile.TemporaryDirectory(prefix="noim-dataset-") as tmp:
        path = write_csv(frame, Path(tmp) / "data.csv")
        content = path.read_bytes()
    when = _source(freeze, as_of or date.today())
    return Download(_safe(f"noim-{name}-{when}") + ".csv", _MEDIA["csv"], content)
