"""What every recording form page shares: the POST that parses, calls one service and
redirects, or shows the form again (status 422) with each problem beside its field."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.responses import Response

from noim.domain import trial_ids
from noim.domain.exceptions import (
    NoimError,
    NotFound,
    PermissionDenied,
    Problem,
    ReasonRequired,
    ValidationError,
)
from noim.services import visits
from noim.web.forms import Collector, FormState, fmt_date
from noim.web.pages import WebRequest, redirect, render


def child_url(child: str) -> str:
    return f"/children/{child}"


def failed(
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


def refusable(exc: NoimError) -> bool:
    """Errors the page shows on the form (not turned into 403 / 404 by ``view``)."""
    return not isinstance(exc, NotFound | PermissionDenied)


def submit(
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
        if not refusable(exc):
            raise
        form = failed(req, exc, fields, known)
        return render(req, template, form=form, status=422, **context)
    return redirect(req, url, flash=flash)


def form_page(
    req: WebRequest,
    template: str,
    context: dict[str, Any],
    action: Callable[[], str],
    flash: str,
    fields: Mapping[str, str] | None = None,
    known: Sequence[str] = (),
) -> Response:
    """A form page: the empty form on GET; on POST, ``submit`` (run ``action`` and redirect,
    or the form again with status 422)."""
    if req.request.method == "GET":
        return render(req, template, form=FormState.empty(), **context)
    return submit(req, template, context, action, flash, fields, known)


def text_of(req: WebRequest, name: str) -> str | None:
    value = (req.form.get(name) or "").strip()
    return value or None


def site_child(req: WebRequest) -> str:
    """The child named in the URL, read through a service first (it exists and is at your
    site: another site's child is refused before any form is shown)."""
    child: str = req.params["child"]
    visits.list_visits(req.db, req.actor, child)
    return child


def family_of(child: str) -> str:
    try:
        return trial_ids.parse(child).family_id
    except ValueError:
        raise NotFound(f"no child {child!r}") from None


def parse_decimal(c: Collector, name: str, text: str | None, what: str) -> Decimal | None:
    raw = (text or "").strip()
    if not raw:
        c.problems.append(Problem("form", name, raw, "WEB-002", what))
        return None
    try:
        return Decimal(raw)
    except InvalidOperation:
        c.problems.append(Problem("form", name, raw, "WEB-002", what))
        return None


def one_date(req: WebRequest, name: str) -> date:
    """The form's one date field ``name``, parsed (a ValidationError beside it otherwise)."""
    c = Collector()
    on = c.date(name, req.form.get(name), required=True)
    c.raise_if_any()
    assert on is not None
    return on


def optional_int(c: Collector, name: str, text: str | None) -> int | None:
    return c.int(name, text) if (text or "").strip() else None


def url_id(req: WebRequest, what: str) -> int:
    """The record id of the URL (``{id}``) as a number; NotFound ("no WHAT 'x'") otherwise."""
    try:
        return int(req.params["id"])
    except ValueError:
        raise NotFound(f"no {what} {req.params['id']!r}") from None


def corrections(
    req: WebRequest, stored: Mapping[str, Any], kinds: Mapping[str, str], first: str
) -> dict[str, Any]:
    """The fields of a correction form that differ from the ``stored`` record, each parsed
    by its kind (``kinds``: "date", "date!" for a required one, "int", "text" (stripped,
    blank is None) or "choice" (as sent)); every parsing problem at once, and a problem
    beside the field ``first`` when nothing differs (a correction changes something)."""
    c = Collector()
    new: dict[str, Any] = {}
    for name, kind in kinds.items():
        text = req.form.get(name)
        if kind in ("date", "date!"):
            new[name] = c.date(name, text, required=kind == "date!")
        elif kind == "int":
            new[name] = optional_int(c, name, text)
        elif kind == "text":
            new[name] = text_of(req, name)
        else:
            new[name] = text or ""
    c.raise_if_any()
    changes = {k: v for k, v in new.items() if v != stored[k]}
    if not changes:
        raise ValidationError(Problem("form", first, None, "WEB-003", "at least one field changed"))
    return changes


def as_text(values: Mapping[str, Any]) -> dict[str, str]:
    """A stored record's values as its correction form shows them (dates dd/mm/yyyy, None
    empty)."""
    return {
        k: fmt_date(v) if isinstance(v, date) else "" if v is None else str(v)
        for k, v in values.items()
    }
