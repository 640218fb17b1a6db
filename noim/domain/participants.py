"""Rules about families and children that hold whatever wrote the record."""

from __future__ import annotations

from datetime import date

from noim.domain.codes import SEXES
from noim.domain.durations import months_between
from noim.domain.exceptions import Problem

MAX_AGE_MONTHS_AT_ENTRY = 60


def check_child(
    record: str,
    date_of_birth: date,
    sex: str,
    entered_care_on: date,
    today: date,
) -> list[Problem]:
    """Problems with a child's core details (empty when they are fine)."""
    problems: list[Problem] = []
    if sex not in SEXES:
        problems.append(Problem(record, "sex", sex, "CHD-004", "one of " + ", ".join(SEXES)))
    if date_of_birth > today:
        problems.append(
            Problem(
                record,
                "date_of_birth",
                date_of_birth.isoformat(),
                "CHD-003",
                f"a date not after today ({today})",
            )
        )
    if entered_care_on > today:
        problems.append(
            Problem(
                record,
                "entered_care_on",
                entered_care_on.isoformat(),
                "CHD-003",
                f"a date not after today ({today})",
            )
        )
    if entered_care_on < date_of_birth:
        problems.append(
            Problem(
                record,
                "entered_care_on",
                entered_care_on.isoformat(),
                "CHD-001",
                f"a date on or after the date of birth ({date_of_birth})",
            )
        )
    else:
        age = months_between(date_of_birth, entered_care_on)
        if age > MAX_AGE_MONTHS_AT_ENTRY:
            problems.append(
                Problem(
                    record,
                    "entered_care_on",
                    entered_care_on.isoformat(),
                    "CHD-002",
                    f"entry to care at age 0-{MAX_AGE_MONTHS_AT_ENTRY} months (the child was {age} months old)",
                )
            )
    return problems
