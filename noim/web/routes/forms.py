"""The recording forms: one page per recording service, under the child or the family.

Each form is a GET (the empty form, pre-filled where the record exists) and a POST that
parses the text into types, calls ONE service and redirects to the record page; when the
service refuses, the same form comes back with status 422, the user's values kept and each
problem beside the field it names.  Every rule (site scope, blinding, dates, code lists)
is the services'; a GET reads through a service too, so another site's child is refused
before any form is shown.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from noim.domain import trial_ids
from noim.domain.exceptions import (
    NoimError,
    NotFound,
    PermissionDenied,
    Problem,
    ReasonRequired,
    ValidationError,
)
from noim.domain.roles import Capability
from noim.services import (
    assessment_entry,
    assessments,
    consent,
    economics,
    intervention,
    legal,
    placements,
    safety,
    visits,
)
from noim.web import choices
from noim.web.forms import Collector, FormState, fmt_date
from noim.web.instrument_forms import (
    InstrumentForm,
    ParsedResponses,
    instrument_form,
    parse_responses,
)
from noim.web.pages import WebRequest, redirect, render, view

C = Capability


# --------------------------------------------------------------------------- helpers


def _child_url(child: str) -> str:
    return f"/children/{child}"


def _failed(
    req: WebRequest,
    exc: NoimError,
    fields: Mapping[str, str] | None = None,
    known: Sequence[str] = (),
) -> FormState:
    """The form back with the user's values and the service's problems beside the fields
    (``known``: the form's field names, besides those posted); a missing reason is shown
    beside the reason field."""
    if isinstance(exc, ReasonRequired):
        message = "Expected a reason: " + str(exc).replace(" (--reason)", "") + "."
        return FormState(dict(req.form), {"reason": [message]}, [])
    return FormState.failed(dict(req.form), exc, fields, known=[*req.form, *known])


def _refusable(exc: NoimError) -> bool:
    """Errors the page shows on the form (not turned into 403 / 404 by ``view``)."""
    return not isinstance(exc, NotFound | PermissionDenied)


def _submit(
    req: WebRequest,
    template: str,
    context: dict[str, Any],
    action: Callable[[], str],
    flash: str,
    fields: Mapping[str, str] | None = None,
    known: Sequence[str] = (),
) -> Response:
    """Run ``action`` (parse + one service call, returning the URL to go to) and redirect,
    or re-render ``template`` with status 422 and the problems beside their fields."""
    try:
        url = action()
    except NoimError as exc:
        if not _refusable(exc):
            raise
        form = _failed(req, exc, fields, known)
        return render(req, template, form=form, status=422, **context)
    return redirect(req, url, flash=flash)


def _text(req: WebRequest, name: str) -> str | None:
    value = (req.form.get(name) or "").strip()
    return value or None


def _family_of(child: str) -> str:
    try:
        return trial_ids.parse(child).family_id
    except ValueError:
        raise NotFound(f"no child {child!r}") from None


def _decimal(c: Collector, name: str, text: str | None, what: str) -> Decimal | None:
    raw = (text or "").strip()
    if not raw:
        c.problems.append(Problem("form", name, raw, "WEB-002", what))
        return None
    try:
        return Decimal(raw)
    except InvalidOperation:
        c.problems.append(Problem("form", name, raw, "WEB-002", what))
        return None


def _optional_int(c: Collector, name: str, text: str | None) -> int | None:
    return c.int(name, text) if (text or "").strip() else None


# --------------------------------------------------------------------------- placements


def _placement(req: WebRequest) -> tuple[str, placements.ChildPlacements, placements.PlacementView]:
    child = req.params["child"]
    history = placements.list_placements(req.db, req.actor, child)
    try:
        pid = int(req.params["id"])
    except ValueError:
        raise NotFound(f"no placement {req.params['id']!r}") from None
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
    if req.request.method == "GET":
        return render(req, template, form=FormState.empty(), **ctx)

    def action() -> str:
        c = Collector()
        start = c.date("start_date", req.form.get("start_date"))
        carer = _optional_int(c, "carer_id", req.form.get("carer_id"))
        c.raise_if_any()
        assert start is not None
        placements.add_placement(
            req.db,
            req.actor,
            child,
            start,
            req.form.get("placement_type", ""),
            carer,
            _text(req, "local_authority"),
        )
        return _child_url(child)

    return _submit(req, template, ctx, action, "Placement added.", known=_PLACEMENT)


@view(capability=C.WRITE_TRIAL_DATA, methods=("GET", "POST"))
def placement_action(req: WebRequest) -> Response:
    child, history, p = _placement(req)
    act = req.params["action"]
    if act not in ("move", "end", "correct", "void"):
        raise NotFound(f"no placement action {act!r}")
    ctx = {"child": child, "history": history, "placement": p, **_placement_choices(req)}
    template = f"forms/placement_{act}.html"
    if req.request.method == "GET":
        defaults: dict[str, str] = {}
        if act == "correct":
            defaults = {
                "start_date": fmt_date(p.start_date),
                "end_date": fmt_date(p.end_date) if p.end_date else "",
                "placement_type": p.placement_type,
                "end_reason": p.end_reason or "",
                "carer_id": "" if p.carer_id is None else str(p.carer_id),
                "local_authority": p.local_authority or "",
            }
        return render(req, template, form=FormState.empty(**defaults), **ctx)

    def action() -> str:
        c = Collector()
        if act == "end":
            on = c.date("end_date", req.form.get("end_date"))
            c.raise_if_any()
            assert on is not None
            placements.end_placement(req.db, req.actor, p.id, on, req.form.get("end_reason", ""))
        elif act == "move":
            on = c.date("on", req.form.get("on"))
            carer = _optional_int(c, "carer_id", req.form.get("carer_id"))
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
                _text(req, "local_authority"),
            )
        elif act == "void":
            placements.void_placement(req.db, req.actor, p.id, req.form.get("reason", ""))
        else:
            placements.correct_placement(
                req.db, req.actor, p.id, _placement_changes(c, req, p), req.form.get("reason", "")
            )
        return _child_url(child)

    done = {"move": "Move recorded.", "end": "Placement ended.", "void": "Placement voided."}
    fields = _MOVE_FIELDS if act == "move" else {}
    return _submit(
        req, template, ctx, action, done.get(act, "Placement corrected."), fields, _PLACEMENT
    )


#: a move ends the open placement and starts the next on one date (the form's ``on``)
_MOVE_FIELDS = {"end_date": "on", "start_date": "on"}
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


def _placement_changes(
    c: Collector, req: WebRequest, p: placements.PlacementView
) -> dict[str, Any]:
    """The fields of the correction form that differ from the stored placement."""
    start = c.date("start_date", req.form.get("start_date"))
    end = c.date("end_date", req.form.get("end_date")) if _text(req, "end_date") else None
    carer = _optional_int(c, "carer_id", req.form.get("carer_id"))
    c.raise_if_any()
    new: dict[str, Any] = {
        "start_date": start,
        "end_date": end,
        "placement_type": req.form.get("placement_type", ""),
        "end_reason": _text(req, "end_reason"),
        "carer_id": carer,
        "local_authority": _text(req, "local_authority"),
    }
    old: dict[str, Any] = {
        "start_date": p.start_date,
        "end_date": p.end_date,
        "placement_type": p.placement_type,
        "end_reason": p.end_reason,
        "carer_id": p.carer_id,
        "local_authority": p.local_authority,
    }
    changes = {k: v for k, v in new.items() if v != old[k]}
    if not changes:
        raise ValidationError(
            Problem("form", "start_date", None, "WEB-003", "at least one field changed")
        )
    return changes


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
    if req.request.method == "GET":
        return render(req, template, form=FormState.empty(), **ctx)

    def action() -> str:
        c = Collector()
        on = c.date("event_date", req.form.get("event_date"))
        proceedings = _optional_int(c, "proceedings_id", req.form.get("proceedings_id"))
        c.raise_if_any()
        assert on is not None
        legal.record_event(
            req.db,
            req.actor,
            child,
            req.form.get("event_type", ""),
            on,
            proceedings,
            _text(req, "notes"),
        )
        return _child_url(child)

    return _submit(
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
    if req.request.method == "GET":
        return render(req, template, form=FormState.empty(), **ctx)

    def action() -> str:
        c = Collector()
        on = c.date("started_on", req.form.get("started_on"))
        c.raise_if_any()
        assert on is not None
        legal.open_proceedings(
            req.db, req.actor, child, req.form.get("kind", ""), on, _text(req, "court_or_panel")
        )
        return _child_url(child)

    return _submit(
        req,
        template,
        ctx,
        action,
        "Proceedings recorded.",
        known=("kind", "started_on", "court_or_panel"),
    )


# --------------------------------------------------------------------------- assessments


def _assessment_context(req: WebRequest, plan: assessment_entry.EntryPlan) -> dict[str, Any]:
    entry: InstrumentForm | None = None
    if plan.no_form is None:
        entry = instrument_form(plan.instrument, plan.form)
    respondents = [(r, choices.RESPONDENT_LABELS.get(r, r)) for r in plan.respondents]
    return {"child": plan.child, "plan": plan, "entry": entry, "respondents": respondents}


@view(capability=C.WRITE_ASSESSMENTS, methods=("GET", "POST"))
def assessment_new(req: WebRequest) -> Response:
    child = req.params["child"]
    source = req.form if req.request.method == "POST" else req.query
    instrument = (source.get("instrument") or "").strip().lower()
    visit = (source.get("visit") or "").strip()
    if not instrument or not visit:
        return _assessment_chooser(req, child, instrument, visit)
    template = "forms/assessment_new.html"
    if req.request.method == "GET":
        c = Collector()
        on = c.date("on", req.query.get("on")) if req.query.get("on") else None
        plan = assessment_entry.entry_plan(req.db, req.actor, child, instrument, visit, on)
        ctx = _assessment_context(req, plan)
        defaults = {
            "instrument": plan.instrument,
            "visit": plan.timepoint,
            "form": plan.form or "",
            "assessed_on": fmt_date(plan.on),
            "respondent": plan.default_respondent or "",
        }
        return render(req, template, form=FormState.empty(**defaults), **ctx)

    c = Collector()
    on = c.date("assessed_on", req.form.get("assessed_on"), required=True)
    shown = _text(req, "form")
    # the form the age on the typed date calls for (today's when the date is not valid)
    plan = assessment_entry.entry_plan(req.db, req.actor, child, instrument, visit, on)
    ctx = _assessment_context(req, plan)
    parsed = ParsedResponses({}, {})
    if ctx["entry"] is None and shown is not None:
        ctx["entry"] = instrument_form(plan.instrument, shown)  # keep what was typed
    try:
        if shown is not None:
            entry = instrument_form(plan.instrument, shown)
            try:
                parsed = parse_responses(entry, req.form)
            except ValidationError as exc:
                c.problems.extend(exc.problems)
        c.raise_if_any()
        assert on is not None
        saved = assessment_entry.enter_assessment(
            req.db,
            req.actor,
            child,
            plan.timepoint,
            plan.instrument,
            on,
            parsed.responses,
            req.form.get("respondent", ""),
            shown,
            parsed.missing_reasons,
        )
    except NoimError as exc:
        if not _refusable(exc):
            raise
        fields = {"form": "assessed_on", "timepoint": "visit"}
        known = ["assessed_on", "respondent"]
        if ctx["entry"] is not None:
            fields.update(ctx["entry"].service_fields())
            known += [n for i in ctx["entry"].items for n in (i.name, i.missing_name)]
        form = _failed(req, exc, fields, known)
        if plan.form is not None:
            form.values["form"] = plan.form
        return render(req, template, form=form, status=422, **ctx)
    return redirect(
        req,
        f"/children/{child}/assessments/{saved.id}",
        flash=f"{plan.instrument.upper()} saved; its scores are below.",
    )


def _assessment_chooser(req: WebRequest, child: str, instrument: str, visit: str) -> Response:
    """Pick the visit and instrument (a link from a visit gives both)."""
    from noim import instruments as ins

    scheduled = visits.list_visits(req.db, req.actor, child)
    return render(
        req,
        "forms/assessment_choose.html",
        form=FormState.empty(instrument=instrument, visit=visit),
        child=child,
        visits=[(v.timepoint, v.timepoint) for v in scheduled],
        instruments=[(code, ins.load(code).name) for code in ins.available() if code != "example"],
    )


@view(capability=C.READ_TRIAL_DATA)
def assessment_show(req: WebRequest) -> Response:
    child = req.params["child"]
    try:
        aid = int(req.params["id"])
    except ValueError:
        raise NotFound(f"no assessment {req.params['id']!r}") from None
    saved = assessments.get_assessment(req.db, req.actor, aid)
    if saved.child != child.strip().upper():
        raise NotFound(f"no assessment {aid} of child {child}")
    entry = instrument_form(saved.instrument, saved.form)
    visit = next(
        (
            v
            for v in visits.list_visits(req.db, req.actor, saved.child)
            if v.timepoint == saved.timepoint
        ),
        None,
    )
    return render(
        req,
        "forms/assessment_show.html",
        child=saved.child,
        saved=saved,
        entry=entry,
        visit=visit,
        respondent=choices.RESPONDENT_LABELS.get(saved.respondent, saved.respondent),
    )


# --------------------------------------------------------------------------- visits


_VISIT_ACTIONS = {
    "complete": "Visit recorded as complete.",
    "missed": "Visit recorded as missed.",
    "not-required": "Visit recorded as not required.",
}


@view(capability=C.WRITE_ASSESSMENTS, methods=("GET", "POST"))
def visit_action(req: WebRequest) -> Response:
    child, tp, act = req.params["child"], req.params["id"], req.params["action"]
    if act not in _VISIT_ACTIONS:
        raise NotFound(f"no visit action {act!r}")
    visit = next(
        (v for v in visits.list_visits(req.db, req.actor, child) if v.timepoint == tp), None
    )
    if visit is None:
        raise NotFound(f"no visit {tp!r} of child {child}")
    ctx = {"child": child, "visit": visit, "act": act}
    template = "forms/visit.html"
    if req.request.method == "GET":
        return render(req, template, form=FormState.empty(), **ctx)

    def action() -> str:
        if act == "complete":
            c = Collector()
            on = c.date("completed_on", req.form.get("completed_on"))
            c.raise_if_any()
            assert on is not None
            visits.complete_visit(req.db, req.actor, child, tp, on)
        elif act == "missed":
            visits.record_missed(req.db, req.actor, child, tp, req.form.get("reason", ""))
        else:
            visits.record_not_required(req.db, req.actor, child, tp, req.form.get("reason", ""))
        return _child_url(child)

    return _submit(
        req,
        template,
        ctx,
        action,
        _VISIT_ACTIONS[act],
        {"status": "completed_on" if act == "complete" else "reason"},
        ("completed_on", "reason"),
    )


# --------------------------------------------------------------------------- safety


@view(capability=C.WRITE_TRIAL_DATA, methods=("GET", "POST"))
def sae_new(req: WebRequest) -> Response:
    child = req.params["child"]
    visits.list_visits(req.db, req.actor, child)  # the child exists and is at your site
    ctx = {
        "child": child,
        "categories": choices.SAE_CATEGORIES,
        "relatedness": choices.SAE_RELATEDNESS,
        "outcomes": choices.SAE_OUTCOMES,
        "yes_no": choices.YES_NO,
    }
    template = "forms/sae.html"
    if req.request.method == "GET":
        return render(req, template, form=FormState.empty(), **ctx)

    def action() -> str:
        c = Collector()
        onset = c.date("onset_date", req.form.get("onset_date"))
        reported = c.date("reported_on", req.form.get("reported_on"))
        c.raise_if_any()
        assert onset is not None and reported is not None
        expected = {"yes": True, "no": False}.get(req.form.get("expected", ""))
        safety.add_sae(
            req.db,
            req.actor,
            child,
            onset,
            reported,
            req.form.get("category", ""),
            req.form.get("description", ""),
            _text(req, "relatedness"),
            expected,
            _text(req, "outcome"),
        )
        return _child_url(child)

    return _submit(
        req,
        template,
        ctx,
        action,
        "Serious adverse event recorded.",
        known=(
            "onset_date",
            "reported_on",
            "category",
            "description",
            "relatedness",
            "expected",
            "outcome",
        ),
    )


@view(capability=C.WRITE_TRIAL_DATA, methods=("GET", "POST"))
def deviation_new(req: WebRequest) -> Response:
    child = req.params["child"]
    family = _family_of(child)
    visits.list_visits(req.db, req.actor, child)  # the child exists and is at your site
    ctx = {"child": child, "family": family, "severities": choices.DEVIATION_SEVERITIES}
    template = "forms/deviation.html"
    if req.request.method == "GET":
        return render(req, template, form=FormState.empty(), **ctx)

    def action() -> str:
        c = Collector()
        on = c.date("occurred_on", req.form.get("occurred_on"))
        c.raise_if_any()
        assert on is not None
        safety.add_deviation(
            req.db,
            req.actor,
            family,
            on,
            req.form.get("category", ""),
            req.form.get("severity", ""),
            req.form.get("description", ""),
            child,
        )
        return _child_url(child)

    return _submit(
        req,
        template,
        ctx,
        action,
        "Protocol deviation recorded.",
        known=("occurred_on", "category", "severity", "description"),
    )


@view(capability=C.WRITE_TRIAL_DATA, methods=("GET", "POST"))
def withdraw(req: WebRequest) -> Response:
    child = req.params["child"]
    visits.list_visits(req.db, req.actor, child)  # the child exists and is at your site
    ctx = {
        "child": child,
        "levels": choices.WITHDRAWAL_LEVELS,
        "requesters": choices.WITHDRAWAL_REQUESTERS,
    }
    template = "forms/withdraw.html"
    if req.request.method == "GET":
        return render(req, template, form=FormState.empty(), **ctx)

    def action() -> str:
        c = Collector()
        on = c.date("withdrawn_on", req.form.get("withdrawn_on"))
        c.raise_if_any()
        assert on is not None
        consent.record_withdrawal(
            req.db,
            req.actor,
            child,
            on,
            req.form.get("level", ""),
            req.form.get("requested_by", ""),
            req.form.get("reason", ""),
        )
        return _child_url(child)

    return _submit(
        req,
        template,
        ctx,
        action,
        "Withdrawal recorded.",
        known=("withdrawn_on", "level", "requested_by", "reason"),
    )


@view(capability=C.WRITE_TRIAL_DATA, methods=("GET", "POST"))
def lost(req: WebRequest) -> Response:
    child = req.params["child"]
    visits.list_visits(req.db, req.actor, child)  # the child exists and is at your site
    ctx = {"child": child}
    template = "forms/lost.html"
    if req.request.method == "GET":
        return render(req, template, form=FormState.empty(), **ctx)

    def action() -> str:
        c = Collector()
        declared = c.date("declared_on", req.form.get("declared_on"))
        last = (
            c.date("last_contact_on", req.form.get("last_contact_on"))
            if _text(req, "last_contact_on")
            else None
        )
        c.raise_if_any()
        assert declared is not None
        safety.declare_lost(req.db, req.actor, child, declared, req.form.get("reason", ""), last)
        return _child_url(child)

    return _submit(
        req,
        template,
        ctx,
        action,
        "Loss to follow-up recorded.",
        known=("declared_on", "last_contact_on", "reason"),
    )


# --------------------------------------------------------------------------- economics


@view(capability=C.WRITE_ASSESSMENTS, methods=("GET", "POST"))
def service_use_new(req: WebRequest) -> Response:
    child = req.params["child"]
    visits.list_visits(req.db, req.actor, child)  # the child exists and is at your site
    costs = economics.recordable_unit_costs(req.db, req.actor)
    ctx = {
        "child": child,
        "unit_costs": [(u.code, f"{u.service} (per {u.unit})") for u in costs],
    }
    template = "forms/service_use.html"
    if req.request.method == "GET":
        return render(req, template, form=FormState.empty(), **ctx)

    def action() -> str:
        c = Collector()
        start = c.date("period_start", req.form.get("period_start"))
        end = c.date("period_end", req.form.get("period_end"))
        quantity = _decimal(c, "quantity", req.form.get("quantity"), "a number of units")
        c.raise_if_any()
        assert start is not None and end is not None and quantity is not None
        economics.add_service_use(
            req.db,
            req.actor,
            child,
            req.form.get("unit_cost", ""),
            start,
            end,
            quantity,
            _text(req, "source"),
        )
        return _child_url(child)

    return _submit(
        req,
        template,
        ctx,
        action,
        "Service use recorded.",
        known=("unit_cost", "period_start", "period_end", "quantity", "source"),
    )


# --------------------------------------------------------------------------- intervention


@view(capability=C.SEE_ARM, methods=("GET", "POST"))
def intervention_receipt(req: WebRequest) -> Response:
    """Receipt of the allocated intervention: for roles that see the arm only (it reveals it)."""
    family = req.params["family"]
    current = intervention.get_receipt(req.db, req.actor, family)
    ctx: dict[str, Any] = {
        "family": current.family,
        "receipt": current,
        "yes_no": choices.YES_NO,
        "reasons": choices.NOT_RECEIVED_REASONS,
    }
    template = "forms/intervention.html"
    if req.request.method == "GET":
        defaults: dict[str, str] = {}
        if current.current is not None:
            r = current.current
            defaults = {
                "received": "yes" if r.received else "no",
                "started_on": fmt_date(r.started_on) if r.started_on else "",
                "not_received_reason": r.reason or "",
                "details": r.details or "",
            }
        return render(req, template, form=FormState.empty(**defaults), **ctx)

    def action() -> str:
        c = Collector()
        received_text = req.form.get("received", "")
        received = c.choice("received", received_text, ("yes", "no"))
        started = (
            c.date("started_on", req.form.get("started_on")) if _text(req, "started_on") else None
        )
        c.raise_if_any()
        correcting = current.current is not None
        intervention.record_receipt(
            req.db,
            req.actor,
            current.family,
            received=received == "yes",
            started_on=started,
            reason=_text(req, "not_received_reason"),
            details=_text(req, "details"),
            correct=req.form.get("reason", "") if correcting else None,
        )
        return f"/families/{current.family}"

    return _submit(
        req,
        template,
        ctx,
        action,
        "Intervention receipt recorded.",
        {"reason": "not_received_reason", "correct": "reason"},
        ("received", "started_on", "not_received_reason", "details", "reason"),
    )


routes = [
    Route("/children/{child}/placements/new", placement_new, methods=["GET", "POST"]),
    Route("/children/{child}/placements/{id}/{action}", placement_action, methods=["GET", "POST"]),
    Route("/children/{child}/legal/new", legal_event_new, methods=["GET", "POST"]),
    Route(
        "/children/{child}/legal/proceedings/new", legal_proceedings_new, methods=["GET", "POST"]
    ),
    Route("/children/{child}/assessments/new", assessment_new, methods=["GET", "POST"]),
    Route("/children/{child}/assessments/{id}", assessment_show, methods=["GET"]),
    Route("/children/{child}/visits/{id}/{action}", visit_action, methods=["GET", "POST"]),
    Route("/children/{child}/sae/new", sae_new, methods=["GET", "POST"]),
    Route("/children/{child}/deviation/new", deviation_new, methods=["GET", "POST"]),
    Route("/children/{child}/withdraw", withdraw, methods=["GET", "POST"]),
    Route("/children/{child}/lost", lost, methods=["GET", "POST"]),
    Route("/children/{child}/service-use/new", service_use_new, methods=["GET", "POST"]),
    Route("/families/{family}/intervention", intervention_receipt, methods=["GET", "POST"]),
]
