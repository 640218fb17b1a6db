"""Eligibility decisions and consent for children (what randomisation requires)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from noim.db.base import utcnow
from noim.db.models import BirthParent, Carer, Consent, Withdrawal
from noim.db.session import Database
from noim.db.text_rules import check as text_problems
from noim.domain.codes import (
    CONSENTER_TYPES,
    WITHDRAWAL_LEVEL_LABELS,
    WITHDRAWAL_LEVELS,
    WITHDRAWAL_REQUESTERS,
)
from noim.domain.exceptions import Problem, ValidationError
from noim.domain.roles import Actor, Capability
from noim.services.checks import require_reason
from noim.services.families import child_for
from noim.services.recording import not_future
from noim.services.visits import mark_not_required


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
        problems = eligibility_problems(
            f"child {child.trial_id}", eligible, decided_on, child.entered_care_on, reason
        )
        if problems:
            raise ValidationError(problems)
        child.eligibility_status = "eligible" if eligible else "ineligible"
        child.eligibility_decided_on = decided_on
        child.ineligibility_reason = None if eligible else reason
        s.flush()
        return child.eligibility_status


def eligibility_problems(
    record: str, eligible: bool, decided_on: date, entered_care_on: date, reason: str | None
) -> list[Problem]:
    """The eligibility rules (ELG-001 to ELG-003): one implementation for the service and the import."""
    problems = not_future(record, "eligibility_decided_on", decided_on, "ELG-003")
    if decided_on < entered_care_on:
        problems.append(
            Problem(
                record,
                "eligibility_decided_on",
                decided_on.isoformat(),
                "ELG-001",
                f"a date on or after entry to care ({entered_care_on})",
            )
        )
    if not eligible and (reason is None or not reason.strip()):
        problems.append(
            Problem(
                record,
                "ineligibility_reason",
                reason,
                "ELG-002",
                "a reason the child is ineligible",
            )
        )
    return problems


class ConsentChecker:
    """The consent rules (CNS-001 to CNS-004), shared by ``record_consent`` and the import.

    Birth parents and carers named by the rows are loaded once (``load``), so checking
    many rows costs two queries, not two per row.
    """

    def __init__(self, s: Session) -> None:
        self.s = s
        self.parent_family: dict[int, int] = {}
        self.carer_site: dict[int, int] = {}

    def load(self, person_ids: Iterable[int | None]) -> None:
        ids = sorted({p for p in person_ids if p is not None})
        for start in range(0, len(ids), 900):
            chunk = ids[start : start + 900]
            for parent_id, family_id in self.s.execute(
                select(BirthParent.id, BirthParent.family_id).where(
                    BirthParent.id.in_(chunk), BirthParent.voided_at.is_(None)
                )
            ):
                self.parent_family[int(parent_id)] = int(family_id)
            for carer_id, site_id in self.s.execute(
                select(Carer.id, Carer.site_id).where(
                    Carer.id.in_(chunk), Carer.voided_at.is_(None)
                )
            ):
                self.carer_site[int(carer_id)] = int(site_id)

    def problems(
        self,
        record: str,
        *,
        consenter_type: str | None,
        form_version: str | None,
        consented_on: date | None,
        person_id: int | None,
        date_of_birth: date | None,
        family_id: int | None,
        family_trial_id: str,
        site_id: int | None,
        site_code: str,
    ) -> list[Problem]:
        """Every consent rule the values break (None values were refused by the caller)."""
        out: list[Problem] = []
        if consenter_type is not None and consenter_type not in CONSENTER_TYPES:
            out.append(
                Problem(
                    record,
                    "consenter_type",
                    consenter_type,
                    "CNS-001",
                    "one of " + ", ".join(CONSENTER_TYPES),
                )
            )
        if form_version is not None and not form_version.strip():
            out.append(
                Problem(
                    record, "form_version", form_version, "CNS-002", "the consent form's version"
                )
            )
        out += text_problems(record, "form_version", form_version, "consents.form_version")
        if consenter_type in ("birth_parent", "carer"):
            if person_id is None:
                out.append(
                    Problem(
                        record,
                        "person_id",
                        None,
                        "CNS-003",
                        f"the id of the {consenter_type} who consented",
                    )
                )
            elif consenter_type == "birth_parent" and (
                family_id is not None and self.parent_family.get(person_id) != family_id
            ):
                out.append(
                    Problem(
                        record,
                        "person_id",
                        person_id,
                        "CNS-003",
                        f"a birth parent of family {family_trial_id}",
                    )
                )
            elif consenter_type == "carer" and (
                site_id is not None and self.carer_site.get(person_id) != site_id
            ):
                out.append(
                    Problem(
                        record, "person_id", person_id, "CNS-003", f"a carer at site {site_code}"
                    )
                )
        if consented_on is not None and date_of_birth is not None and consented_on < date_of_birth:
            out.append(
                Problem(
                    record,
                    "consented_on",
                    consented_on.isoformat(),
                    "CNS-004",
                    f"a date on or after the date of birth ({date_of_birth})",
                )
            )
        return out


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
    with db.write(actor) as s:
        child, family, site = child_for(s, actor, child_trial_id, "record consent for")
        checker = ConsentChecker(s)
        checker.load([person_id])
        problems = checker.problems(
            record,
            consenter_type=consenter_type,
            form_version=form_version,
            consented_on=consented_on,
            person_id=person_id,
            date_of_birth=child.date_of_birth,
            family_id=family.id,
            family_trial_id=family.trial_id,
            site_id=site.id,
            site_code=site.code,
        )
        if problems:
            raise ValidationError(problems)
        consent = Consent(
            child_id=child.id,
            consenter_type=consenter_type,
            birth_parent_id=person_id if consenter_type == "birth_parent" else None,
            carer_id=person_id if consenter_type == "carer" else None,
            scope=scope,
            form_version=form_version,
            consented_on=consented_on,
            recorded_by_id=actor.user_id,
        )
        s.add(consent)
        s.flush()
        return ConsentView(child.trial_id, consenter_type, form_version, consented_on, scope)


@dataclass(frozen=True)
class WithdrawalView:
    child: str
    level: str
    withdrawn_on: date
    visits_not_required: int


def record_withdrawal(
    db: Database,
    actor: Actor,
    child_trial_id: str,
    withdrawn_on: date,
    level: str,
    requested_by: str,
    reason: str,
) -> WithdrawalView:
    """Record a withdrawal (intervention only, further follow-up, or use of data).

    Withdrawal from follow-up or from data use marks the child's unfinished visits as
    not required (audited, with the withdrawal as the reason); nothing is deleted.
    """
    actor.require(Capability.WRITE_TRIAL_DATA, "record withdrawals")
    reason = require_reason(reason, f"withdrawing child {child_trial_id}")
    record = f"withdrawal of child {child_trial_id}"
    problems = withdrawal_problems(record, withdrawn_on, level, requested_by)
    if problems:
        raise ValidationError(problems)
    why = withdrawal_why(level, withdrawn_on, reason)
    with db.write(actor, reason=why) as s:
        child, _family, _site = child_for(s, actor, child_trial_id, "record a withdrawal for")
        problems = withdrawal_problems(
            record, withdrawn_on, level, requested_by, child.entered_care_on
        )
        if problems:
            raise ValidationError(problems)
        s.add(
            Withdrawal(
                child_id=child.id,
                withdrawn_on=withdrawn_on,
                level=level,
                requested_by=requested_by,
                reason=reason,
            )
        )
        ended = 0
        if level in ENDS_FOLLOW_UP:
            ended = mark_not_required(s, [child.id], why, open_on=withdrawn_on)
        s.flush()
        return WithdrawalView(child.trial_id, level, withdrawn_on, ended)


#: withdrawal levels that end follow-up: the child's open visits become not required
ENDS_FOLLOW_UP = ("follow_up", "data")


def withdrawal_why(level: str, withdrawn_on: date, reason: str) -> str:
    """The reason recorded on the visits a withdrawal makes not required."""
    return f"withdrawn from {WITHDRAWAL_LEVEL_LABELS[level]} on {withdrawn_on}: {reason}"


def withdrawal_problems(
    record: str,
    withdrawn_on: date,
    level: str,
    requested_by: str,
    entered_care_on: date | None = None,
) -> list[Problem]:
    """The withdrawal rules (WDR-001 to WDR-003), shared by ``record_withdrawal`` and the import.

    The date is checked against entry to care when ``entered_care_on`` is given.
    """
    problems = []
    if level not in WITHDRAWAL_LEVELS:
        problems.append(
            Problem(record, "level", level, "WDR-001", "one of " + ", ".join(WITHDRAWAL_LEVELS))
        )
    if requested_by not in WITHDRAWAL_REQUESTERS:
        problems.append(
            Problem(
                record,
                "requested_by",
                requested_by,
                "WDR-002",
                "one of " + ", ".join(WITHDRAWAL_REQUESTERS),
            )
        )
    if withdrawn_on > utcnow().date():
        problems.append(
            Problem(
                record,
                "withdrawn_on",
                withdrawn_on.isoformat(),
                "WDR-003",
                "a date not after today",
            )
        )
    elif entered_care_on is not None and withdrawn_on < entered_care_on:
        problems.append(
            Problem(
                record,
                "withdrawn_on",
                withdrawn_on.isoformat(),
                "WDR-003",
                f"a date on or after entry to care ({entered_care_on})",
            )
        )
    return problems
