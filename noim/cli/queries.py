"""``noim queries``: raise, answer, resolve, close and reopen data queries; list them with ageing."""

from __future__ import annotations

import click

from noim.cli.common import (
    CliState,
    json_option,
    pass_state,
    print_json,
    print_record,
    print_table,
    show_record,
    site_option,
)
from noim.services import queries
from noim.services.queries import QueryView


def _print_query(q: QueryView) -> None:
    record = f"{q.table} {q.row_key}" + (f" ({q.trial_id})" if q.trial_id else "")
    origin = f"rule {q.rule}" if q.rule else f"raised by {q.raised_by}"
    click.echo(
        f"Query {q.id} [{q.status}] on {record}"
        + (f", field {q.field}" if q.field else "")
        + f" at {q.site or 'no site'}; {origin} on {q.raised_at:%Y-%m-%d}, "
        f"{q.age_days} day(s) old, {q.idle_days} day(s) since last activity"
    )
    click.echo(f"  {q.message}")
    if q.value_seen is not None:
        click.echo(f"  value seen: {q.value_seen}")
    for m in q.messages:
        change = f" -> {m.status_to}" if m.status_to else ""
        click.echo(f"  {m.posted_at:%Y-%m-%d %H:%M} {m.author or 'noim'}{change}: {m.body}")


@click.group("queries")
def queries_group() -> None:
    """Data queries: raised by rules or by hand, answered by sites, resolved by data managers."""


@queries_group.command("list")
@site_option
@click.option(
    "--status",
    "statuses",
    help="Only these statuses, comma-separated (open, answered, resolved, closed).",
)
@click.option("--rule", help="Only queries raised by this rule (e.g. PLC-010).")
@json_option
@pass_state
def queries_list(
    state: CliState, site: str | None, statuses: str | None, rule: str | None, as_json: bool
) -> None:
    """List the data queries you may see, oldest first, with their age."""
    wanted = statuses.split(",") if statuses else None
    rows = queries.list_queries(state.db(), state.actor(), site, wanted, rule)
    if as_json:
        print_json([{k: v for k, v in vars(r).items() if k != "messages"} for r in rows])
        return
    print_table(
        f"Data queries ({len(rows)})",
        ["id", "site", "status", "record", "field", "rule", "age (d)", "idle (d)", "message"],
        [
            (
                r.id,
                r.site,
                r.status,
                f"{r.table} {r.row_key}" + (f" ({r.trial_id})" if r.trial_id else ""),
                r.field,
                r.rule or f"by {r.raised_by}",
                r.age_days,
                r.idle_days,
                r.message,
            )
            for r in rows
        ],
    )


@queries_group.command("show")
@click.argument("query_id", type=int)
@json_option
@pass_state
def queries_show(state: CliState, query_id: int, as_json: bool) -> None:
    """Show QUERY_ID with its thread."""
    view = queries.get_query(state.db(), state.actor(), query_id)
    show_record(view, as_json, _print_query)


@queries_group.command("raise")
@click.option("--table", required=True, help="Table of the record, e.g. children, placements.")
@click.option(
    "--key", required=True, help="The record's key (its id; a trial ID for children and families)."
)
@click.option("--field", help="The field in question, e.g. date_of_birth.")
@click.option("--message", required=True, help="The question for the site.")
@json_option
@pass_state
def queries_raise(
    state: CliState, table: str, key: str, field: str | None, message: str, as_json: bool
) -> None:
    """Raise a data query on a record (coordinators, data managers, administrators)."""
    view = queries.raise_query(state.db(), state.actor(), table, key, message, field)
    print_record(
        view, as_json, f"Raised query {view.id} on {view.table} {view.row_key} at {view.site}"
    )


def _transition(action: str, help_text: str, message_required: bool) -> None:
    @queries_group.command(action, help=help_text)
    @click.argument("query_id", type=int)
    @click.option(
        "--message",
        required=message_required,
        help="The answer or comment added to the query's thread.",
    )
    @json_option
    @pass_state
    def command(state: CliState, query_id: int, message: str | None, as_json: bool) -> None:
        call = getattr(queries, action)
        view: QueryView = call(state.db(), state.actor(), query_id, message)
        print_record(view, as_json, f"Query {view.id} is now {view.status}")


_transition("respond", "Answer QUERY_ID (site staff of its site): open -> answered.", True)
_transition("resolve", "Resolve QUERY_ID (data managers): open or answered -> resolved.", True)
_transition("close", "Close QUERY_ID (data managers): resolved -> closed.", False)
_transition("reopen", "Reopen QUERY_ID (data managers): resolved or closed -> open.", True)
