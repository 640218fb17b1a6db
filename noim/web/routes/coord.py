"""Coordinators' pages: the screening log, registering a family, eligibility, consent and
randomisation.

Each form calls ONE service (``screening.add_entry``, ``enrolment.register_with_children``,
``consent.decide_eligibility``, ``consent.record_consent``, ``randomisation.randomise``);
the pages only parse text into dates, numbers and choices.  Site scope, the rules and
blinding are the services'.  The eligibility and consent pages hold one small form per
child (one service call each); the registration form holds rows for up to six children,
registered with the family in one unit of work.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from noim.domain.codes import CONSENTER_TYPES, SEXES
from noim.domain.exceptions import NoimError, NotFound, Problem, ReasonRequired, ValidationError
from noim.domain.roles import Capability
from noim.services import consent, randomisation, screening, voiding
from noim.services.enrolment import (
    ChildStatus,
    EnrolmentStatus,
    NewChild,
    child_record,
    enrolment_status,
    register_with_children,
    site_choices,
)
from noim.web.form_pages import form_page, url_id
from noim.web.forms import Collector, FormState
from noim.web.pages import WebRequest, redirect, render, view
from noim.web.routes.home import gate_text

C = Capability
#: child rows of the registration form
CHILD_ROWS = 6
#: screening log rows per page
PAGE_SIZE = 100
#: the screening log's status filter: value -> label
SCREENING_FILTERS = {
    "": "All entries",
    "to_enrol": "Eligible, not yet registered",
    "enrolled": "Registered",
    "ineligible": "Ineligible",
    "declined": "Declined",
    "voided": "Voided",
}
YES_NO = [("yes", "Yes"), ("no", "No")]


def _yes_no(c: Collector, name: str, text: str | None, *, required: bool = False) -> bool | None:
    value = c.choice(name, text, ["yes", "no"], required=required)
    return None if value is None else value == "yes"


def _failed(
    values: Mapping[str, str], exc: NoimError, known: Sequence[str], fields: Mapping[str, str]
) -> FormState:
    return FormState.failed(values, exc, fields=fields, known=list(known))


# --------------------------------------------------------------------------- screening


@view(C.READ_TRIAL_DATA)
def screening_log(req: WebRequest) -> Response:
    sites = site_choices(req.db, req.actor)
    site = req.query.get("site") or None
    if site is not None and site not in {x.code for x in sites}:
        site = None
    status = req.query.get("status", "")
    if status not in SCREENING_FILTERS:
        status = ""
    page = int(req.query["page"]) if req.query.get("page", "").isdigit() else 1
    page = max(1, page)
    report = screening.list_entries(
        req.db,
        req.actor,
        site,
        status=status or None,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
        newest_first=True,
    )
    pages = max(1, -(-report.matching // PAGE_SIZE))
    return render(
        req,
        "screening.html",
        report=report,
        entries=report.entries,
        matching=report.matching,
        page=page,
        pages=pages,
        sites=sites,
        site=site or "",
        chosen=status,
        filters=SCREENING_FILTERS,
        can_write=req.actor.can(C.WRITE_TRIAL_DATA),
    )


@view(C.WRITE_TRIAL_DATA, methods=("GET", "POST"))
def screening_void(req: WebRequest) -> Response:
    """Void a screening entry recorded in error, with a reason (``voiding.void_record``)."""
    entry = screening.get_entry(req.db, req.actor, url_id(req, "screening entry"))
    ctx = {"entry": entry, "back": ("/screening", "Screening log")}
    done = f"Screening entry {entry.id} " + (
        "was already void: nothing changed." if entry.voided else "voided."
    )

    def action() -> str:
        reason = req.form.get("reason", "")
        voiding.void_record(req.db, req.actor, "screening_log", entry.id, reason)
        return "/screening"

    return form_page(req, "forms/screening_void.html", ctx, action, done, known=("reason",))


SCREENING_FIELDS = (
    "site",
    "screened_on",
    "n_children",
    "eligible",
    "ineligible_reason",
    "declined",
    "declined_reason",
    "local_authority",
    "reference",
)


@view(C.WRITE_TRIAL_DATA, methods=("GET", "POST"))
def screening_new(req: WebRequest) -> Response:
    sites = site_choices(req.db, req.actor)
    if req.method == "GET":
        form = FormState.empty(site=sites[0].code if len(sites) == 1 else "", n_children="1")
        return render(req, "screening_new.html", form=form, sites=sites)
    f = req.form
    c = Collector()
    site = c.choice("site", f.get("site"), [x.code for x in sites], required=True)
    screened_on = c.date("screened_on", f.get("screened_on"), required=True)
    n_children = c.int("n_children", f.get("n_children"), required=True)
    eligible = _yes_no(c, "eligible", f.get("eligible"), required=True)
    declined = f.get("declined") == "yes"
    try:
        c.raise_if_any()
        assert site is not None and screened_on is not None and n_children is not None
        entry = screening.add_entry(
            req.db,
            req.actor,
            site,
            screened_on,
            n_children,
            bool(eligible),
            ineligible_reason=f.get("ineligible_reason", "").strip() or None,
            declined=declined,
            declined_reason=f.get("declined_reason", "").strip() or None,
            local_authority=f.get("local_authority", "").strip() or None,
            reference=f.get("reference", "").strip() or None,
        )
    except ValidationError as exc:
        form = _failed(f, exc, SCREENING_FIELDS, {})
        return render(req, "screening_new.html", form=form, sites=sites, status=422)
    to_enrol = entry.eligible and not entry.declined
    message = f"Screening entry {entry.id} saved."
    if to_enrol:
        message += " Register the family now."
        return redirect(req, f"/families/new?entry={entry.id}", flash=message)
    return redirect(req, f"/screening?site={entry.site}", flash=message)


# --------------------------------------------------------------------------- registering


def _child_fields(i: int) -> list[str]:
    return [f"c{i}_{name}" for name in ("date_of_birth", "sex", "entered_care_on", "legal_route")]


FAMILY_FIELDS = (
    "site",
    "local_authority",
    "in_care_proceedings",
    "screening_entry",
    *(name for i in range(1, CHILD_ROWS + 1) for name in _child_fields(i)),
)


def _renamed(exc: ValidationError, rows: Sequence[int]) -> ValidationError:
    """The service's problems of child N (``child_record(N)``) named by that child's form row."""
    out = []
    for p in exc.problems:
        for number, row in enumerate(rows, 1):
            if p.record == child_record(number):
                p = Problem(p.record, f"c{row}_{p.field}", p.value, p.rule, p.expected)
        if p.record.startswith("screening entry"):
            p = Problem(p.record, "screening_entry", p.value, p.rule, p.expected)
        out.append(p)
    return ValidationError(out)


def _family_page(req: WebRequest, form: FormState, sites: Any, status: int = 200) -> Response:
    return render(
        req,
        "family_new.html",
        form=form,
        sites=sites,
        rows=range(1, CHILD_ROWS + 1),
        sexes=[(x, x) for x in SEXES],
        status=status,
    )


@view(C.WRITE_TRIAL_DATA, methods=("GET", "POST"))
def family_new(req: WebRequest) -> Response:
    sites = site_choices(req.db, req.actor)
    if req.method == "GET":
        form = FormState.empty(
            site=sites[0].code if len(sites) == 1 else "",
            screening_entry=req.query.get("entry", ""),
        )
        return _family_page(req, form, sites)
    f = req.form
    c = Collector()
    site = c.choice("site", f.get("site"), [x.code for x in sites], required=True)
    in_proceedings = _yes_no(c, "in_care_proceedings", f.get("in_care_proceedings"))
    entry = c.int("screening_entry", f.get("screening_entry"))
    rows: list[int] = []
    children: list[NewChild] = []
    for i in range(1, CHILD_ROWS + 1):
        names = _child_fields(i)
        if not any(f.get(n, "").strip() for n in names):
            continue
        rows.append(i)
        born = c.date(names[0], f.get(names[0]), required=True)
        sex = c.choice(names[1], f.get(names[1]), SEXES, required=True)
        entered = c.date(names[2], f.get(names[2]), required=True)
        route = f.get(names[3], "").strip() or None
        if born is not None and sex is not None and entered is not None:
            children.append(NewChild(born, sex, entered, route))
    try:
        c.raise_if_any()
        assert site is not None
        family = register_with_children(
            req.db,
            req.actor,
            site,
            children,
            local_authority=f.get("local_authority", "").strip() or None,
            in_care_proceedings=in_proceedings,
            screening_entry=entry,
        )
    except ValidationError as exc:
        fields = {"children": "c1_date_of_birth"} if not rows else {}
        form = _failed(f, _renamed(exc, rows), FAMILY_FIELDS, fields)
        return _family_page(req, form, sites, status=422)
    kids = ", ".join(ch.trial_id for ch in family.children)
    return redirect(
        req,
        f"/families/{family.trial_id}/eligibility",
        flash=f"Family {family.trial_id} registered with {len(family.children)} "
        f"{'child' if len(family.children) == 1 else 'children'} ({kids}). "
        "Record each child's eligibility next.",
    )


# --------------------------------------------------------------------------- eligibility


def _status(req: WebRequest) -> EnrolmentStatus:
    """The family of the URL; a trial ID that is not one is a page that does not exist."""
    try:
        return enrolment_status(req.db, req.actor, req.params["family"])
    except ValidationError as exc:
        raise NotFound(str(exc)) from None


def _child_number(status: EnrolmentStatus, text: str | None) -> int | None:
    numbers = {str(ch.child_number): ch.child_number for ch in status.children}
    return numbers.get((text or "").strip())


def _per_child_render(
    req: WebRequest,
    template: str,
    status: EnrolmentStatus,
    forms: dict[int, FormState] | None,
    code: int,
    **extra: Any,
) -> Response:
    """A page of one form per child (eligibility, consent): ``forms`` holds the one that
    failed; every other child's form is empty."""
    forms = forms or {}
    for ch in status.children:
        forms.setdefault(ch.child_number, FormState.empty())
    return render(
        req,
        template,
        can_randomise=req.actor.can(C.RANDOMISE),
        st=status,
        forms=forms,
        gate_text=gate_text,
        status=code,
        **extra,
    )


def _per_child_form(
    req: WebRequest,
    page: Callable[..., Response],
    post: Callable[[WebRequest, EnrolmentStatus, int, ChildStatus], Response],
) -> Response:
    """GET: ``page``; POST: ``post`` for the child the form names (``child``: its number),
    or ``page`` again with status 422 when it names none of the family's children."""
    status = _status(req)
    if req.method == "GET":
        return page(req, status)
    number = _child_number(status, req.form.get("child"))
    if number is None:
        return page(req, status, code=422)
    child = next(ch for ch in status.children if ch.child_number == number)
    return post(req, status, number, child)


def _eligibility_page(
    req: WebRequest,
    status: EnrolmentStatus,
    forms: dict[int, FormState] | None = None,
    code: int = 200,
) -> Response:
    return _per_child_render(req, "eligibility.html", status, forms, code, yes_no=YES_NO)


@view(C.WRITE_TRIAL_DATA, methods=("GET", "POST"))
def eligibility(req: WebRequest) -> Response:
    return _per_child_form(req, _eligibility_page, _decide_eligibility)


def _decide_eligibility(
    req: WebRequest, status: EnrolmentStatus, number: int, child: ChildStatus
) -> Response:
    n = f"c{number}_"
    f = req.form
    c = Collector()
    eligible = _yes_no(c, n + "eligible", f.get(n + "eligible"), required=True)
    decided_on = c.date(n + "decided_on", f.get(n + "decided_on"), required=True)
    reason = f.get(n + "reason", "").strip() or None
    try:
        c.raise_if_any()
        assert eligible is not None and decided_on is not None
        result = consent.decide_eligibility(
            req.db, req.actor, child.trial_id, eligible, decided_on, reason
        )
    except ValidationError as exc:
        fields = {"eligibility_decided_on": n + "decided_on", "ineligibility_reason": n + "reason"}
        known = [n + "eligible", n + "decided_on", n + "reason"]
        form = FormState.failed(f, exc, fields=fields, known=known)
        return _eligibility_page(req, status, {number: form}, code=422)
    except ReasonRequired:  # found ineligible without a reason: say so beside the reason
        form = FormState.of(f)
        form.errors[n + "reason"] = ["Expected a reason the child is ineligible. [rule ELG-002]"]
        return _eligibility_page(req, status, {number: form}, code=422)
    return redirect(
        req,
        f"/families/{status.family}/eligibility",
        flash=f"Child {child.trial_id}: {result}.",
    )


# --------------------------------------------------------------------------- consent


def _consent_page(
    req: WebRequest,
    status: EnrolmentStatus,
    forms: dict[int, FormState] | None = None,
    code: int = 200,
) -> Response:
    choices = [(f"{p.kind}:{p.id}", p.label) for p in status.consenters]
    choices += [
        (t, t.replace("_", " ")) for t in CONSENTER_TYPES if t not in ("birth_parent", "carer")
    ]
    return _per_child_render(req, "consent.html", status, forms, code, consenters=choices)


def _consenter(text: str | None) -> tuple[str | None, int | None]:
    """``birth_parent:12`` -> ("birth_parent", 12); ``local_authority`` -> (it, None)."""
    value = (text or "").strip()
    if not value:
        return None, None
    kind, _, person = value.partition(":")
    return kind, int(person) if person.isdigit() else None


@view(C.WRITE_TRIAL_DATA, methods=("GET", "POST"))
def consent_page(req: WebRequest) -> Response:
    return _per_child_form(req, _consent_page, _record_consent)


def _record_consent(
    req: WebRequest, status: EnrolmentStatus, number: int, child: ChildStatus
) -> Response:
    n = f"c{number}_"
    f = req.form
    c = Collector()
    offered = [f"{p.kind}:{p.id}" for p in status.consenters] + [
        t for t in CONSENTER_TYPES if t not in ("birth_parent", "carer")
    ]
    chosen = c.choice(n + "consenter", f.get(n + "consenter"), offered, required=True)
    consented_on = c.date(n + "consented_on", f.get(n + "consented_on"), required=True)
    version = c.text(n + "form_version", f.get(n + "form_version"), "the consent form's version")
    kind, person = _consenter(chosen)
    try:
        c.raise_if_any()
        assert kind is not None and consented_on is not None
        consent.record_consent(
            req.db, req.actor, child.trial_id, kind, version, consented_on, person
        )
    except ValidationError as exc:
        fields = {
            "consenter_type": n + "consenter",
            "person_id": n + "consenter",
            "form_version": n + "form_version",
            "consented_on": n + "consented_on",
        }
        known = [n + "consenter", n + "consented_on", n + "form_version"]
        form = FormState.failed(f, exc, fields=fields, known=known)
        return _consent_page(req, status, {number: form}, code=422)
    return redirect(
        req,
        f"/families/{status.family}/consent",
        flash=f"Consent for child {child.trial_id} recorded.",
    )


# --------------------------------------------------------------------------- randomising


def _randomise_page(
    req: WebRequest, status: EnrolmentStatus, form: FormState | None = None, code: int = 200
) -> Response:
    return render(
        req,
        "randomise.html",
        can_randomise=req.actor.can(C.RANDOMISE),
        st=status,
        form=form or FormState.empty(),
        gate_text=gate_text,
        sees_arm=req.actor.can(C.SEE_ARM),
        status=code,
    )


@view(C.RANDOMISE, methods=("GET", "POST"))
def randomise(req: WebRequest) -> Response:
    status = _status(req)
    if req.method == "GET":
        return _randomise_page(req, status)
    f = req.form
    c = Collector()
    declared: dict[str, str] = {}
    for factor in status.declared:
        level = c.choice(
            f"factor_{factor.code}",
            f.get(f"factor_{factor.code}"),
            [lv.code for lv in factor.levels],
            required=True,
        )
        if level is not None:
            declared[factor.code] = level
    if f.get("confirm") != "yes":
        c.problems.append(
            Problem(
                "form",
                "confirm",
                "",
                "WEB-004",
                f"a tick to confirm that family {status.family} is to be randomised now",
            )
        )
    known = ["confirm", *(f"factor_{x.code}" for x in status.declared)]
    try:
        c.raise_if_any()
        allocation = randomisation.randomise(req.db, req.actor, status.family, declared)
    except ValidationError as exc:
        form = FormState.failed(f, exc, known=known)
        again = _status(req)
        return _randomise_page(req, again, form, code=422)
    except NoimError as exc:  # already randomised, randomisation not set up
        form = FormState.failed(f, exc, known=known)
        again = _status(req)
        return _randomise_page(req, again, form, code=409)
    return redirect(
        req,
        f"/families/{allocation.family}/randomise",
        flash=f"Family {allocation.family} is randomised.",
    )


routes = [
    Route("/screening", screening_log, methods=["GET"]),
    Route("/screening/new", screening_new, methods=["GET", "POST"]),
    Route("/screening/{id}/void", screening_void, methods=["GET", "POST"]),
    Route("/families/new", family_new, methods=["GET", "POST"]),
    Route("/families/{family}/eligibility", eligibility, methods=["GET", "POST"]),
    Route("/families/{family}/consent", consent_page, methods=["GET", "POST"]),
    Route("/families/{family}/randomise", randomise, methods=["GET", "POST"]),
]
