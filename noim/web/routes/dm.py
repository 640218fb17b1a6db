"""The data manager's pages: data queries, ``noim check``, CSV imports, freezes, the audit trail.

Each page parses text into types and calls one service; who may do what (coordinators answer
their sites' queries; data managers raise, resolve, close and reopen; blinding; site scope) is
the services' rule. The uploaded file of an import is kept on the server between its preview
and its commit (``noim.services.imports.uploads``).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

from starlette.responses import Response
from starlette.routing import Route

from noim.domain import trial_ids
from noim.domain.codes import QUERY_STATUSES
from noim.domain.exceptions import ImportRejected, NotFound, Problem, ValidationError
from noim.domain.roles import Capability
from noim.services import audit_search, freezes, queries, query_search, rules
from noim.services.imports import uploads
from noim.services.queries import TRANSITIONS, QueryView
from noim.web.forms import Collector, FormState
from noim.web.pages import WebRequest, redirect, render, view

C = Capability

# --------------------------------------------------------------------------- helpers


def _page_url(path: str, filters: Mapping[str, str | list[str]], page: int) -> str:
    pairs: list[tuple[str, str]] = []
    for key, value in filters.items():
        for v in value if isinstance(value, list) else [value]:
            if v:
                pairs.append((key, v))
    pairs.append(("page", str(page)))
    return f"{path}?{urlencode(pairs)}"


def record_url(table: str, trial_id: str | None, key: str) -> str | None:
    """The page of a query's record: the child's or family's page, else its history."""
    if trial_id:
        try:
            child = trial_ids.parse(trial_id).child_number is not None
        except ValueError:
            return f"/history/{table}/{key}"
        return f"/children/{trial_id}" if child else f"/families/{trial_id}"
    return f"/history/{table}/{key}"


# --------------------------------------------------------------------------- queries


@view(C.READ_TRIAL_DATA)
def query_list(req: WebRequest) -> Response:
    params = req.request.query_params
    statuses = [s for s in params.getlist("status") if s]
    values = {k: params.get(k, "") for k in ("site", "min_age", "max_age", "page")}
    form = FormState.of(values)
    c = Collector()
    min_age = c.int("min_age", values["min_age"])
    max_age = c.int("max_age", values["max_age"])
    page = c.int("page", values["page"]) or 1
    try:
        c.raise_if_any()
        found = query_search.page_queries(
            req.db,
            req.actor,
            site=values["site"] or None,
            statuses=statuses,
            min_age=min_age,
            max_age=max_age,
            page=page,
        )
        status = 200
    except ValidationError as exc:
        form = FormState.failed(values | {"status": ",".join(statuses)}, exc)
        found = query_search.page_queries(req.db, req.actor)
        status = 422
    filters: dict[str, str | list[str]] = {**values, "status": statuses}
    filters.pop("page")
    return render(
        req,
        "dm/queries.html",
        status=status,
        form=form,
        found=found,
        statuses=statuses,
        all_statuses=QUERY_STATUSES,
        record_url=record_url,
        previous_url=_page_url("/queries", filters, found.page - 1),
        next_url=_page_url("/queries", filters, found.page + 1),
        may_raise=req.actor.can(C.MANAGE_QUERIES),
    )


_RAISE_FIELDS = ("table", "record", "field", "message")


@view(C.MANAGE_QUERIES, methods=("GET", "POST"))
def query_new(req: WebRequest) -> Response:
    if req.method == "GET":
        form = FormState.empty(**{k: req.query.get(k, "") for k in _RAISE_FIELDS})
        return render(req, "dm/query_new.html", form=form)
    values = {k: req.form.get(k, "") for k in _RAISE_FIELDS}
    try:
        made = queries.raise_query(
            req.db,
            req.actor,
            values["table"].strip(),
            values["record"],
            values["message"],
            values["field"].strip() or None,
        )
    except ValidationError as exc:
        form = FormState.failed(values, exc, fields={"key": "record"}, known=_RAISE_FIELDS)
        return render(req, "dm/query_new.html", form=form, status=422)
    return redirect(req, f"/queries/{made.id}", f"Query {made.id} raised on {made.table}.")


def _actions(req: WebRequest, q: QueryView) -> list[str]:
    """The actions to offer on ``q``: those its status allows and the role may try (the
    service decides)."""
    a = req.actor
    answers = a.can(C.WRITE_TRIAL_DATA) or a.can(C.WRITE_ASSESSMENTS)
    manages = a.can(C.MANAGE_QUERIES) and a.all_sites
    out = []
    for action, (starts, _to) in TRANSITIONS.items():
        if q.status not in starts:
            continue
        if (action == "respond" and answers) or (action != "respond" and manages):
            out.append(action)
    return out


def _query_id(req: WebRequest) -> int:
    text = str(req.params["id"])
    if not text.isdigit():
        raise NotFound(f"no data query {text!r}")
    return int(text)


def _show_query(req: WebRequest, form: FormState, status: int = 200, failed: str = "") -> Response:
    q = queries.get_query(req.db, req.actor, _query_id(req))
    return render(
        req,
        "dm/query.html",
        status=status,
        q=q,
        form=form,
        failed=failed,
        actions=_actions(req, q),
        record_url=record_url(q.table, q.trial_id, q.row_key),
    )


@view(C.READ_TRIAL_DATA)
def query_detail(req: WebRequest) -> Response:
    return _show_query(req, FormState.empty())


@view(C.READ_TRIAL_DATA, methods=("POST",))
def query_action(req: WebRequest) -> Response:
    action = str(req.params["action"])
    query_id = _query_id(req)
    if action not in TRANSITIONS:
        raise NotFound(f"no action {action!r} on data queries")
    values = {"message": req.form.get("message", "")}
    call = getattr(queries, action)
    try:
        done: QueryView = call(req.db, req.actor, query_id, values["message"])
    except ValidationError as exc:
        form = FormState.failed(values, exc, known=["message"])
        return _show_query(req, form, status=422, failed=action)
    return redirect(req, f"/queries/{done.id}", f"Query {done.id} is now {done.status}.")


# --------------------------------------------------------------------------- check


@view(C.MANAGE_QUERIES, methods=("GET", "POST"))
def check(req: WebRequest) -> Response:
    if req.method == "GET":
        return render(req, "dm/check.html", report=None)
    report = rules.check(req.db, req.actor)
    return render(req, "dm/check.html", report=report)


# --------------------------------------------------------------------------- imports


_DATES = (("", "as the file says (else yyyy-mm-dd)"), ("iso", "yyyy-mm-dd"), ("dmy", "dd/mm/yyyy"))


def _import_page(req: WebRequest, form: FormState, status: int = 200) -> Response:
    return render(
        req,
        "dm/imports.html",
        status=status,
        form=form,
        kinds=uploads.offered_kinds(req.actor),
        dates=_DATES,
    )


@view(methods=("GET", "POST"))
def imports(req: WebRequest) -> Response:
    if req.method == "GET":
        return _import_page(req, FormState.empty())
    values = {"kind": req.form.get("kind", ""), "dates": req.form.get("dates", "")}
    offered = [k.name for k in uploads.offered_kinds(req.actor)]
    c = Collector()
    kind = c.choice("kind", values["kind"], offered, required=True)
    dates = c.choice("dates", values["dates"], ("iso", "dmy"))
    upload = req.files.get("file")
    try:
        if upload is None:
            c.problems.append(Problem("form", "file", "", "WEB-004", "a CSV file to upload"))
        c.raise_if_any()
        assert kind is not None and upload is not None
        shown = uploads.preview(req.db, req.actor, kind, upload[0], upload[1], dates=dates)
    except ValidationError as exc:
        form = FormState.failed(values, exc, known=["kind", "dates", "file"])
        return _import_page(req, form, status=422)
    return render(
        req, "dm/import_preview.html", status=200 if shown.ok else 422, p=shown, dates=dates or ""
    )


@view(methods=("POST",))
def import_commit(req: WebRequest) -> Response:
    kind = req.form.get("kind", "")
    sha = req.form.get("sha256", "")
    dates = req.form.get("dates", "") or None
    try:
        if dates not in (None, "iso", "dmy"):
            raise ValidationError(Problem("form", "dates", dates, "WEB-003", "iso or dmy"))
        report = uploads.commit(req.db, req.actor, kind, sha, dates=dates)
    except (ImportRejected, ValidationError) as exc:
        return render(
            req, "dm/import_done.html", status=422, report=None, problems=exc.problems, kind=kind
        )
    return render(req, "dm/import_done.html", report=report, problems=[], kind=kind)


# --------------------------------------------------------------------------- freezes


def _freeze_page(req: WebRequest, form: FormState, status: int = 200) -> Response:
    return render(
        req,
        "dm/freezes.html",
        status=status,
        form=form,
        freezes=list(reversed(freezes.list_freezes(req.db, req.actor))),
        may_freeze=req.actor.can(C.FREEZE_DATA),
    )


@view(methods=("GET", "POST"))
def freeze_list(req: WebRequest) -> Response:
    if req.method == "GET":
        return _freeze_page(req, FormState.empty())
    values = {"label": req.form.get("label", "")}
    try:
        made = freezes.create_freeze(req.db, req.actor, label=values["label"])
    except ValidationError as exc:
        return _freeze_page(req, FormState.failed(values, exc, known=["label"]), status=422)
    return redirect(req, f"/freezes/{made.id}", f"Data freeze {made.id} ({made.label}) made.")


@view()
def freeze_detail(req: WebRequest) -> Response:
    text = str(req.params["id"])
    if not text.isdigit():
        raise NotFound(f"no data freeze {text!r}")
    info = freezes.show_freeze(req.db, req.actor, int(text))
    return render(
        req,
        "dm/freeze.html",
        f=info,
        reports=req.actor.can(C.READ_OPEN_REPORT),
        datasets=req.actor.can(C.ANALYSE),
    )


# --------------------------------------------------------------------------- audit

_AUDIT_FIELDS = ("table", "key", "user", "since", "until", "page")


@view(C.READ_AUDIT)
def audit(req: WebRequest) -> Response:
    values = {k: req.query.get(k, "") for k in _AUDIT_FIELDS}
    form = FormState.of(values)
    c = Collector()
    since = c.date("since", values["since"])
    until = c.date("until", values["until"])
    page = c.int("page", values["page"]) or 1
    status = 200
    try:
        c.raise_if_any()
        found = audit_search.search(
            req.db,
            req.actor,
            table=values["table"] or None,
            key=values["key"] or None,
            user=values["user"] or None,
            since=since,
            until=until,
            page=page,
        )
    except ValidationError as exc:
        form = FormState.failed(values, exc, known=list(_AUDIT_FIELDS))
        found = audit_search.search(req.db, req.actor)
        status = 422
    filters: dict[str, str | list[str]] = {k: v for k, v in values.items() if k != "page"}
    return render(
        req,
        "dm/audit.html",
        status=status,
        form=form,
        found=found,
        tables=audit_search.table_names(),
        previous_url=_page_url("/audit", filters, found.page - 1),
        next_url=_page_url("/audit", filters, found.page + 1),
    )


routes = [
    Route("/queries", query_list, methods=["GET"]),
    Route("/queries/new", query_new, methods=["GET", "POST"]),
    Route("/queries/{id}", query_detail, methods=["GET"]),
    Route("/queries/{id}/{action}", query_action, methods=["POST"]),
    Route("/check", check, methods=["GET", "POST"]),
    Route("/imports", imports, methods=["GET", "POST"]),
    Route("/imports/commit", import_commit, methods=["POST"]),
    Route("/freezes", freeze_list, methods=["GET", "POST"]),
    Route("/freezes/{id}", freeze_detail, methods=["GET"]),
    Route("/audit", audit, methods=["GET"]),
]
