"""``noim sae``, ``noim deviation`` and ``noim child lost``: safety and protocol records."""

from __future__ import annotations

from datetime import date
from typing import Any

import click

from noim.cli.common import (
    DATE,
    CliState,
    apply_options,
    given,
    json_option,
    pass_state,
    print_json,
    print_list,
    print_record,
    reason_option,
    site_option,
)
from noim.domain.codes import DEVIATION_SEVERITIES, SAE_CATEGORIES, SAE_OUTCOMES, SAE_RELATEDNESS
from noim.services import safety
from noim.services.safety import SaeView


def _echo_sae(view: SaeView, verb: str) -> None:
    done = f"; complete since {view.completed_at:%Y-%m-%d}" if view.completed_at else ""
    click.echo(
        f"{verb} SAE {view.id} of child {view.child}: {view.category}, onset {view.onset_date}, "
        f"reported {view.reported_on}{done}"
    )


def _sae_options(required: bool) -> list[Any]:
    return [
        click.option("--onset", "onset_date", type=DATE, required=required, help="Date of onset."),
        click.option(
            "--reported", "reported_on", type=DATE, required=required, help="Date reported."
        ),
        click.option("--category", required=required, help=f"One of {', '.join(SAE_CATEGORIES)}."),
        click.option("--description", required=required, help="What happened."),
        click.option("--relatedness", help=f"One of {', '.join(SAE_RELATEDNESS)}."),
        click.option(
            "--expected/--unexpected", default=None, help="Whether the event was expected."
        ),
        click.option("--outcome", help=f"One of {', '.join(SAE_OUTCOMES)}."),
    ]


@click.group("sae")
def sae_group() -> None:
    """Serious adverse events (listed without arms)."""


@sae_group.command("add")
@click.argument("child_id")
@apply_options(*_sae_options(required=True))
@json_option
@pass_state
def sae_add(state: CliState, /, child_id: str, as_json: bool, **fields: Any) -> None:
    """Record a serious adverse event of CHILD_ID."""
    view = safety.add_sae(state.db(), state.actor(), child_id, **fields)
    if as_json:
        print_json(view)
    else:
        _echo_sae(view, "Recorded")


@sae_group.command("update")
@click.argument("sae_id", type=int)
@apply_options(*_sae_options(required=False))
@click.option("--reason", help="Why (kept in the audit trail; required once the SAE is complete).")
@json_option
@pass_state
def sae_update(
    state: CliState, /, sae_id: int, reason: str | None, as_json: bool, **fields: Any
) -> None:
    """Change SAE_ID's details."""
    changes = given(fields)
    if not changes:
        raise click.UsageError("nothing to change: give at least one field option")
    view = safety.update_sae(state.db(), state.actor(), sae_id, changes, reason)
    if as_json:
        print_json(view)
    else:
        _echo_sae(view, "Updated")


@sae_group.command("complete")
@click.argument("sae_id", type=int)
@json_option
@pass_state
def sae_complete(state: CliState, sae_id: int, as_json: bool) -> None:
    """Mark SAE_ID's report complete (later changes need a reason)."""
    view = safety.complete_sae(state.db(), state.actor(), sae_id)
    if as_json:
        print_json(view)
    else:
        _echo_sae(view, "Completed")


@sae_group.command("list")
@site_option
@json_option
@pass_state
def sae_list(state: CliState, site: str | None, as_json: bool) -> None:
    """List serious adverse events at your sites (no arms shown)."""
    rows = safety.list_saes(state.db(), state.actor(), site)
    print_list(
        rows,
        as_json,
        f"Serious adverse events ({len(rows)})",
        [
            "id",
            "child",
            "site",
            "onset",
            "reported",
            "category",
            "related",
            "expected",
            "outcome",
            "complete",
            "void",
        ],
        lambda e: (
            e.id,
            e.child,
            e.site,
            e.onset_date,
            e.reported_on,
            e.category,
            e.relatedness,
            {True: "yes", False: "no", None: ""}[e.expected],
            e.outcome,
            f"{e.completed_at:%Y-%m-%d}" if e.completed_at else "",
            "void" if e.voided else "",
        ),
    )


@click.group("deviation")
def deviation_group() -> None:
    """Protocol deviations."""


@deviation_group.command("add")
@click.argument("family_id")
@click.option("--child", "child_id", help="The child concerned, if one (a child of FAMILY_ID).")
@click.option("--on", "occurred_on", type=DATE, required=True, help="Date of the deviation.")
@click.option("--category", required=True, help="Kind of deviation, e.g. consent, visit window.")
@click.option("--severity", required=True, help=f"One of {', '.join(DEVIATION_SEVERITIES)}.")
@click.option("--description", required=True, help="What happened.")
@json_option
@pass_state
def deviation_add(
    state: CliState,
    family_id: str,
    child_id: str | None,
    occurred_on: date,
    category: str,
    severity: str,
    description: str,
    as_json: bool,
) -> None:
    """Record a protocol deviation for FAMILY_ID."""
    view = safety.add_deviation(
        state.db(),
        state.actor(),
        family_id,
        occurred_on,
        category,
        severity,
        description,
        child_id,
    )
    if as_json:
        print_json(view)
    else:
        click.echo(
            f"Recorded deviation {view.id} ({view.severity}, {view.category}) for family "
            f"{view.family}{' child ' + view.child if view.child else ''} on {view.occurred_on}"
        )


@deviation_group.command("list")
@site_option
@json_option
@pass_state
def deviation_list(state: CliState, site: str | None, as_json: bool) -> None:
    """List protocol deviations at your sites."""
    rows = safety.list_deviations(state.db(), state.actor(), site)
    print_list(
        rows,
        as_json,
        f"Protocol deviations ({len(rows)})",
        ["id", "family", "child", "site", "date", "category", "severity", "description", "void"],
        lambda d: (
            d.id,
            d.family,
            d.child,
            d.site,
            d.occurred_on,
            d.category,
            d.severity,
            d.description,
            "void" if d.voided else "",
        ),
    )


@click.command("lost")
@click.argument("child_id")
@click.option(
    "--declared", "declared_on", type=DATE, required=True, help="Date declared lost (YYYY-MM-DD)."
)
@click.option("--last-contact", "last_contact_on", type=DATE, help="Date of the last contact.")
@reason_option("Why the child can no longer be followed up.")
@json_option
@pass_state
def child_lost(
    state: CliState,
    child_id: str,
    declared_on: date,
    last_contact_on: date | None,
    reason: str,
    as_json: bool,
) -> None:
    """Record that CHILD_ID (randomised) is lost to follow-up."""
    view = safety.declare_lost(
        state.db(), state.actor(), child_id, declared_on, reason, last_contact_on
    )
    print_record(
        view, as_json, f"Child {view.child} declared lost to follow-up on {view.declared_on}"
    )
