"""Closed code lists.  The database holds each as a CHECK constraint built from
these tuples, and services validate against them, so there is one source.

Code lists that depend on the trial (sites, arms, timepoints, instruments) are
reference tables filled from the trial definition instead.
"""

from __future__ import annotations

import re

JURISDICTIONS = ("scotland", "england_wales")
JURISDICTION_LABELS = {"scotland": "Scotland", "england_wales": "England and Wales"}

SEXES = ("female", "male", "unknown")

ELIGIBILITY_STATUSES = ("pending", "eligible", "ineligible")

PARENT_ROLES = ("mother", "father", "other")

CARER_TYPES = ("foster", "kinship", "adoptive", "residential")

CARER_RELATIONSHIPS = (
    "foster_carer",
    "kinship_carer",
    "special_guardian",
    "adoptive_parent",
    "residential_keyworker",
)

CONSENTER_TYPES = ("birth_parent", "carer", "local_authority", "other")

WITHDRAWAL_LEVELS = ("intervention", "follow_up", "data")
WITHDRAWAL_LEVEL_LABELS = {
    "intervention": "from the intervention only (follow-up continues)",
    "follow_up": "from further follow-up (data collected so far is kept)",
    "data": "from use of their data",
}

WITHDRAWAL_REQUESTERS = (
    "birth_parent",
    "carer",
    "local_authority",
    "clinician",
    "researcher",
    "other",
)

RANDOMISATION_METHODS = ("minimisation", "blocks")

TIMEPOINT_ANCHORS = ("entry_to_care", "randomisation")

RESPONDENT_TYPES = ("carer", "birth_parent", "teacher", "researcher", "clinician")

PLACEMENT_TYPES = (
    "foster",
    "kinship",
    "residential",
    "adoptive",
    "parents",  # living with a birth parent (a return home while a legal order may still stand)
    "hospital",
    "other",
)

PLACEMENT_END_REASONS = (
    "planned_move",
    "disruption",  # ended at the carer's request or breakdown
    "return_home",
    "adoption",
    "kinship_placement",
    "permanent_placement",
    "child_needs",
    "carer_circumstances",
    "other",
)

PROCEEDINGS_KINDS = (
    "care_proceedings",  # England and Wales: s.31 Children Act 1989 application
    "childrens_hearing",  # Scotland: referral to the Reporter and hearings
    "permanence_application",  # Scotland: Permanence Order application (s.80 2007 Act)
    "placement_application",  # England: Placement Order application
    "adoption_application",
    "other",
)

LEGAL_EVENT_KINDS = (
    "entry",  # legal route into care
    "emergency",  # emergency protection
    "referral",
    "hearing",
    "proceedings",
    "interim_order",
    "order",
    "decision",  # an agency/panel/court permanence decision
    "care_status",  # return home, re-entry to care
)

PERMANENCE_OUTCOMES = ("return_home", "adoption", "kinship", "long_term_foster", "other")
PERMANENCE_OUTCOME_LABELS = {
    "return_home": "Return home",
    "adoption": "Adoption",
    "kinship": "Kinship care / special guardianship",
    "long_term_foster": "Long-term foster care",
    "other": "Other",
}

RESPONSE_MISSING_REASONS = ("not_answered", "dont_know", "refused", "not_applicable", "illegible")

VISIT_STATUSES = ("scheduled", "completed", "missed", "not_required")

SAE_CATEGORIES = (
    "death",
    "life_threatening",
    "hospitalisation",
    "disability",
    "other_important",
)
SAE_RELATEDNESS = ("not_related", "unlikely", "possible", "probable", "definite")
SAE_OUTCOMES = ("recovered", "recovering", "not_recovered", "fatal", "unknown")

DEVIATION_SEVERITIES = ("minor", "major")

QUERY_STATUSES = ("open", "answered", "resolved", "closed")

#: why a randomised family did not receive the allocated intervention (or the usual service
#: it was allocated to); ``other`` needs details.  The codes name no arm, so the CONSORT
#: counts of the open report can show them.
INTERVENTION_NOT_RECEIVED_REASONS = (
    "declined",
    "not_engaged",
    "left_care",
    "moved_away",
    "service_unavailable",
    "withdrawn",
    "other",
)
INTERVENTION_NOT_RECEIVED_LABELS = {
    "declined": "family or carers declined the service",
    "not_engaged": "could not be engaged (offered, never attended)",
    "left_care": "child left care or placement ended before the service began",
    "moved_away": "moved out of the service's area",
    "service_unavailable": "service not available (capacity, staffing)",
    "withdrawn": "withdrawn from the intervention before it began",
    "other": "other reason",
}

TEAM_KINDS = ("intervention", "comparator", "research", "social_work")

AUDIT_ACTIONS = ("insert", "update", "void")


def sql_in(column: str, values: tuple[str, ...]) -> str:
    """SQL text for ``column IN ('a', 'b', ...)`` (values are our own literals)."""
    for v in values:
        if "'" in v:
            raise ValueError(f"code {v!r} contains a quote")
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


#: a unit cost's code (``sw_hour``, ``nim_session``): also how the trial definition names
#: the services that reveal the arm
UNIT_COST_CODE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
