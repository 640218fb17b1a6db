"""The recording forms of placements, legal proceedings and events, and visits.

Each form is a GET (the empty form, pre-filled where the record exists) and a POST that
parses the text into types, calls ONE service and redirects to the record page; when the
service refuses, the same form comes back with status 422, the user's values kept and each
problem beside the field it names (``noim.web.form_pages``).  Every rule (site scope,
blinding, dates, code lists) is the services'; a GET reads through a service too, so another
site's child is refused before any form is shown.  The other forms: ``forms_assessments``
and ``forms_events``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from noim.domain.exceptions import NotFound
from noim.domain.roles import Capability
from noim.services import assessment_entry, legal, placements, visits
from noim.web import choices
from noim.web.form_pages import (
    as_text,
    child_url,
    corrections,
    form_page,
    one_date,
    optional_int,
    submit,
    text_of,
    url_id,
)
from noim.web.forms import Collector, FormState, fmt_date
from noim.web.pages import WebRequest, render, view

C = Capability


# --------------------------------------------------------------------------- placements


def _placement(req: WebRequest) -> tuple[str, placements.ChildPlacements, placements.PlacementView]:
    child = req.params["child"]
    history = placements.list_placements(req.db, req.actor, child)
    pid = url_id(req, "placement")
    for p in history.placements:
        if p.id == pid:
            return child, history, p
    raise NotFound(f"no placement {pid} of child {child}")


def _placement_choices(req: WebRequest) -> dict[str, Any]:
    from noim.services import people

    carers = [c for c in people.list_carers(req.db, req.actor) if not c.voided]
    return {
        "placement_types": choices.PLACEMENT_TYPES,
        "end_reasons": choices.PLACEMENT_END_REASONS,
        "carers": [
            (str(c.id), f"{c.id}: {c.carer_type}" + (f" ({c.reference})" if c.reference else ""))
            for c in carers
        ],
    }


@view(capability=C.WRITE_TRIAL_DATA, methods=("GET", "POST"))
def placement_new(req: WebRequest) -> Response:
    child = req.params["child"]
    history = placements.list_placements(req.db, req.actor, child)
    ctx = {"child": child, "history": history, **_placement_choices(req)}
    template = "forms/placement_new.html"

    def action() -> str:
        c = Collector()
        start = c.date("start_date", req.form.get("start_date"), required=True)
        carer = optional_int(c, "carer_id", req.form.get("carer_id"))
        c.raise_if_any()
        assert start is not None
        placements.add_placement(
            req.db,
            req.actor,
            child,
            start,
            req.form.get("placement_type", ""),
            carer,
            text_of(req, "local_authority"),
        )
        return child_url(child)

    return form_page(req, template, ctx, action, "Placement added.", known=_PLACEMENT)


@view(capability=C.WRITE_TRIAL_DATA, methods=("GET", "POST"))
def placement_action(req: WebRequest) -> Response:
    child, history, p = _placement(req)
    act = req.params["action"]
    if act not in ("move", "end", "correct", "void"):
        raise NotFound(f"no placement action {act!r}")
    ctx = {"child": child, "history": history, "placement": p, **_placement_choices(req)}
    template = f"forms/placement_{act}.html"
    stored = {name: getattr(p, name) for name in _PLACEMENT_CORRECTION}
    if req.request.method == "GET":
        defaults = as_text(stored) if act == "correct" else {}
        return render(req, template, form=FormState.empty(**defaults), **ctx)

    def action() -> str:
        c = Collector()
        if act == "end":
            ended = one_date(req, "end_date")
            placements.end_placement(req.db, req.actor, p.id, ended, req.form.get("end_reason", ""))
        elif act == "move":
            on = c.date("on", req.form.get("on"), required=True)
            carer = optional_int(c, "carer_id", req.form.get("carer_id"))
            c.raise_if_any()
            assert on is not None
            placements.move_child(
                req.db,
                req.actor,
                child,
                on,
                req.form.get("placement_type", ""),
                req.form.get("end_reason", ""),
                carer,
                text_of(req, "local_authority"),
            )
        elif act == "void":
            placements.void_placement(req.db, req.actor, p.id, req.form.get("reason", ""))
        else:
            changes = corrections(req, stored, _PLACEMENT_CORRECTION, "start_date")
            placements.correct_placement(
                req.db, req.actor, p.id, changes, req.form.get("reason", "")
            )
        return child_url(child)

    done = {"move": "Move recorded.", "end": "Placement ended.", "void": "Placement voided."}
    fields = _MOVE_FIELDS if act == "move" else {}
    return submit(
        req, template, ctx, action, done.get(act, "Placement corrected."), fields, _PLACEMENT
    )


#: a move ends the open placement and starts the next on one date (the form's ``on``)
_MOVE_FIELDS = {"end_date": "on", "start_date": "on"}
#: the placement correction form's fields, by kind (``form_pages.corrections``)
_PLACEMENT_CORRECTION = {
    "start_date": "date",
    "end_date": "date",
    "placement_type": "choice",
    "end_reason": "text",
    "carer_id": "int",
    "local_authority": "text",
}
_PLACEMENT = (
    "start_date",
    "end_date",
    "on",
    "placement_type",
    "end_reason",
    "carer_id",
    "local_authority",
    "reason",
)


# --------------------------------------------------------------------------- legal


def _legal_context(req: WebRequest) -> dict[str, Any]:
    child = req.params["child"]
    history = legal.legal_history(req.db, req.actor, child)
    return {
        "child": child,
        "history": history,
        "legal": choices.legal_choices(history.jurisdiction),
        "proceedings": [
            (str(p.id), f"{p.kind.replace('_', ' ')} from {fmt_date(p.started_on)}")
            for p in history.proceedings
            if not p.voided
        ],
    }


@view(capability=C.WRITE_TRIAL_DATA, methods=("GET", "POST"))
def legal_event_new(req: WebRequest) -> Response:
    ctx = _legal_context(req)
    child = ctx["child"]
    template = "forms/legal_event.html"

    def action() -> str:
        c = Collector()
        on = c.date("event_date", req.form.get("event_date"), required=True)
        proceedings = optional_int(c, "proceedings_id", req.form.get("proceedings_id"))
        c.raise_if_any()
        assert on is not None
        legal.record_event(
            req.db,
            req.actor,
            child,
            req.form.get("event_type", ""),
            on,
            proceedings,
            text_of(req, "notes"),
        )
        return child_url(child)

    return form_page(
        req,
        template,
        ctx,
        action,
        "Legal event recorded.",
        {"event_type_code": "event_type"},
        ("event_type", "event_date", "proceedings_id", "notes"),
    )


@view(capability=C.WRITE_TRIAL_DATA, methods=("GET", "POST"))
def legal_proceedings_new(req: WebRequest) -> Response:
    ctx = _legal_context(req)
    child = ctx["child"]
    template = "forms/legal_proceedings.html"

    def action() -> str:
        on = one_date(req, "started_on")
        legal.open_proceedings(
            req.db, req.actor, child, req.form.get("kind", ""), on, text_of(req, "court_or_panel")
        )
        return child_url(child)

    return form_page(
        req,
        template,
        ctx,
        action,
        "Proceedings recorded.",
        known=("kind", "started_on", "court_or_panel"),
    )


#: the actions on a recorded legal event / proceedings, and what each says when done
_EVENT_ACTIONS = {"correct": "Legal event corrected.", "void": "Legal event voided."}
_PROCEEDINGS_ACTIONS = {
    "end": "Proceedings ended.",
    "correct": "Proceedings corrected.",
    "void": "Proceedings voided.",
}
#: the correction forms' fields, by kind (``form_pages.corrections``)
_EVENT_CORRECTION = {
    "event_type": "choice",
    "event_date": "date!",
    "proceedings_id": "int",
    "notes": "text",
}
_PROCEEDINGS_CORRECTION = {
    "kind": "choice",
    "started_on": "date!",
    "ended_on": "date",
    "court_or_panel": "text",
}
#: a legal form: its template, the values it opens with, its one service call, its fields
_LegalForm = tuple[str, dict[str, str], Callable[[], object], tuple[str, ...]]


def _legal_record(
    req: WebRequest, record: str, actions: dict[str, str]
) -> tuple[str, dict[str, Any], Any]:
    """The URL's action on the child's legal ``record`` ("event" or "proceedings") ``{id}``,
    the form's context and the record (read through ``legal_history``: site scope first)."""
    act = req.params["action"]
    if act not in actions:
        raise NotFound(f"no legal {record} action {act!r}")
    ctx = _legal_context(req)
    history: legal.LegalHistory = ctx["history"]
    rid = url_id(req, f"legal {record}")
    rows = history.events if record == "event" else history.proceedings
    found = next((r for r in rows if r.id == rid), None)
    if found is None:
        raise NotFound(f"no legal {record} {rid} of child {history.child}")
    what = f"legal event {rid}" if record == "event" else f"proceedings {rid}"
    ctx.update(act=act, record=found, record_kind=record, what=what)
    return act, ctx, found


def _legal_form(req: WebRequest, ctx: dict[str, Any], form: _LegalForm, done: str) -> Response:
    """A form on a recorded legal event or proceedings: its values on GET; on POST its one
    service call, then back to the child.  A voided record is shown as such (the services
    refuse to change it, and voiding it again changes nothing)."""
    template, defaults, call, known = form
    if ctx["record"].voided:
        done = f"{ctx['what'].capitalize()} was already void: nothing changed."
    if req.method == "GET":
        return render(req, template, form=FormState.empty(**defaults), **ctx)

    def action() -> str:
        call()
        return child_url(ctx["child"])

    return submit(req, template, ctx, action, done, known=known)


def _void_form(call: Callable[[], object]) -> _LegalForm:
    return "forms/legal_void.html", {}, call, ("reason",)


def _correction_form(
    req: WebRequest, record: Any, kinds: dict[str, str], first: str, correct: Callable[..., object]
) -> _LegalForm:
    """The correction form of a legal ``record``: pre-filled as stored; on POST the changed
    fields (``corrections``) and the reason go to ``correct`` (the service)."""
    stored = {name: getattr(record, name) for name in kinds}

    def call() -> object:
        changes = corrections(req, stored, kinds, first)
        return correct(req.db, req.actor, record.id, changes, req.form.get("reason", ""))

    return "forms/legal_correct.html", as_text(stored), call, (*kinds, "reason")


@view(capability=C.WRITE_TRIAL_DATA, methods=("GET", "POST"))
def legal_event_action(req: WebRequest) -> Response:
    """Correct a legal event (``correct_event``) or void it (``void_event``), with a reason."""
    act, ctx, e = _legal_record(req, "event", _EVENT_ACTIONS)
    reason = req.form.get("reason", "")
    forms: dict[str, _LegalForm] = {
        "void": _void_form(lambda: legal.void_event(req.db, req.actor, e.id, reason)),
        "correct": _correction_form(req, e, _EVENT_CORRECTION, "event_type", legal.correct_event),
    }
    return _legal_form(req, ctx, forms[act], _EVENT_ACTIONS[act])


@view(capability=C.WRITE_TRIAL_DATA, methods=("GET", "POST"))
def legal_proceedings_action(req: WebRequest) -> Response:
    """End proceedings (``end_proceedings``), correct them (``correct_proceedings``) or void
    them (``void_proceedings``); a correction and a void need a reason."""
    act, ctx, p = _legal_record(req, "proceedings", _PROCEEDINGS_ACTIONS)
    reason = req.form.get("reason", "")
    forms: dict[str, _LegalForm] = {
        "void": _void_form(lambda: legal.void_proceedings(req.db, req.actor, p.id, reason)),
        "end": (
            "forms/legal_proceedings_end.html",
            {},
            lambda: legal.end_proceedings(req.db, req.actor, p.id, one_date(req, "ended_on")),
            ("ended_on",),
        ),
        "correct": _correction_form(
            req, p, _PROCEEDINGS_CORRECTION, "kind", legal.correct_proceedings
        ),
    }
    return _legal_form(req, ctx, forms[act], _PROCEEDINGS_ACTIONS[act])


# --------------------------------------------------------------------------- visits


_VISIT_ACTIONS = {
    "complete": "Visit recorded as complete.",
    "missed": "Visit recorded as missed.",
    "not-required": "Visit recorded as not required.",
}


@view(capability=C.WRITE_ASSESSMENTS, methods=("GET", "POST"))
def visit_action(req: WebRequest) -> Response:
    child, act = req.params["child"], req.params["action"]
    if act not in _VISIT_ACTIONS:
        raise NotFound(f"no visit action {act!r}")
    tp = assessment_entry.visit_timepoint(req.db, req.actor, child, req.params["id"])
    visit = next(
        (v for v in visits.list_visits(req.db, req.actor, child) if v.timepoint == tp), None
    )
    if visit is None:
        raise NotFound(f"no visit {tp!r} of child {child}")
    ctx = {"child": child, "visit": visit, "act": act}
    template = "forms/visit.html"

    def action() -> str:
        if act == "complete":
            on = one_date(req, "completed_on")
            visits.complete_visit(req.db, req.actor, child, tp, on)
        elif act == "missed":
            visits.record_missed(req.db, req.actor, child, tp, req.form.get("reason", ""))
        else:
            visits.record_not_required(req.db, req.actor, child, tp, req.form.get("reason", ""))
        return child_url(child)

    return form_page(
        req,
        template,
        ctx,
        action,
        _VISIT_ACTIONS[act],
        {"status": "completed_on" if act == "complete" else "reason"},
        ("completed_on", "reason"),
    )


routes = [
    Route("/children/{child}/placements/new", placement_new, methods=["GET", "POST"]),
    Route("/children/{child}/placements/{id}/{action}", placement_action, methods=["GET", "POST"]),
    Route("/children/{child}/legal/new", legal_event_new, methods=["GET", "POST"]),
    Route(
        "/children/{child}/legal/proceedings/new", legal_proceedings_new, methods=["GET", "POST"]
    ),
    Route(
        "/children/{child}/legal/events/{id}/{action}",
        legal_event_action,
        methods=["GET", "POST"],
    ),
    Route(
        "/children/{child}/legal/proceedings/{id}/{action}",
        legal_proceedings_action,
        methods=["GET", "POST"],
    ),
    Route("/children/{child}/visits/{id}/{action}", visit_action, methods=["GET", "POST"]),
]
