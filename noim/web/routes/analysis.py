"""The analysts' pages: interim reports and analysis datasets to download.

``/reports`` offers the reports the role may read (the open report to ``read_open_report``,
the closed one to ``read_closed_report`` only), each built from a data freeze on request
(``noim.reports.download.interim_report``: the code behind ``noim report interim``).
``/datasets`` offers the analysis datasets as CSV (``analyse``), from a freeze or the live
data, with the reader's blinding applied by ``noim.extract``. The freezes' own pages are in
``noim.web.routes.dm``.
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from noim.domain.exceptions import (
    NoimError,
    NotFound,
    PermissionDenied,
    Problem,
    ValidationError,
)
from noim.domain.roles import Capability
from noim.reports import download
from noim.services import freezes
from noim.web.forms import Collector, FormState
from noim.web.pages import WebRequest, render, view

C = Capability
_FORMATS = (("html", "HTML page"), ("pdf", "PDF"), ("zip", "zip: tables (CSV), JSON, HTML and PDF"))


def _attachment(d: download.Download) -> Response:
    return Response(
        d.content,
        media_type=d.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{d.filename}"',
            "Cache-Control": "no-store",
        },
    )


def _reports_page(
    req: WebRequest, form: FormState, status: int = 200, failed: str = ""
) -> Response:
    kinds = [k for k in download.REPORT_KINDS if k == "open" or req.actor.can(C.READ_CLOSED_REPORT)]
    return render(
        req,
        "analysis/reports.html",
        status=status,
        form=form,
        failed=failed,
        kinds=kinds,
        freezes=list(reversed(freezes.list_freezes(req.db, req.actor))),
        formats=_FORMATS,
    )


@view(C.READ_OPEN_REPORT)
def reports(req: WebRequest) -> Response:
    return _reports_page(req, FormState.empty(freeze=req.query.get("freeze", ""), format="html"))


@view()
def report_download(req: WebRequest) -> Response:
    from noim.reports.interim import report_reader

    kind = str(req.params["kind"])
    if kind not in download.REPORT_KINDS:
        raise NotFound(f"no report {kind!r}; expected one of open, closed")
    report_reader(req.actor, kind == "closed")  # 403 before anything is read or built
    values = {"freeze": req.query.get("freeze", ""), "format": req.query.get("format", "html")}
    c = Collector()
    freeze = c.int("freeze", values["freeze"], required=True)
    fmt = c.choice("format", values["format"], download.REPORT_FORMATS, required=True)
    try:
        c.raise_if_any()
        assert freeze is not None and fmt is not None
        built = download.interim_report(req.db, req.actor, kind, fmt, freeze=freeze)
    except PermissionDenied:
        raise
    except NotFound as exc:  # no such freeze: said beside the freeze chosen
        problem = Problem("report", "freeze", values["freeze"], "WEB-003", str(exc))
        form = FormState.failed(values, ValidationError(problem), known=["freeze", "format"])
        return _reports_page(req, form, status=422, failed=kind)
    except NoimError as exc:  # bad input, a freeze too old for reports, a tampered freeze
        form = FormState.failed(values, exc, known=["freeze", "format"])
        return _reports_page(req, form, status=422, failed=kind)
    return _attachment(built)


@view(C.ANALYSE)
def datasets(req: WebRequest) -> Response:
    from noim.extract import DATASETS

    values = {"freeze": req.query.get("freeze", "")}
    form = FormState.of(values)
    c = Collector()
    freeze = c.int("freeze", values["freeze"])
    status = 200
    try:
        c.raise_if_any()
    except ValidationError as exc:
        form, freeze, status = FormState.failed(values, exc, known=["freeze"]), None, 422
    described = {d.name: d for d in DATASETS}
    rows = [(name, described.get(name)) for name in download.DATASET_NAMES]
    return render(
        req,
        "analysis/datasets.html",
        status=status,
        form=form,
        freeze=freeze,
        rows=rows,
        freezes=list(reversed(freezes.list_freezes(req.db, req.actor))),
    )


@view(C.ANALYSE)
def dataset_download(req: WebRequest) -> Response:
    name = str(req.params["name"])
    c = Collector()
    freeze = c.int("freeze", req.query.get("freeze", ""))
    if c.problems:
        raise NotFound(f"no data freeze {req.query.get('freeze', '')!r}: expected its number")
    return _attachment(download.dataset_csv(req.db, req.actor, name, freeze=freeze))


routes = [
    Route("/reports", reports, methods=["GET"]),
    Route("/reports/{kind}", report_download, methods=["GET"]),
    Route("/datasets", datasets, methods=["GET"]),
    Route("/datasets/{name}", dataset_download, methods=["GET"]),
]
