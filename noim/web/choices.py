"""Choice lists for the recording forms: the closed code lists (``noim.domain.codes``) and the
legal vocabulary of a jurisdiction (``noim.services.legal_rules.vocabulary``) as
``(value, label)`` pairs for selects and radio buttons.

The codes themselves come from their one source; this module only words them for people.
"""

from __future__ import annotations

from dataclasses import dataclass

from noim.domain import codes
from noim.services.legal_rules import vocabulary

Choices = list[tuple[str, str]]


def _words(code: str) -> str:
    text = code.replace("_", " ")
    return text[:1].upper() + text[1:]


def labelled(values: tuple[str, ...], labels: dict[str, str] | None = None) -> Choices:
    """``values`` as choices, each labelled from ``labels`` or from its own words."""
    return [(v, (labels or {}).get(v) or _words(v)) for v in values]


PLACEMENT_TYPES = labelled(
    codes.PLACEMENT_TYPES,
    {
        "foster": "Foster care",
        "kinship": "Kinship care",
        "residential": "Residential care",
        "adoptive": "Adoptive placement",
        "parents": "With a birth parent",
        "hospital": "Hospital",
        "other": "Other",
    },
)
PLACEMENT_END_REASONS = labelled(
    codes.PLACEMENT_END_REASONS,
    {
        "disruption": "Disruption (breakdown or the carer's request)",
        "kinship_placement": "Kinship placement",
        "child_needs": "The child's needs",
        "carer_circumstances": "The carer's circumstances",
    },
)
SAE_CATEGORIES = labelled(
    codes.SAE_CATEGORIES,
    {
        "life_threatening": "Life-threatening",
        "hospitalisation": "Hospitalisation (or prolonged stay)",
        "disability": "Persistent or significant disability",
        "other_important": "Other important medical event",
    },
)
SAE_RELATEDNESS = labelled(codes.SAE_RELATEDNESS)
SAE_OUTCOMES = labelled(codes.SAE_OUTCOMES, {"not_recovered": "Not recovered"})
DEVIATION_SEVERITIES = labelled(codes.DEVIATION_SEVERITIES)
WITHDRAWAL_LEVELS = labelled(codes.WITHDRAWAL_LEVELS, codes.WITHDRAWAL_LEVEL_LABELS)
WITHDRAWAL_REQUESTERS = labelled(
    codes.WITHDRAWAL_REQUESTERS, {"local_authority": "Local authority"}
)
RESPONDENT_LABELS = {
    "carer": "Carer",
    "birth_parent": "Birth parent",
    "teacher": "Teacher",
    "researcher": "Researcher",
    "clinician": "Clinician",
}
NOT_RECEIVED_REASONS = labelled(
    codes.INTERVENTION_NOT_RECEIVED_REASONS, codes.INTERVENTION_NOT_RECEIVED_LABELS
)
YES_NO = [("yes", "Yes"), ("no", "No")]

#: how the kinds of legal event read as groups of the event-type select
EVENT_KIND_LABELS = {
    "entry": "Route into care",
    "emergency": "Emergency protection",
    "referral": "Referrals",
    "hearing": "Hearings",
    "proceedings": "Proceedings",
    "interim_order": "Interim orders",
    "order": "Orders",
    "decision": "Permanence decisions",
    "care_status": "Care status (return home, re-entry to care)",
}
PROCEEDINGS_KIND_LABELS = {
    "care_proceedings": "Care proceedings (s.31 Children Act 1989)",
    "childrens_hearing": "Children's Hearing (referral to the Reporter)",
    "permanence_application": "Permanence Order application (s.80 2007 Act)",
    "placement_application": "Placement Order application (s.21 2002 Act)",
    "adoption_application": "Adoption application",
    "other": "Other proceedings",
}


@dataclass(frozen=True)
class ChoiceGroup:
    label: str
    choices: Choices


@dataclass(frozen=True)
class LegalChoices:
    jurisdiction: str
    jurisdiction_label: str
    #: event and decision types grouped by kind, in vocabulary order
    event_types: tuple[ChoiceGroup, ...]
    proceedings_kinds: Choices

    def event_type_codes(self) -> tuple[str, ...]:
        return tuple(v for g in self.event_types for v, _ in g.choices)


def event_type_label(label: str, statute: str | None, ssda903: str | None) -> str:
    """An event type as a coordinator reads it: its name, with the SSDA903 code or statute."""
    if ssda903:
        return f"{label} ({ssda903})"
    if statute:
        return f"{label} ({statute})"
    return label


def legal_choices(jurisdiction: str) -> LegalChoices:
    """The vocabulary a child at a site in ``jurisdiction`` is recorded with.

    Scotland's children's hearings and England and Wales's courts each have their own
    event types and proceedings kinds; the types common to both are included.
    """
    v = vocabulary(jurisdiction)
    groups: dict[str, Choices] = {}
    for t in v.event_types:
        groups.setdefault(t.kind, []).append(
            (t.code, event_type_label(t.label, t.statute, t.ssda903))
        )
    ordered = [k for k in codes.LEGAL_EVENT_KINDS if k in groups]
    return LegalChoices(
        jurisdiction=jurisdiction,
        jurisdiction_label=codes.JURISDICTION_LABELS[jurisdiction],
        event_types=tuple(
            ChoiceGroup(EVENT_KIND_LABELS.get(k, _words(k)), groups[k]) for k in ordered
        ),
        proceedings_kinds=labelled(v.proceedings_kinds[jurisdiction], PROCEEDINGS_KIND_LABELS),
    )
