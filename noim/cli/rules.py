"""``noim rules list`` (the registry) and ``noim check`` (every set rule over the whole database)."""

from __future__ import annotations

import click

from noim.cli.common import (
    CliState,
    json_option,
    pass_state,
    print_json,
    print_list,
    print_table,
)
from noim.services import rules


@click.group("rules")
def rules_group() -> None:
    """The validation rules noim applies."""


@rules_group.command("list")
@click.option(
    "--kind",
    type=click.Choice(["inline", "set"]),
    help="Only rules checked in-line by the services, or only the set (cross-record) rules.",
)
@json_option
def rules_list(kind: str | None, as_json: bool) -> None:
    """List every rule: id, severity, kind, table and field, and what it expects."""
    listed = rules.list_rules(kind)
    print_list(
        listed,
        as_json,
        f"Rules ({len(listed)})",
        ["id", "severity", "kind", "table", "field", "expects"],
        lambda r: (r.id, r.severity, r.kind, r.table, r.field, r.description),
    )


@click.command("check")
@json_option
@pass_state
def check(state: CliState, as_json: bool) -> None:
    """Run every set rule over the whole database (data managers, administrators).

    Opens a data query for each new violation (hard and soft), closes the rule's
    queries whose data now satisfy it, and prints counts per rule.
    """
    report = rules.check(state.db(), state.actor())
    if as_json:
        print_json(
            {
                "rules": report.rules,
                "violations": report.violations,
                "opened": report.opened,
                "closed": report.closed,
                "still_open": report.still_open,
            }
        )
        return
    print_table(
        "noim check",
        ["rule", "severity", "violations", "opened", "closed", "still open"],
        [
            (r.rule, r.severity, r.violations, r.opened, r.closed, r.still_open)
            for r in report.rules
        ],
    )
    click.echo(
        f"{report.violations} violation(s); {report.opened} query(ies) opened, "
        f"{report.closed} closed, {report.still_open} still open"
    )
