"""Home: each role's next tasks, every one a click away.

Coordinators, researchers and administrators get the work queue of their sites
(``noim.services.workqueue.work_queue``): follow-ups due and overdue, open data queries,
families waiting for randomisation with what the gate still misses, SAEs with follow-up
outstanding; each row links straight to the form that does it (each instrument still to
enter at a visit, the query's answer, the gate's missing item or the randomisation, the
SAE's follow-up), one click from home, when the user may use it.  The data manager gets the
queries still needing work by age (``query_ages``) and the data-management pages; the
statisticians and the DMC the freezes and reports; every role only what it may open.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from noim.domain.exceptions import Problem
from noim.domain.roles import Capability, Role
from noim.services.workqueue import AGE_BANDS, WaitingFamily, query_ages, work_queue
from noim.web.pages import WebRequest, render, view

#: roles whose home is the work queue of their sites
QUEUE_ROLES = frozenset({Role.COORDINATOR, Role.RESEARCHER, Role.ADMINISTRATOR})

#: what a missing item of the randomisation gate asks for, by rule
GATE_TEXT = {
    "RND-001": "the family is voided",
    "RND-002": "the family must be in care proceedings at this site",
    "RND-003": "no child is registered",
    "RND-004": "eligibility not confirmed",
    "RND-005": "no consent recorded",
}


def gate_text(p: Problem) -> str:
    """A missing item of the gate as a short phrase ("child L-0001-01-7: no consent recorded")."""
    what = GATE_TEXT.get(p.rule, p.expected)
    return f"{p.record}: {what}" if p.record.startswith("child ") else what


def next_step(
    family: WaitingFamily, actor_can_randomise: bool, actor_can_write: bool = True
) -> tuple[str, str]:
    """(url, label) of the page that does a waiting family's next task (the form of the
    gate's first missing item, or the randomise form), among the pages the user may use;
    the family's page when no form does it (a missing child or care proceedings)."""
    base = f"/families/{family.family}"
    rules = {p.rule for p in family.missing}
    if not rules:
        if actor_can_randomise:
            return f"{base}/randomise", "Randomise"
        return base, "Open family"
    if not actor_can_write:
        return base, "Open family"
    if "RND-004" in rules:
        return f"{base}/eligibility", "Record eligibility"
    if "RND-005" in rules:
        return f"{base}/consent", "Record consent"
    return base, "Open family"


@view()
def home(req: WebRequest) -> Response:
    actor = req.actor
    context: dict[str, Any] = {"queue": None, "ages": None}
    if actor.role in QUEUE_ROLES and actor.can(Capability.READ_TRIAL_DATA):
        context["queue"] = work_queue(req.db, actor)
    elif actor.can(Capability.MANAGE_QUERIES) and actor.can(Capability.READ_TRIAL_DATA):
        context["ages"] = query_ages(req.db, actor)
    return render(
        req,
        "home.html",
        C=Capability,
        age_bands=[label for label, _days in AGE_BANDS],
        gate_text=gate_text,
        next_step=next_step,
        can_randomise=actor.can(Capability.RANDOMISE),
        can_assess=actor.can(Capability.WRITE_ASSESSMENTS),
        can_write=actor.can(Capability.WRITE_TRIAL_DATA),
        can_answer=actor.can(Capability.WRITE_TRIAL_DATA)
        or actor.can(Capability.WRITE_ASSESSMENTS),
        **context,
    )


routes = [Route("/", home, methods=["GET"])]
