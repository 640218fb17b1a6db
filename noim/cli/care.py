"""Commands for placements (moves) and legal proceedings, events and decisions."""

from __future__ import annotations

from datetime import date
from typing import Any

import click

from noim.cli.common import (
    DATE,
    CliState,
    changes_given,
    json_option,
    pass_state,
    print_json,
    print_record,
    print_table,
    reason_option,
)
from noim.domain.codes import (
    JURISDICTIONS,
    PERMANENCE_OUTCOME_LABELS,
    PLACEMENT_END_REASONS,
    PLACEMENT_TYPES,
    PROCEEDINGS_KINDS,
)
from noim.services import legal, legal_rules, placements
from noim.services.legal import EventView, ProceedingsView
from noim.services.placements import PlacementView

_TYPES = ", ".join(PLACEMENT_TYPES)
_END_REASONS = ", ".join(PLACEMENT_END_REASONS)


# --------------------------------------------------------------------------- placements


def _placement_line(p: PlacementView) -> str:
    until = f" to {p.end_date} ({p.end_reason})" if p.end_date else " (open)"
    carer = f", carer {p.carer_id}" if p.carer_id else ""
    la = f", {p.local_authority}" if p.local_authority else ""
    void = " [VOID]" if p.voided else ""
    return f"placement {p.id} of {p.child}: {p.placement_type} from {p.start_date}{until}{carer}{la}{void}"


@click.group("placement")
def placement_group() -> None:
    """Placements: where each child lives, and its moves."""


@placement_group.command("add")
@click.argument("child_id")
@click.option("--from", "start_date", type=DATE, required=True, help="Start date (YYYY-MM-DD).")
@click.option("--type", "placement_type", required=True, help=f"Placement type: {_TYPES}.")
@click.option("--carer", "carer_id", type=int, help="noim id of the carer (at the child's site).")
@click.option("--la", "local_authority", help="Code of the placing local authority (of the site).")
@json_option
@pass_state
def placement_add(
    state: CliState,
    child_id: str,
    start_date: date,
    placement_type: str,
    carer_id: int | None,
    local_authority: str | None,
    as_json: bool,
) -> None:
    """Record a placement of CHILD_ID (the first normally starts on entry to care)."""
    view = placements.add_placement(
        state.db(), state.actor(), child_id, start_date, placement_type, carer_id, local_authority
    )
    print_record(view, as_json, f"Recorded {_placement_line(view)}")


@placement_group.command("end")
@click.argument("placement_id", type=int)
@click.option("--on", "on", type=DATE, required=True, help="End date (YYYY-MM-DD).")
@reason_option(f"Why it ended: {_END_REASONS}.")
@json_option
@pass_state
def placement_end(state: CliState, placement_id: int, on: date, reason: str, as_json: bool) -> None:
    """End the open placement PLACEMENT_ID."""
    view = placements.end_placement(state.db(), state.actor(), placement_id, on, reason)
    print_record(view, as_json, f"Ended {_placement_line(view)}")


@placement_group.command("move")
@click.argument("child_id")
@click.option("--on", "on", type=DATE, required=True, help="Date of the move (YYYY-MM-DD).")
@click.option("--type", "placement_type", required=True, help=f"New placement's type: {_TYPES}.")
@click.option("--carer", "carer_id", type=int, help="noim id of the new carer.")
@click.option("--la", "local_authority", help="Code of the placing local authority.")
@reason_option(f"Why the old placement ended: {_END_REASONS}.")
@json_option
@pass_state
def placement_move(
    state: CliState,
    child_id: str,
    on: date,
    placement_type: str,
    carer_id: int | None,
    local_authority: str | None,
    reason: str,
    as_json: bool,
) -> None:
    """Move CHILD_ID: end its open placement on a date and start the next that day."""
    view = placements.move_child(
        state.db(),
        state.actor(),
        child_id,
        on,
        placement_type,
        reason,
        carer_id,
        local_authority,
    )
    if as_json:
        print_json(view)
    else:
        click.echo(f"Ended {_placement_line(view.ended)}")
        click.echo(f"Started {_placement_line(view.started)}")


@placement_group.command("correct")
@click.argument("placement_id", type=int)
@click.option("--from", "start_date", type=DATE, help="Corrected start date.")
@click.option("--to", "end_date", type=DATE, help="Corrected end date.")
@click.option("--type", "placement_type", help=f"Corrected type: {_TYPES}.")
@click.option("--end-reason", help=f"Corrected end reason: {_END_REASONS}.")
@click.option("--carer", "carer_id", type=int, help="Corrected carer id.")
@click.option("--la", "local_authority", help="Corrected local authority code.")
@reason_option()
@json_option
@pass_state
def placement_correct(
    state: CliState, /, placement_id: int, reason: str, as_json: bool, **fields: Any
) -> None:
    """Correct PLACEMENT_ID (audited, with a reason)."""
    changes = changes_given(fields, "--from, --to, --type, --end-reason, --carer, --la")
    view = placements.correct_placement(state.db(), state.actor(), placement_id, changes, reason)
    print_record(view, as_json, f"Corrected {_placement_line(view)}")


@placement_group.command("void")
@click.argument("placement_id", type=int)
@reason_option("Why it is voided (kept in the audit trail).")
@pass_state
def placement_void(state: CliState, placement_id: int, reason: str) -> None:
    """Void PLACEMENT_ID recorded in error (never deleted)."""
    view = placements.void_placement(state.db(), state.actor(), placement_id, reason)
    click.echo(f"Voided {_placement_line(view)}")


@placement_group.command("list")
@click.argument("child_id")
@json_option
@pass_state
def placement_list(state: CliState, child_id: str, as_json: bool) -> None:
    """List CHILD_ID's placements and count its moves (placements after the first)."""
    result = placements.list_placements(state.db(), state.actor(), child_id)
    if as_json:
        print_json(result)
        return
    print_table(
        f"Placements of {result.child} (entered care {result.entered_care_on}): "
        f"{result.moves} move(s)",
        ["id", "from", "to", "type", "end reason", "carer", "LA", "void"],
        [
            (
                p.id,
                p.start_date,
                p.end_date or "open",
                p.placement_type,
                p.end_reason,
                p.carer_id,
                p.local_authority,
                "void" if p.voided else "",
            )
            for p in result.placements
        ],
    )


# --------------------------------------------------------------------------- legal


def _proceedings_line(p: ProceedingsView) -> str:
    until = f" to {p.ended_on}" if p.ended_on else " (open)"
    court = f", {p.court_or_panel}" if p.court_or_panel else ""
    void = " [VOID]" if p.voided else ""
    return f"proceedings {p.id} of {p.child}: {p.kind} from {p.started_on}{until}{court}{void}"


def _event_line(e: EventView) -> str:
    outcome = f"; permanence: {e.outcome_label}" if e.outcome_label else ""
    within = f", proceedings {e.proceedings_id}" if e.proceedings_id else ""
    void = " [VOID]" if e.voided else ""
    return f"legal event {e.id} of {e.child}: {e.event_type} ({e.label}) on {e.event_date}{within}{outcome}{void}"


@click.group("legal")
def legal_group() -> None:
    """Legal proceedings, events and court / hearing decisions; permanence."""


@legal_group.command("proceedings")
@click.argument("child_id")
@click.option("--kind", required=True, help=f"Kind of proceedings: {', '.join(PROCEEDINGS_KINDS)}.")
@click.option("--from", "started_on", type=DATE, required=True, help="Start date (YYYY-MM-DD).")
@click.option("--court", "court_or_panel", help="Court or hearing panel.")
@json_option
@pass_state
def legal_proceedings(
    state: CliState,
    child_id: str,
    kind: str,
    started_on: date,
    court_or_panel: str | None,
    as_json: bool,
) -> None:
    """Record legal proceedings for CHILD_ID (in its site's jurisdiction)."""
    view = legal.open_proceedings(
        state.db(), state.actor(), child_id, kind, started_on, court_or_panel
    )
    print_record(view, as_json, f"Recorded {_proceedings_line(view)}")


@legal_group.command("end-proceedings")
@click.argument("proceedings_id", type=int)
@click.option("--on", "ended_on", type=DATE, required=True, help="End date (YYYY-MM-DD).")
@json_option
@pass_state
def legal_end_proceedings(
    state: CliState, proceedings_id: int, ended_on: date, as_json: bool
) -> None:
    """Record the date proceedings PROCEEDINGS_ID ended."""
    view = legal.end_proceedings(state.db(), state.actor(), proceedings_id, ended_on)
    print_record(view, as_json, f"Ended {_proceedings_line(view)}")


@legal_group.command("correct-proceedings")
@click.argument("proceedings_id", type=int)
@click.option("--kind", help="Corrected kind.")
@click.option("--from", "started_on", type=DATE, help="Corrected start date.")
@click.option("--to", "ended_on", type=DATE, help="Corrected end date.")
@click.option("--court", "court_or_panel", help="Corrected court or panel.")
@reason_option()
@json_option
@pass_state
def legal_correct_proceedings(
    state: CliState, /, proceedings_id: int, reason: str, as_json: bool, **fields: Any
) -> None:
    """Correct proceedings PROCEEDINGS_ID (audited, with a reason)."""
    changes = changes_given(fields, "--kind, --from, --to, --court")
    view = legal.correct_proceedings(state.db(), state.actor(), proceedings_id, changes, reason)
    print_record(view, as_json, f"Corrected {_proceedings_line(view)}")


@legal_group.command("void-proceedings")
@click.argument("proceedings_id", type=int)
@reason_option("Why they are voided (kept in the audit trail).")
@pass_state
def legal_void_proceedings(state: CliState, proceedings_id: int, reason: str) -> None:
    """Void proceedings PROCEEDINGS_ID recorded in error (not while live events belong to them)."""
    view = legal.void_proceedings(state.db(), state.actor(), proceedings_id, reason)
    click.echo(f"Voided {_proceedings_line(view)}")


@legal_group.command("event")
@click.argument("child_id")
@click.option(
    "--type",
    "event_type",
    required=True,
    help="Event or decision type code, e.g. sc.cso or en.E43 (see `noim legal types`).",
)
@click.option("--on", "event_date", type=DATE, required=True, help="Date (YYYY-MM-DD).")
@click.option(
    "--proceedings", "proceedings_id", type=int, help="Id of the proceedings it belongs to."
)
@click.option("--notes", help="Free-text notes.")
@json_option
@pass_state
def legal_event(
    state: CliState,
    child_id: str,
    event_type: str,
    event_date: date,
    proceedings_id: int | None,
    notes: str | None,
    as_json: bool,
) -> None:
    """Record a legal event or court / hearing decision for CHILD_ID."""
    view = legal.record_event(
        state.db(), state.actor(), child_id, event_type, event_date, proceedings_id, notes
    )
    print_record(view, as_json, f"Recorded {_event_line(view)}")


@legal_group.command("correct-event")
@click.argument("event_id", type=int)
@click.option("--type", "event_type", help="Corrected type code.")
@click.option("--on", "event_date", type=DATE, help="Corrected date.")
@click.option("--proceedings", "proceedings_id", type=int, help="Corrected proceedings id.")
@click.option("--notes", help="Corrected notes.")
@reason_option()
@json_option
@pass_state
def legal_correct_event(
    state: CliState, /, event_id: int, reason: str, as_json: bool, **fields: Any
) -> None:
    """Correct legal event EVENT_ID (audited, with a reason)."""
    changes = changes_given(fields, "--type, --on, --proceedings, --notes")
    view = legal.correct_event(state.db(), state.actor(), event_id, changes, reason)
    print_record(view, as_json, f"Corrected {_event_line(view)}")


@legal_group.command("void-event")
@click.argument("event_id", type=int)
@reason_option("Why it is voided (kept in the audit trail).")
@pass_state
def legal_void_event(state: CliState, event_id: int, reason: str) -> None:
    """Void legal event EVENT_ID recorded in error (never deleted)."""
    view = legal.void_event(state.db(), state.actor(), event_id, reason)
    click.echo(f"Voided {_event_line(view)}")


@legal_group.command("list")
@click.argument("child_id")
@json_option
@pass_state
def legal_list(state: CliState, child_id: str, as_json: bool) -> None:
    """Show CHILD_ID's proceedings and events in date order, with its permanence."""
    h = legal.legal_history(state.db(), state.actor(), child_id)
    if as_json:
        print_json(h)
        return
    print_table(
        f"Legal history of {h.child} ({h.jurisdiction})",
        ["date", "record", "id", "what", "kind", "permanence outcome", "void"],
        [
            (
                t.on,
                t.record,
                t.id,
                t.what,
                t.kind,
                PERMANENCE_OUTCOME_LABELS[t.permanence_outcome] if t.permanence_outcome else "",
                "void" if t.voided else "",
            )
            for t in h.timeline
        ],
    )
    first = h.first_permanence
    click.echo(
        "First permanence decision: "
        + (
            f"{first.event_date} {first.event_type} ({first.outcome_label})"
            if first
            else "none yet"
        )
    )
    click.echo(
        f"Returns home: {h.returns_home}; re-entries to care after a return home: "
        f"{h.reentries_after_return_home}"
        + "".join(
            f"\n  re-entry {r.on}"
            + (
                f" after return home {r.after_return_home_on}"
                if r.after_return_home_on
                else " (no return home recorded before it)"
            )
            for r in h.reentries
        )
    )


@legal_group.command("types")
@click.option(
    "--jurisdiction",
    type=click.Choice(JURISDICTIONS),
    help="Only this jurisdiction (and common types).",
)
@json_option
def legal_types(jurisdiction: str | None, as_json: bool) -> None:
    """Print the legal vocabulary: event and decision types and their permanence outcomes."""
    v = legal_rules.vocabulary(jurisdiction)
    if as_json:
        print_json(v)
        return
    for j, kinds in v.proceedings_kinds.items():
        click.echo(f"Proceedings in {j}: {', '.join(kinds)}")
    print_table(
        "Event and decision types",
        ["code", "jurisdiction", "kind", "label", "SSDA903", "permanence outcome", "entry route"],
        [
            (
                t.code,
                t.jurisdiction,
                t.kind,
                t.label,
                t.ssda903,
                PERMANENCE_OUTCOME_LABELS[t.permanence_outcome] if t.permanence_outcome else "",
                "yes" if t.entry_route else "",
            )
            for t in v.event_types
        ],
    )
