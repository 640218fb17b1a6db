"""The family and child record pages and each record's audit history.

Thin: one service call per page (``noim.services.record_view``), which applies site scope,
blinding and who may read identities; the page only decides which links to offer the user
(the recording forms for those who may write, "raise a query" for the data manager).
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.responses import Response
from starlette.routing import Route

from noim.domain import trial_ids
from noim.domain.exceptions import ValidationError
from noim.domain.roles import Actor, Capability
from noim.services import families, record_view
from noim.web.pages import WebRequest, error_page, render, view

C = Capability


@dataclass(frozen=True)
class May:
    """What the page offers the user (the services check again when they act)."""

    write: bool
    assess: bool
    randomise: bool
    see_arm: bool
    raise_queries: bool
    identities: bool

    @classmethod
    def of(cls, actor: Actor) -> May:
        return cls(
            write=actor.can(C.WRITE_TRIAL_DATA),
            assess=actor.can(C.WRITE_ASSESSMENTS),
            randomise=actor.can(C.RANDOMISE),
            see_arm=actor.can(C.SEE_ARM),
            # the data manager (and administrators): queries are raised across sites
            raise_queries=actor.can(C.MANAGE_QUERIES) and actor.all_sites,
            identities=actor.can(C.READ_IDENTIFIABLE),
        )


def _bad_id(req: WebRequest, exc: ValidationError) -> Response:
    """A malformed trial ID in the address: no such page."""
    message = "; ".join(f"{p.value!r}: expected {p.expected}" for p in exc.problems)
    return error_page(req.request, 404, "Not found", f"No such record ({message}).", req.actor)


FAMILIES_PAGE = 50


@view(capability=C.READ_TRIAL_DATA)
def families_page(req: WebRequest) -> Response:
    """The families the user may see (their sites), found by the start of a trial ID."""
    q = req.query.get("q", "").strip()[:32]
    page = max(1, int(req.query["page"])) if req.query.get("page", "").isdigit() else 1
    total, rows = families.page_families(
        req.db, req.actor, search=q, limit=FAMILIES_PAGE, offset=(page - 1) * FAMILIES_PAGE
    )
    pages = max(1, -(-total // FAMILIES_PAGE))
    return render(req, "families.html", rows=rows, total=total, q=q, page=page, pages=pages)


@view(capability=C.READ_TRIAL_DATA)
def family_page(req: WebRequest) -> Response:
    try:
        family = record_view.family_view(req.db, req.actor, str(req.params["family"]))
    except ValidationError as exc:
        return _bad_id(req, exc)
    return render(req, "family.html", family=family, may=May.of(req.actor))


@view(capability=C.READ_TRIAL_DATA)
def child_page(req: WebRequest) -> Response:
    try:
        child = record_view.child_view(req.db, req.actor, str(req.params["child"]))
    except ValidationError as exc:
        return _bad_id(req, exc)
    return render(req, "child.html", child=child, may=May.of(req.actor))


def record_url(trial_id: str | None) -> str | None:
    """The page of a child or family trial ID."""
    if not trial_id:
        return None
    try:
        parsed = trial_ids.parse(trial_id)
    except ValueError:
        return None
    kind = "families" if parsed.child_number is None else "children"
    return f"/{kind}/{trial_id}"


@view(capability=C.READ_TRIAL_DATA)
def history_page(req: WebRequest) -> Response:
    table, key = str(req.params["table"]), str(req.params["id"])
    history = record_view.record_history(req.db, req.actor, table, key)
    return render(
        req,
        "history.html",
        history=history,
        back=record_url(history.trial_id),
        may=May.of(req.actor),
    )


routes = [
    Route("/families", families_page, methods=["GET"]),
    Route("/families/{family}", family_page, methods=["GET"]),
    Route("/children/{child}", child_page, methods=["GET"]),
    Route("/history/{table}/{id}", history_page, methods=["GET"]),
]
