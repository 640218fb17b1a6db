"""``noim followups due``: what coordinators must chase."""

from __future__ import annotations

import click

from noim.cli.common import CliState, json_option, noim_cli, pass_state, print_json, print_table
from noim.services import visits


@noim_cli.group("followups")
def followups_group() -> None:
    """Follow-up visits scheduled from the trial definition."""


@followups_group.command("due")
@click.option("--site", help="Only this site.")
@click.option(
    "--within",
    "within_days",
    type=click.IntRange(0, 3650),
    default=0,
    show_default=True,
    help="Also list visits whose window opens within this many days.",
)
@json_option
@pass_state
def followups_due(state: CliState, site: str | None, within_days: int, as_json: bool) -> None:
    """List visits that are due or overdue (or open soon), soonest first."""
    rows = visits.due(state.db(), state.actor(), site, within_days)
    if as_json:
        print_json(rows)
        return
    print_table(
        f"Follow-ups to chase ({len(rows)})",
        ["child", "site", "timepoint", "status", "window", "target"],
        [
            (
                r.child,
                r.site,
                r.timepoint,
                r.status,
                f"{r.window_start} to {r.window_end}",
                r.target_date,
            )
            for r in rows
        ],
    )
