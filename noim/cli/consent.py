"""Commands for eligibility, consent and withdrawal (``noim.services.consent``)."""

from __future__ import annotations

from datetime import date

import click

from noim.cli.common import DATE, CliState, json_option, pass_state, print_json
from noim.services import consent


@click.command("eligibility")
@click.argument("child_id")
@click.option("--eligible/--ineligible", required=True, help="The eligibility decision.")
@click.option(
    "--on", "decided_on", type=DATE, required=True, help="Date of the decision (YYYY-MM-DD)."
)
@click.option("--reason", help="Why the child is ineligible (required with --ineligible).")
@pass_state
def child_eligibility(
    state: CliState, child_id: str, eligible: bool, decided_on: date, reason: str | None
) -> None:
    """Record whether CHILD_ID is eligible."""
    status = consent.decide_eligibility(
        state.db(), state.actor(), child_id, eligible, decided_on, reason
    )
    click.echo(f"{child_id.upper()}: {status}")


@click.group("consent")
def consent_group() -> None:
    """Consent for children to take part."""


@consent_group.command("add")
@click.argument("child_id")
@click.option(
    "--by",
    "consenter_type",
    required=True,
    type=click.Choice(["birth_parent", "carer", "local_authority", "other"]),
    help="Who consented.",
)
@click.option("--form-version", required=True, help="Version of the consent form signed.")
@click.option(
    "--on", "consented_on", type=DATE, required=True, help="Date of consent (YYYY-MM-DD)."
)
@click.option("--person-id", type=int, help="Id of the birth parent or carer who consented.")
@json_option
@pass_state
def consent_add(
    state: CliState,
    child_id: str,
    consenter_type: str,
    form_version: str,
    consented_on: date,
    person_id: int | None,
    as_json: bool,
) -> None:
    """Record consent for CHILD_ID."""
    view = consent.record_consent(
        state.db(), state.actor(), child_id, consenter_type, form_version, consented_on, person_id
    )
    if as_json:
        print_json(view)
    else:
        click.echo(
            f"Consent recorded for {view.child} ({view.consenter_type}, form {view.form_version})"
        )


@click.command("withdraw")
@click.argument("child_id")
@click.option(
    "--level",
    required=True,
    type=click.Choice(["intervention", "follow_up", "data"]),
    help="From the intervention only, from further follow-up, or from use of data.",
)
@click.option(
    "--on", "withdrawn_on", type=DATE, required=True, help="Date of withdrawal (YYYY-MM-DD)."
)
@click.option(
    "--requested-by",
    required=True,
    type=click.Choice(
        ["birth_parent", "carer", "local_authority", "clinician", "researcher", "other"]
    ),
    help="Who asked for the withdrawal.",
)
@click.option("--reason", required=True, help="Why (kept with the record and in the audit trail).")
@json_option
@pass_state
def child_withdraw(
    state: CliState,
    child_id: str,
    level: str,
    withdrawn_on: date,
    requested_by: str,
    reason: str,
    as_json: bool,
) -> None:
    """Record CHILD_ID's withdrawal; unfinished visits become not required when follow-up ends."""
    view = consent.record_withdrawal(
        state.db(), state.actor(), child_id, withdrawn_on, level, requested_by, reason
    )
    if as_json:
        print_json(view)
    else:
        click.echo(
            f"{view.child} withdrawn ({view.level}) on {view.withdrawn_on}; "
            f"{view.visits_not_required} visit(s) now not required"
        )
