"""``noim void``: void a record entered in error (it stays, marked void, with the reason)."""

from __future__ import annotations

import click

from noim.cli.common import (
    CliState,
    json_option,
    pass_state,
    print_json,
    reason_option,
)
from noim.services import voiding


@click.command("void")
@click.argument("table", type=click.Choice(sorted(voiding.VOIDABLE)), metavar="TABLE")
@click.argument("record_id", type=int)
@reason_option("Why the record is voided (kept in the audit trail).")
@json_option
@pass_state
def void(state: CliState, table: str, record_id: int, reason: str, as_json: bool) -> None:
    """Void record RECORD_ID of TABLE, a record entered in error.

    TABLE is one of: screening_log, birth_parents, carers, child_birth_parents,
    child_carers, serious_adverse_events, protocol_deviations,
    intervention_receipts, losses_to_follow_up, service_use (the names
    `noim audit show` uses).  A record still in use is refused: a birth
    parent or carer named by live links, consents or assessments (PPL-017), a
    screening entry a live family was registered from (SCR-014).  Voiding a
    void record again changes nothing.
    """
    view = voiding.void_record(state.db(), state.actor(), table, record_id, reason)
    if as_json:
        print_json(view)
    elif view.already_voided:
        click.echo(f"{table} {record_id} was already voided on {view.voided_at:%Y-%m-%d}")
    else:
        click.echo(f"Voided {table} {record_id}")
