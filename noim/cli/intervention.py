"""``noim intervention``: receipt of the allocated intervention, per randomised family."""

from __future__ import annotations

from datetime import date

import click

from noim.cli.common import (
    DATE,
    CliState,
    json_option,
    pass_state,
    print_list,
    print_record,
    print_table,
    show_record,
    site_option,
)
from noim.domain.codes import INTERVENTION_NOT_RECEIVED_REASONS
from noim.services import intervention
from noim.services.intervention import FamilyReceipt, ReceiptView


@click.group("intervention")
def intervention_group() -> None:
    """Receipt of the allocated intervention (one current record per randomised family)."""


@intervention_group.command("record")
@click.argument("family_id")
@click.option(
    "--received/--not-received",
    default=None,
    help="Whether the family received the service it was allocated to.",
)
@click.option(
    "--started",
    "started_on",
    type=DATE,
    help="Date the allocated service started (first session or contact); with --received.",
)
@click.option(
    "--reason",
    type=click.Choice(INTERVENTION_NOT_RECEIVED_REASONS),
    help="Why it was not received; with --not-received.",
)
@click.option("--details", help="Details of the reason (required for --reason other).")
@click.option(
    "--correct",
    metavar="REASON",
    help="Correct the family's current record: why (it is voided with this reason and "
    "replaced; both kept in the audit trail).",
)
@json_option
@pass_state
def intervention_record(
    state: CliState,
    family_id: str,
    received: bool | None,
    started_on: date | None,
    reason: str | None,
    details: str | None,
    correct: str | None,
    as_json: bool,
) -> None:
    """Record whether FAMILY_ID received its allocated intervention.

    Either --received --started DATE, or --not-received --reason CODE [--details TEXT].
    """
    if received is None:
        raise click.UsageError("give --received (with --started DATE) or --not-received")
    view = intervention.record_receipt(
        state.db(),
        state.actor(),
        family_id,
        received=received,
        started_on=started_on,
        reason=reason,
        details=details,
        correct=correct,
    )
    verb = "Corrected" if view.corrects else "Recorded"
    print_record(view, as_json, f"{verb} intervention receipt of {view.family}: {_what(view)}")


def _what(v: ReceiptView) -> str:
    if v.received:
        return f"received, started {v.started_on}"
    return f"not received ({v.reason_label}{': ' + v.details if v.details else ''})"


def _print_receipt(r: FamilyReceipt) -> None:
    what = _what(r.current) if r.current else "receipt not yet recorded"
    click.echo(f"Family {r.family} at {r.site}, randomised {r.randomised_on}: {what}")
    rows = ([r.current] if r.current else []) + list(r.history)
    if rows:
        print_table(
            None,
            ["record", "received", "started", "reason", "details", "recorded", "by", "void"],
            [
                (
                    v.id,
                    "yes" if v.received else "no",
                    v.started_on or "",
                    v.reason or "",
                    v.details or "",
                    f"{v.recorded_at:%Y-%m-%d %H:%M}",
                    v.recorded_by,
                    v.void_reason or "",
                )
                for v in rows
            ],
        )


@intervention_group.command("show")
@click.argument("family_id")
@json_option
@pass_state
def intervention_show(state: CliState, family_id: str, as_json: bool) -> None:
    """Show FAMILY_ID's receipt record and the records it replaced."""
    view = intervention.get_receipt(state.db(), state.actor(), family_id)
    show_record(view, as_json, _print_receipt)


@intervention_group.command("list")
@site_option
@click.option(
    "--status",
    type=click.Choice(intervention.RECEIPT_STATUSES),
    help="Only families with this receipt status.",
)
@json_option
@pass_state
def intervention_list(state: CliState, site: str | None, status: str | None, as_json: bool) -> None:
    """List the randomised families you may see with their receipt status."""
    rows = intervention.list_receipts(state.db(), state.actor(), site, status)
    print_list(
        rows,
        as_json,
        f"Intervention receipt ({len(rows)} families)",
        ["family", "site", "randomised", "status", "started", "reason"],
        lambda r: (
            r.family,
            r.site,
            r.randomised_on,
            r.status.replace("_", " "),
            r.started_on or "",
            r.reason or "",
        ),
    )
