"""The recording forms of safety (SAEs, deviations), withdrawal and loss to follow-up,
service use, and receipt of the allocated intervention (roles that see the arm only).

See ``noim.web.routes.forms`` for how every form page works.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from noim.domain.exceptions import NotFound
from noim.domain.roles import Capability
from noim.services import consent, economics, intervention, safety, visits
from noim.web import choices
from noim.web.form_pages import (
    child_url,
    family_of,
    form_page,
    one_date,
    parse_decimal,
    site_child,
    submit,
    text_of,
    url_id,
)
from noim.web.forms import Collector, FormState, fmt_date
from noim.web.pages import WebRequest, render, view

C = Capability


# --------------------------------------------------------------------------- safety


@view(capability=C.WRITE_TRIAL_DATA, methods=("GET", "POST"))
def sae_new(req: WebRequest) -> Response:
    child = site_child(req)
    ctx = {
        "child": child,
        "categories": choices.SAE_CATEGORIES,
        "relatedness": choices.SAE_RELATEDNESS,
        "outcomes": choices.SAE_OUTCOMES,
        "yes_no": choices.YES_NO,
    }
    template = "forms/sae.html"

    def action() -> str:
        c = Collector()
        onset = c.date("onset_date", req.form.get("onset_date"), required=True)
        reported = c.date("reported_on", req.form.get("reported_on"), required=True)
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
            text_of(req, "relatedness"),
            expected,
            text_of(req, "outcome"),
        )
        return child_url(child)

    return form_page(
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


def _sae(req: WebRequest) -> safety.SaeView:
    """The child's SAE named in the URL (site scope by the service)."""
    child = req.params["child"].strip().upper()
    sae_id = url_id(req, "SAE")
    visits.list_visits(req.db, req.actor, child)  # the child exists and is at your site
    for e in safety.list_saes(req.db, req.actor):
        if e.id == sae_id and e.child == child:
            return e
    raise NotFound(f"no SAE {sae_id} of child {child}")


def _sae_context(e: safety.SaeView) -> dict[str, Any]:
    return {
        "child": e.child,
        "sae": e,
        "relatedness": choices.SAE_RELATEDNESS,
        "outcomes": choices.SAE_OUTCOMES,
        "yes_no": choices.YES_NO,
        "category_label": dict(choices.SAE_CATEGORIES).get(e.category, e.category),
    }


@view(capability=C.WRITE_TRIAL_DATA, methods=("GET", "POST"))
def sae_follow_up(req: WebRequest) -> Response:
    """The SAE's follow-up: relatedness, expectedness and outcome (``update_sae``)."""
    e = _sae(req)
    ctx = _sae_context(e)
    template = "forms/sae_follow_up.html"
    if req.method == "GET":
        return render(
            req,
            template,
            form=FormState.empty(
                relatedness=e.relatedness,
                expected=None if e.expected is None else ("yes" if e.expected else "no"),
                outcome=e.outcome,
            ),
            **ctx,
        )

    def action() -> str:
        changes: dict[str, Any] = {
            "relatedness": text_of(req, "relatedness"),
            "expected": {"yes": True, "no": False}.get(req.form.get("expected", "")),
            "outcome": text_of(req, "outcome"),
        }
        current = {"relatedness": e.relatedness, "expected": e.expected, "outcome": e.outcome}
        changes = {k: v for k, v in changes.items() if v != current[k]}
        safety.update_sae(req.db, req.actor, e.id, changes, text_of(req, "reason"))
        return f"/children/{e.child}/sae/{e.id}"

    return submit(
        req,
        template,
        ctx,
        action,
        "SAE follow-up saved.",
        known=("relatedness", "expected", "outcome", "reason"),
    )


@view(capability=C.WRITE_TRIAL_DATA, methods=("POST",))
def sae_complete(req: WebRequest) -> Response:
    """Mark the SAE report complete (``complete_sae``): its follow-up must be known."""
    e = _sae(req)
    ctx = _sae_context(e)
    form_values = {
        "relatedness": e.relatedness or "",
        "expected": "" if e.expected is None else ("yes" if e.expected else "no"),
        "outcome": e.outcome or "",
    }

    def action() -> str:
        safety.complete_sae(req.db, req.actor, e.id)
        return f"/children/{e.child}"

    req.form.update(form_values)  # the follow-up form shows the stored values again
    return submit(
        req,
        "forms/sae_follow_up.html",
        ctx,
        action,
        "SAE report marked complete.",
        known=("relatedness", "expected", "outcome"),
    )


@view(capability=C.WRITE_TRIAL_DATA, methods=("GET", "POST"))
def deviation_new(req: WebRequest) -> Response:
    child = req.params["child"]
    family = family_of(child)
    visits.list_visits(req.db, req.actor, child)  # the child exists and is at your site
    ctx = {"child": child, "family": family, "severities": choices.DEVIATION_SEVERITIES}
    template = "forms/deviation.html"

    def action() -> str:
        on = one_date(req, "occurred_on")
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
        return child_url(child)

    return form_page(
        req,
        template,
        ctx,
        action,
        "Protocol deviation recorded.",
        known=("occurred_on", "category", "severity", "description"),
    )


@view(capability=C.WRITE_TRIAL_DATA, methods=("GET", "POST"))
def withdraw(req: WebRequest) -> Response:
    child = site_child(req)
    ctx = {
        "child": child,
        "levels": choices.WITHDRAWAL_LEVELS,
        "requesters": choices.WITHDRAWAL_REQUESTERS,
    }
    template = "forms/withdraw.html"

    def action() -> str:
        on = one_date(req, "withdrawn_on")
        consent.record_withdrawal(
            req.db,
            req.actor,
            child,
            on,
            req.form.get("level", ""),
            req.form.get("requested_by", ""),
            req.form.get("reason", ""),
        )
        return child_url(child)

    return form_page(
        req,
        template,
        ctx,
        action,
        "Withdrawal recorded.",
        known=("withdrawn_on", "level", "requested_by", "reason"),
    )


@view(capability=C.WRITE_TRIAL_DATA, methods=("GET", "POST"))
def lost(req: WebRequest) -> Response:
    child = site_child(req)
    ctx = {"child": child}
    template = "forms/lost.html"

    def action() -> str:
        c = Collector()
        declared = c.date("declared_on", req.form.get("declared_on"), required=True)
        last = (
            c.date("last_contact_on", req.form.get("last_contact_on"))
            if text_of(req, "last_contact_on")
            else None
        )
        c.raise_if_any()
        assert declared is not None
        safety.declare_lost(req.db, req.actor, child, declared, req.form.get("reason", ""), last)
        return child_url(child)

    return form_page(
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
    child = site_child(req)
    costs = economics.recordable_unit_costs(req.db, req.actor)
    ctx = {
        "child": child,
        "unit_costs": [(u.code, f"{u.service} (per {u.unit})") for u in costs],
    }
    template = "forms/service_use.html"

    def action() -> str:
        c = Collector()
        start = c.date("period_start", req.form.get("period_start"), required=True)
        end = c.date("period_end", req.form.get("period_end"), required=True)
        quantity = parse_decimal(c, "quantity", req.form.get("quantity"), "a number of units")
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
            text_of(req, "source"),
        )
        return child_url(child)

    return form_page(
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
            c.date("started_on", req.form.get("started_on")) if text_of(req, "started_on") else None
        )
        c.raise_if_any()
        correcting = current.current is not None
        intervention.record_receipt(
            req.db,
            req.actor,
            current.family,
            received=received == "yes",
            started_on=started,
            reason=text_of(req, "not_received_reason"),
            details=text_of(req, "details"),
            correct=req.form.get("reason", "") if correcting else None,
        )
        return f"/families/{current.family}"

    return submit(
        req,
        template,
        ctx,
        action,
        "Intervention receipt recorded.",
        {"reason": "not_received_reason", "correct": "reason"},
        ("received", "started_on", "not_received_reason", "details", "reason"),
    )


routes = [
    Route("/children/{child}/sae/new", sae_new, methods=["GET", "POST"]),
    Route("/children/{child}/sae/{id}", sae_follow_up, methods=["GET", "POST"]),
    Route("/children/{child}/sae/{id}/complete", sae_complete, methods=["POST"]),
    Route("/children/{child}/deviation/new", deviation_new, methods=["GET", "POST"]),
    Route("/children/{child}/withdraw", withdraw, methods=["GET", "POST"]),
    Route("/children/{child}/lost", lost, methods=["GET", "POST"]),
    Route("/children/{child}/service-use/new", service_use_new, methods=["GET", "POST"]),
    Route("/families/{family}/intervention", intervention_receipt, methods=["GET", "POST"]),
]
