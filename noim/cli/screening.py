"""``noim screening``: the screening log (every family screened, eligible or not)."""

from __future__ import annotations

from datetime import date

import click

from noim.cli.common import (
    DATE,
    CliState,
    json_option,
    pass_state,
    print_json,
    print_table,
    site_option,
)
from noim.services import screening
from noim.services.screening import ScreeningEntryView


def _echo_entry(view: ScreeningEntryView, verb: str) -> None:
    state = "eligible" if view.eligible else f"ineligible ({view.ineligible_reason})"
    if view.declined:
        state += f", declined ({view.declined_reason})"
    family = f", family {view.family}" if view.family else ""
    click.echo(
        f"{verb} screening entry {view.id} at {view.site} on {view.screened_on}: {state}{family}"
    )


@click.group("screening")
def screening_group() -> None:
    """The screening log: families screened, eligible, declined and enrolled."""


@screening_group.command("add")
@click.option("--site", required=True, help="Site code (e.g. GLA, CRO).")
@click.option("--la", "local_authority", help="Local authority code (of the site).")
@click.option("--on", "screened_on", type=DATE, required=True, help="Date screened (YYYY-MM-DD).")
@click.option(
    "--children", "n_children", type=int, default=1, show_default=True, help="Children screened."
)
@click.option(
    "--eligible/--ineligible",
    default=None,
    help="Whether the family is eligible (one of the two is required).",
)
@click.option("--reason", "ineligible_reason", help="Why the family is ineligible.")
@click.option("--declined", is_flag=True, help="The eligible family declined to take part.")
@click.option("--declined-reason", help="Why the family declined.")
@click.option("--reference", help="Local screening reference (no names).")
@json_option
@pass_state
def screening_add(
    state: CliState,
    site: str,
    local_authority: str | None,
    screened_on: date,
    n_children: int,
    eligible: bool | None,
    ineligible_reason: str | None,
    declined: bool,
    declined_reason: str | None,
    reference: str | None,
    as_json: bool,
) -> None:
    """Log one screened family."""
    if eligible is None:
        raise click.UsageError("say whether the family is eligible: --eligible or --ineligible")
    view = screening.add_entry(
        state.db(),
        state.actor(),
        site,
        screened_on,
        n_children,
        eligible,
        ineligible_reason,
        declined,
        declined_reason,
        local_authority,
        reference,
    )
    if as_json:
        print_json(view)
    else:
        _echo_entry(view, "Logged")


@screening_group.command("enrol")
@click.argument("entry_id", type=int)
@click.argument("family_id")
@json_option
@pass_state
def screening_enrol(state: CliState, entry_id: int, family_id: str, as_json: bool) -> None:
    """Link screening entry ENTRY_ID to FAMILY_ID, the family registered from it."""
    view = screening.enrol(state.db(), state.actor(), entry_id, family_id)
    if as_json:
        print_json(view)
    else:
        _echo_entry(view, "Linked")


@screening_group.command("list")
@site_option
@json_option
@pass_state
def screening_list(state: CliState, site: str | None, as_json: bool) -> None:
    """List the screening log with counts (screened, eligible, declined, enrolled)."""
    report = screening.list_entries(state.db(), state.actor(), site)
    if as_json:
        print_json(report)
        return
    c = report.counts
    click.echo(
        f"Screened {c.screened} families ({c.children_screened} children): {c.eligible} eligible, "
        f"{c.ineligible} ineligible, {c.declined} declined, {c.enrolled} enrolled"
    )
    print_table(
        None,
        ["id", "site", "LA", "screened", "children", "eligible", "declined", "family", "void"],
        [
            (
                e.id,
                e.site,
                e.local_authority,
                e.screened_on,
                e.n_children,
                "yes" if e.eligible else f"no: {e.ineligible_reason}",
                f"yes: {e.declined_reason}" if e.declined else "no",
                e.family,
                "void" if e.voided else "",
            )
            for e in report.entries
        ],
    )
