"""Eligibility decisions and consent for children (what randomisation requires)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from noim.db.models import BirthParent, Carer, Consent
from noim.db.session import Database
from noim.domain.codes import CONSENTER_TYPES
from noim.domain.exceptions import Problem, ValidationError
from noim.domain.roles import Actor, Capability
from noim.services.checks import require_reason
from noim.services.families import child_for


@dataclass(frozen=True)
class ConsentView:
    child: str
    consenter_type: str
    form_version: str
    consented_on: date
    scope: str


def decide_eligibility(
    db: Database,
    actor: Actor,
    child_trial_id: str,
    eligible: bool,
    decided_on: date,
    reason: str | None = None,
) -> str:
    """Record that a child is (or is not) eligible; an ineligible child needs a reason."""
    actor.require(Capability.WRITE_TRIAL_DATA, "decide eligibility")
    if not eligible:
        reason = require_reason(reason, f"finding child {child_trial_id} ineligible")
    with db.write(actor, reason=reason) as s:
        child, _family, _site = child_for(s, actor, child_trial_id, "decide the eligibility of")
        if decided_on < child.entered_care_on:
            raise ValidationError(
                Problem(
                    f"child {child.trial_id}",
                    "eligibility_decided_on",
                    decided_on.isoformat(),
                    "ELG-001",
                    f"a date on or after entry to care ({child.entered_care_on})",
                )
            )
        child.eligibility_status = "eligible" if eligible else "ineligible"
        child.eligibility_decided_on = decided_on
        child.ineligibility_reason = None if eligible else reason
        s.flush()
        return child.eligibility_status


def record_consent(
    db: Database,
    actor: Actor,
    child_trial_id: str,
    consenter_type: str,
    form_version: str,
    consented_on: date,
    person_id: int | None = None,
    scope: str = "participation",
) -> ConsentView:
    """Record consent for a child: who gave it (a birth parent, carer, the local authority ...)."""
    actor.require(Capability.WRITE_TRIAL_DATA, "record consent")
    record = f"consent for child {child_trial_id}"
    problems = []
    if consenter_type not in CONSENTER_TYPES:
        problems.append(
            Problem(
                record,
                "consenter_type",
                consenter_type,
                "CNS-001",
                "one of " + ", ".join(CONSENTER_TYPES),
            )
        )
    if not form_version.strip():
        problems.append(
            Problem(record, "form_version", form_version, "CNS-002", "the consent form's version")
        )
    if consenter_type in ("birth_parent", "carer") and person_id is None:
        problems.append(
            Problem(
                record,
                "person_id",
                None,
                "CNS-003",
                f"the id of the {consenter_type} who consented",
            )
        )
    if problems:
        raise ValidationError(problems)
    with db.write(actor) as s:
        child, family, site = child_for(s, actor, child_trial_id, "record consent for")
        if consented_on < child.date_of_birth:
            raise ValidationError(
                Problem(
                    record,
                    "consented_on",
                    consented_on.isoformat(),
                    "CNS-004",
                    f"a date on or after the date of birth ({child.date_of_birth})",
                )
            )
        parent_id = carer_id = None
        if consenter_type == "birth_parent":
            parent = s.get(BirthParent, person_id)
            if parent is None or parent.family_id != family.id:
                raise ValidationError(
                    Problem(
                        record,
                        "person_id",
                        person_id,
                        "CNS-003",
                        f"a birth parent of family {family.trial_id}",
                    )
                )
            parent_id = parent.id
        elif consenter_type == "carer":
            carer = s.get(Carer, person_id)
            if carer is None or carer.site_id != site.id:
                raise ValidationError(
                    Problem(
                        record, "person_id", person_id, "CNS-003", f"a carer at site {site.code}"
                    )
                )
            carer_id = carer.id
        consent = Consent(
            child_id=child.id,
            consenter_type=consenter_type,
            birth_parent_id=parent_id,
            carer_id=carer_id,
            scope=scope,
            form_version=form_version,
            consented_on=consented_on,
            recorded_by_id=actor.user_id,
        )
        s.add(consent)
        s.flush()
        return ConsentView(child.trial_id, consenter_type, form_version, consented_on, scope)
