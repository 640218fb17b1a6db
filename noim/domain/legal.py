"""Legal events and court / hearing decisions in the two jurisdictions.

Scotland (Children's Hearings system) and England and Wales (family court,
with the Department for Education's SSDA903 codes) share one schema: each
jurisdiction has its own vocabulary of event *types*, and every type that ends
the search for permanence maps onto one common *permanence outcome*
(``return_home``, ``adoption``, ``kinship``, ``long_term_foster``, ``other``).
Analyses only ever look at the outcome; coordinators record the type.

This tuple is the single source of the vocabulary; ``noim init`` and
``noim db upgrade`` copy it into the ``decision_types`` table.
"""

from __future__ import annotations

from dataclasses import dataclass

from noim.domain.codes import JURISDICTIONS, LEGAL_EVENT_KINDS, PERMANENCE_OUTCOMES

ANY_JURISDICTION = "any"

#: event types that can be a child's legal route into care (permanence orders cannot)
ENTRY_ROUTE_CODES = frozenset(
    {
        "sc.s25",
        "sc.cpo",
        "sc.cao",
        "sc.icso",
        "sc.cso",
        "en.V2",
        "en.L1",
        "en.L2",
        "en.L3",
        "en.C1",
        "en.C2",
    }
)


@dataclass(frozen=True)
class DecisionType:
    code: str
    jurisdiction: str  # scotland, england_wales or any
    kind: str
    label: str
    statute: str | None = None
    ssda903: str | None = None
    permanence_outcome: str | None = None

    @property
    def is_permanence(self) -> bool:
        return self.permanence_outcome is not None

    @property
    def can_be_entry_route(self) -> bool:
        return self.code in ENTRY_ROUTE_CODES


_SC = "scotland"
_EN = "england_wales"

DECISION_TYPES: tuple[DecisionType, ...] = (
    # --- Scotland ------------------------------------------------------------
    DecisionType(
        "sc.s25", _SC, "entry", "Voluntary accommodation", "s.25 Children (Scotland) Act 1995"
    ),
    DecisionType(
        "sc.cpo",
        _SC,
        "emergency",
        "Child Protection Order",
        "s.37 Children's Hearings (Scotland) Act 2011",
    ),
    DecisionType(
        "sc.cao",
        _SC,
        "emergency",
        "Child Assessment Order",
        "s.35 Children's Hearings (Scotland) Act 2011",
    ),
    DecisionType(
        "sc.reporter_referral",
        _SC,
        "referral",
        "Referral to the Children's Reporter",
        "s.66 Children's Hearings (Scotland) Act 2011",
    ),
    DecisionType("sc.hearing", _SC, "hearing", "Children's Hearing"),
    DecisionType(
        "sc.advice_hearing",
        _SC,
        "hearing",
        "Advice hearing: advice to the court",
        "s.141 Children's Hearings (Scotland) Act 2011",
    ),
    DecisionType(
        "sc.icso",
        _SC,
        "interim_order",
        "Interim Compulsory Supervision Order",
        "s.86 Children's Hearings (Scotland) Act 2011",
    ),
    DecisionType(
        "sc.cso",
        _SC,
        "order",
        "Compulsory Supervision Order",
        "s.83 Children's Hearings (Scotland) Act 2011",
    ),
    DecisionType(
        "sc.permanence_application",
        _SC,
        "proceedings",
        "Permanence Order application lodged",
        "s.80 Adoption and Children (Scotland) Act 2007",
    ),
    DecisionType(
        "sc.plan_return_home",
        _SC,
        "decision",
        "Looked-after review: plan to return home",
        None,
        None,
        "return_home",
    ),
    DecisionType(
        "sc.plan_adoption",
        _SC,
        "decision",
        "Permanence panel: plan for adoption",
        None,
        None,
        "adoption",
    ),
    DecisionType(
        "sc.plan_kinship",
        _SC,
        "decision",
        "Permanence panel: plan for kinship care",
        None,
        None,
        "kinship",
    ),
    DecisionType(
        "sc.plan_long_term_foster",
        _SC,
        "decision",
        "Permanence panel: plan for long-term foster care",
        None,
        None,
        "long_term_foster",
    ),
    DecisionType(
        "sc.po",
        _SC,
        "order",
        "Permanence Order",
        "s.80 Adoption and Children (Scotland) Act 2007",
        None,
        "long_term_foster",
    ),
    DecisionType(
        "sc.poa",
        _SC,
        "order",
        "Permanence Order with authority to adopt",
        "s.83 Adoption and Children (Scotland) Act 2007",
        None,
        "adoption",
    ),
    DecisionType(
        "sc.kco",
        _SC,
        "order",
        "Kinship Care Order",
        "s.11(1) Children (Scotland) Act 1995",
        None,
        "kinship",
    ),
    DecisionType(
        "sc.adoption_order",
        _SC,
        "order",
        "Adoption order",
        "s.28 Adoption and Children (Scotland) Act 2007",
        None,
        "adoption",
    ),
    DecisionType(
        "sc.return_home",
        _SC,
        "care_status",
        "Return home to birth parent(s)",
        None,
        None,
        "return_home",
    ),
    # --- England and Wales (SSDA903 codes where they exist) -------------------
    DecisionType("en.V2", _EN, "entry", "Accommodated under s.20", "s.20 Children Act 1989", "V2"),
    DecisionType("en.L1", _EN, "emergency", "Police protection", "s.46 Children Act 1989", "L1"),
    DecisionType(
        "en.L2", _EN, "emergency", "Emergency Protection Order", "s.44 Children Act 1989", "L2"
    ),
    DecisionType(
        "en.L3",
        _EN,
        "emergency",
        "Child assessment order with accommodation",
        "s.43 Children Act 1989",
        "L3",
    ),
    DecisionType(
        "en.care_proceedings",
        _EN,
        "proceedings",
        "Care proceedings issued (26-week limit)",
        "s.31 and s.32(1)(a) Children Act 1989",
    ),
    DecisionType(
        "en.C1", _EN, "interim_order", "Interim Care Order", "s.38 Children Act 1989", "C1"
    ),
    DecisionType("en.C2", _EN, "order", "Care Order", "s.31 Children Act 1989", "C2"),
    DecisionType(
        "en.adm_adoption",
        _EN,
        "decision",
        "Agency decision: should be placed for adoption",
        "Adoption Agencies Regulations 2005, reg.19",
        None,
        "adoption",
    ),
    DecisionType(
        "en.plan_return_home",
        _EN,
        "decision",
        "Care plan: return home agreed",
        None,
        None,
        "return_home",
    ),
    DecisionType(
        "en.plan_long_term_foster",
        _EN,
        "decision",
        "Care plan: long-term fostering agreed",
        "Care Planning Regulations 2010, reg.22C",
        None,
        "long_term_foster",
    ),
    DecisionType(
        "en.E1",
        _EN,
        "order",
        "Placement Order",
        "s.21 Adoption and Children Act 2002",
        "E1",
        "adoption",
    ),
    DecisionType(
        "en.E11",
        _EN,
        "order",
        "Adoption order (application unopposed)",
        "s.46 Adoption and Children Act 2002",
        "E11",
        "adoption",
    ),
    DecisionType(
        "en.E12",
        _EN,
        "order",
        "Adoption order (consent dispensed with)",
        "s.46 Adoption and Children Act 2002",
        "E12",
        "adoption",
    ),
    DecisionType(
        "en.E41",
        _EN,
        "order",
        "Child Arrangements Order (residence)",
        "s.8 Children Act 1989",
        "E41",
        "kinship",
    ),
    DecisionType(
        "en.E43",
        _EN,
        "order",
        "Special Guardianship Order to former foster carers",
        "s.14A Children Act 1989",
        "E43",
        "kinship",
    ),
    DecisionType(
        "en.E44",
        _EN,
        "order",
        "Special Guardianship Order to other carers",
        "s.14A Children Act 1989",
        "E44",
        "kinship",
    ),
    DecisionType(
        "en.E45",
        _EN,
        "order",
        "Special Guardianship Order to former foster carers who are relatives or friends",
        "s.14A Children Act 1989",
        "E45",
        "kinship",
    ),
    DecisionType(
        "en.E46",
        _EN,
        "order",
        "Special Guardianship Order to former foster carers, not relatives or friends",
        "s.14A Children Act 1989",
        "E46",
        "kinship",
    ),
    DecisionType(
        "en.E47",
        _EN,
        "order",
        "Special Guardianship Order to other carers who are relatives or friends",
        "s.14A Children Act 1989",
        "E47",
        "kinship",
    ),
    DecisionType(
        "en.E48",
        _EN,
        "order",
        "Special Guardianship Order to other carers, not relatives or friends",
        "s.14A Children Act 1989",
        "E48",
        "kinship",
    ),
    DecisionType(
        "en.E4A",
        _EN,
        "care_status",
        "Returned home to parents (part of care planning)",
        None,
        "E4A",
        "return_home",
    ),
    DecisionType(
        "en.E4B",
        _EN,
        "care_status",
        "Returned home to parents (not part of care planning)",
        None,
        "E4B",
        "return_home",
    ),
    # --- both ----------------------------------------------------------------
    DecisionType(
        "any.reentry", ANY_JURISDICTION, "care_status", "Re-entry to care after a return home"
    ),
    DecisionType(
        "any.other_permanence",
        ANY_JURISDICTION,
        "decision",
        "Other permanence decision",
        None,
        None,
        "other",
    ),
)

DECISION_TYPES_BY_CODE: dict[str, DecisionType] = {d.code: d for d in DECISION_TYPES}


def _check_vocabulary() -> None:
    """Fail at import if the vocabulary contradicts itself (a programming error)."""
    seen: set[str] = set()
    for d in DECISION_TYPES:
        if d.code in seen:
            raise RuntimeError(f"decision type {d.code} listed twice")
        seen.add(d.code)
        if (
            d.jurisdiction not in (*JURISDICTIONS, ANY_JURISDICTION)
            or d.kind not in LEGAL_EVENT_KINDS
        ):
            raise RuntimeError(f"decision type {d.code}: bad jurisdiction or kind")
        if d.permanence_outcome is not None and d.permanence_outcome not in PERMANENCE_OUTCOMES:
            raise RuntimeError(f"decision type {d.code}: bad permanence outcome")
    if ENTRY_ROUTE_CODES - seen:
        raise RuntimeError(f"entry routes not in the vocabulary: {ENTRY_ROUTE_CODES - seen}")


_check_vocabulary()


def types_for(jurisdiction: str) -> list[DecisionType]:
    """The vocabulary a site in ``jurisdiction`` may use (its own and the common types)."""
    return [d for d in DECISION_TYPES if d.jurisdiction in (jurisdiction, ANY_JURISDICTION)]
