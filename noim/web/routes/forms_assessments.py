"""Entering an assessment item by item, and the saved assessment with its scores.

The items come from the instrument's definition file (``noim.web.instrument_forms``); the
form (SDQ 2-4 or 4-17, the PedsQL module) follows from the child's age on the assessment
date as ``noim.services.assessment_entry`` decides.  Saving scores the assessment and
completes its visit (``record_assessment``); the page after shows the scores.
"""

from __future__ import annotations

import contextlib
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from noim import instruments
from noim.domain.exceptions import NoimError, NotFound, ValidationError
from noim.domain.roles import Capability
from noim.services import assessment_entry, assessments, visits
from noim.web import choices
from noim.web.form_pages import (
    failed,
    refusable,
    text_of,
    url_id,
)
from noim.web.forms import Collector, FormState, fmt_date
from noim.web.instrument_forms import (
    InstrumentForm,
    ParsedResponses,
    instrument_form,
    parse_responses,
)
from noim.web.pages import WebRequest, redirect, render, view

C = Capability


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
    shown = text_of(req, "form")
    # the form the age on the typed date calls for (today's when the date is not valid)
    plan = assessment_entry.entry_plan(req.db, req.actor, child, instrument, visit, on)
    ctx = _assessment_context(req, plan)
    parsed = ParsedResponses({}, {})
    if ctx["entry"] is None and shown is not None:
        # keep what was typed; a form the instrument has not is refused below (ASM-002)
        with contextlib.suppress(ValidationError):
            ctx["entry"] = instrument_form(plan.instrument, shown)
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
        if not refusable(exc):
            raise
        fields = {"form": "assessed_on", "timepoint": "visit"}
        known = ["assessed_on", "respondent"]
        if ctx["entry"] is not None:
            fields.update(ctx["entry"].service_fields())
            known += [n for i in ctx["entry"].items for n in (i.name, i.missing_name)]
        form = failed(req, exc, fields, known)
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
    available = [(code, ins.load(code).name) for code in ins.available() if code != "example"]
    expected: list[tuple[str, str]] = []
    plan = None
    if visit and not instrument and available:
        # a visit named by its id (the home page's and the status grid's links): its
        # timepoint is chosen, and the instruments it expects at the child's age are offered
        plan = assessment_entry.entry_plan(req.db, req.actor, child, available[0][0], visit)
        visit = plan.timepoint
        names = dict(available)
        expected = [(code, names.get(code, code)) for code in plan.expected]
    return render(
        req,
        "forms/assessment_choose.html",
        form=FormState.empty(instrument=instrument, visit=visit),
        child=child,
        visits=[(v.timepoint, v.timepoint) for v in scheduled],
        instruments=available,
        plan=plan,
        expected=expected,
    )


@view(capability=C.READ_TRIAL_DATA)
def assessment_show(req: WebRequest) -> Response:
    child = req.params["child"]
    aid = url_id(req, "assessment")
    saved = assessments.get_assessment(req.db, req.actor, aid)
    if saved.child != child.strip().upper():
        raise NotFound(f"no assessment {aid} of child {child}")
    entry = instrument_form(saved.instrument, saved.form)
    order = [s.code for s in instruments.load(saved.instrument).scales_for(saved.form)]
    scores = [(code, saved.scores[code]) for code in order if code in saved.scores]
    scores += [(code, v) for code, v in saved.scores.items() if code not in order]
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
        scores=scores,
        visit=visit,
        respondent=choices.RESPONDENT_LABELS.get(saved.respondent, saved.respondent),
        may_enter=req.actor.can(C.WRITE_ASSESSMENTS),
    )


routes = [
    Route("/children/{child}/assessments/new", assessment_new, methods=["GET", "POST"]),
    Route("/children/{child}/assessments/{id}", assessment_show, methods=["GET"]),
]
