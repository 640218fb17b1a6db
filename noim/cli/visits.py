"""Follow-up visits: ``noim followups due``, ``noim visit ...`` and post-randomisation
exclusions (``noim child exclude``, ``noim family exclude``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import click

from noim.cli.common import (
    DATE,
    CliState,
    F,
    apply_options,
    json_option,
    pass_state,
    print_json,
    print_list,
    reason_option,
    site_option,
)
from noim.domain.schedule import OPEN_STATUSES
from noim.services import exclusions, visits
from noim.services.exclusions import ExclusionView
from noim.services.visits import VisitView


@click.group("followups")
def followups_group() -> None:
    """Follow-up visits scheduled from the trial definition."""


@followups_group.command("due")
@site_option
@click.option(
    "--within",
    "within_days",
    type=click.IntRange(0, 3650),
    default=0,
    show_default=True,
    help="Also list visits whose window opens within this many days.",
)
@click.option(
    "--status",
    type=click.Choice(OPEN_STATUSES),
    help="Only visits in this status (scheduled: opening within --within days).",
)
@json_option
@pass_state
def followups_due(
    state: CliState, site: str | None, within_days: int, status: str | None, as_json: bool
) -> None:
    """List visits that are due or overdue (or open soon), soonest first.

    Children lost to follow-up, excluded after randomisation or withdrawn from
    follow-up are not listed.
    """
    rows = visits.due(state.db(), state.actor(), site, within_days, status=status)
    print_list(
        rows,
        as_json,
        f"Follow-ups to chase ({len(rows)})",
        ["child", "site", "timepoint", "status", "window", "target"],
        lambda r: (
            r.child,
            r.site,
            r.timepoint,
            r.status,
            f"{r.window_start} to {r.window_end}",
            r.target_date,
        ),
    )


@click.group("visit")
def visit_group() -> None:
    """One child's follow-up visits: list them and record what happened."""


def _print_visit(v: VisitView, as_json: bool) -> None:
    if as_json:
        print_json(v)
    else:
        when = f" on {v.completed_on}" if v.completed_on else ""
        click.echo(f"{v.child} {v.timepoint}: {v.status}{when}")


def _visit_outcome(reason_help: str) -> Callable[[F], F]:
    """The arguments and options of a command recording a visit's outcome with a reason."""
    return apply_options(
        click.argument("child_id"),
        click.argument("timepoint"),
        reason_option(reason_help),
        json_option,
        pass_state,
    )


@visit_group.command("list")
@click.argument("child_id")
@json_option
@pass_state
def visit_list(state: CliState, child_id: str, as_json: bool) -> None:
    """List CHILD_ID's visits with target date, window and status."""
    rows = visits.list_visits(state.db(), state.actor(), child_id)
    print_list(
        rows,
        as_json,
        f"Visits of {child_id.strip().upper()} ({len(rows)})",
        ["timepoint", "target", "window", "status", "done on", "reason"],
        lambda r: (
            r.timepoint,
            r.target_date,
            f"{r.window_start} to {r.window_end}",
            r.status,
            r.completed_on,
            r.reason,
        ),
    )


@visit_group.command("complete")
@click.argument("child_id")
@click.argument("timepoint")
@click.option(
    "--on", "completed_on", type=DATE, required=True, help="Date of the visit (YYYY-MM-DD)."
)
@json_option
@pass_state
def visit_complete(
    state: CliState, child_id: str, timepoint: str, completed_on: date, as_json: bool
) -> None:
    """Record that CHILD_ID's TIMEPOINT visit took place (outside its window is flagged)."""
    v = visits.complete_visit(state.db(), state.actor(), child_id, timepoint, completed_on)
    _print_visit(v, as_json)


@visit_group.command("missed")
@_visit_outcome("Why the visit was missed.")
def visit_missed(
    state: CliState, child_id: str, timepoint: str, reason: str, as_json: bool
) -> None:
    """Record that CHILD_ID's TIMEPOINT visit was missed (once its window has opened)."""
    v = visits.record_missed(state.db(), state.actor(), child_id, timepoint, reason)
    _print_visit(v, as_json)


@visit_group.command("not-required")
@_visit_outcome("Why the visit is not required.")
def visit_not_required(
    state: CliState, child_id: str, timepoint: str, reason: str, as_json: bool
) -> None:
    """Record that CHILD_ID's TIMEPOINT visit is not required."""
    v = visits.record_not_required(state.db(), state.actor(), child_id, timepoint, reason)
    _print_visit(v, as_json)


@visit_group.command("reopen")
@_visit_outcome("Why the recorded outcome is corrected.")
def visit_reopen(
    state: CliState, child_id: str, timepoint: str, reason: str, as_json: bool
) -> None:
    """Correct CHILD_ID's TIMEPOINT visit back to scheduled (audited, with the reason)."""
    v = visits.reopen_visit(state.db(), state.actor(), child_id, timepoint, reason)
    _print_visit(v, as_json)


def _print_exclusion(view: ExclusionView, as_json: bool) -> None:
    if as_json:
        print_json(view)
        return
    who = f"child {view.child}" if view.child else f"family {view.family}"
    click.echo(
        f"Excluded {who} (identified {view.identified_on}); "
        f"{view.visits_not_required} visit(s) now not required"
    )


_identified_on = click.option(
    "--on",
    "identified_on",
    type=DATE,
    required=True,
    help="Date the ineligibility was identified (YYYY-MM-DD).",
)


@click.command("exclude")
@click.argument("child_id")
@_identified_on
@reason_option("Why the child is ineligible.")
@json_option
@pass_state
def child_exclude(
    state: CliState, child_id: str, identified_on: date, reason: str, as_json: bool
) -> None:
    """Record that randomised CHILD_ID was found ineligible (kept, never deleted)."""
    view = exclusions.exclude_child(state.db(), state.actor(), child_id, identified_on, reason)
    _print_exclusion(view, as_json)


@click.command("exclude")
@click.argument("family_id")
@_identified_on
@reason_option("Why the family is ineligible.")
@json_option
@pass_state
def family_exclude(
    state: CliState, family_id: str, identified_on: date, reason: str, as_json: bool
) -> None:
    """Record that randomised FAMILY_ID was found ineligible (kept, never deleted)."""
    view = exclusions.exclude_family(state.db(), state.actor(), family_id, identified_on, reason)
    _print_exclusion(view, as_json)
