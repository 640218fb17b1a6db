"""Commands for families and children."""

from __future__ import annotations

from datetime import date
from typing import Any

import click

from noim.cli import commands
from noim.cli.common import (
    DATE,
    CliState,
    changes_given,
    json_option,
    pass_state,
    print_json,
    print_list,
    print_record,
    print_table,
    reason_option,
    show_record,
    site_option,
)
from noim.cli.identity import change_options, identity_command
from noim.cli.lazy import LazyGroup
from noim.services import families
from noim.services.families import FamilyView


def _print_family(f: FamilyView) -> None:
    status = "VOID" if f.voided else ("randomised" if f.randomised else "not randomised")
    arm = (f", masked arm code {f.arm}" if f.arm_masked else f", arm {f.arm}") if f.arm else ""
    click.echo(
        f"Family {f.trial_id} at {f.site}{' (' + f.local_authority + ')' if f.local_authority else ''}: "
        f"{status}{arm}; registered {f.registered_at:%Y-%m-%d}"
    )
    if f.children:
        print_table(
            None,
            ["child", "born", "sex", "entered care", "legal route", "eligibility", "void"],
            [
                (
                    c.trial_id,
                    c.date_of_birth,
                    c.sex,
                    c.entered_care_on,
                    c.legal_route,
                    c.eligibility,
                    "void" if c.voided else "",
                )
                for c in f.children
            ],
        )


@click.group("family", cls=LazyGroup, lazy=commands.FAMILY)
def family_group() -> None:
    """Families: the randomised clusters."""


@family_group.command("register")
@click.option("--site", required=True, help="Site code (e.g. GLA, CRO).")
@click.option("--la", "local_authority", help="Local authority code.")
@click.option(
    "--in-care-proceedings/--not-in-care-proceedings",
    default=None,
    help="Whether the family is in care proceedings (required in London).",
)
@json_option
@pass_state
def family_register(
    state: CliState,
    site: str,
    local_authority: str | None,
    in_care_proceedings: bool | None,
    as_json: bool,
) -> None:
    """Register a consented family and give it a trial ID."""
    view = families.register_family(
        state.db(), state.actor(), site, local_authority, in_care_proceedings
    )
    print_record(view, as_json, f"Registered family {view.trial_id} at {view.site}")


@family_group.command("show")
@click.argument("family_id")
@json_option
@pass_state
def family_show(state: CliState, family_id: str, as_json: bool) -> None:
    """Show FAMILY_ID with its children."""
    view = families.get_family(state.db(), state.actor(), family_id)
    show_record(view, as_json, _print_family)


@family_group.command("list")
@site_option
@json_option
@pass_state
def family_list(state: CliState, site: str | None, as_json: bool) -> None:
    """List the families you may see."""
    rows = families.list_families(state.db(), state.actor(), site)
    print_list(
        rows,
        as_json,
        f"Families ({len(rows)})",
        ["family", "site", "children", "registered", "randomised", "void"],
        lambda r: (
            r.trial_id,
            r.site,
            r.children,
            f"{r.registered_at:%Y-%m-%d}",
            "yes" if r.randomised else "no",
            "void" if r.voided else "",
        ),
    )


@family_group.command("void")
@click.argument("family_id")
@reason_option("Why the family is voided (kept in the audit trail).")
@pass_state
def family_void(state: CliState, family_id: str, reason: str) -> None:
    """Void FAMILY_ID registered in error (never deleted; not for randomised families)."""
    view = families.void_family(state.db(), state.actor(), family_id, reason)
    click.echo(f"Voided family {view.trial_id} and its {len(view.children)} child(ren)")


@click.group("child", cls=LazyGroup, lazy=commands.CHILD)
def child_group() -> None:
    """Children: the trial's participants."""


@child_group.command("add")
@click.argument("family_id")
@click.option(
    "--dob", "date_of_birth", type=DATE, required=True, help="Date of birth (YYYY-MM-DD)."
)
@click.option(
    "--sex",
    required=True,
    type=click.Choice(["female", "male", "unknown"]),
    help="Sex recorded at birth.",
)
@click.option("--entered-care", type=DATE, required=True, help="Date entered care (YYYY-MM-DD).")
@click.option(
    "--legal-route",
    help="Legal route into care, e.g. sc.cpo or en.C1 (see docs/placements-and-legal.md).",
)
@json_option
@pass_state
def child_add(
    state: CliState,
    family_id: str,
    date_of_birth: date,
    sex: str,
    entered_care: date,
    legal_route: str | None,
    as_json: bool,
) -> None:
    """Add a child to FAMILY_ID."""
    view = families.add_child(
        state.db(), state.actor(), family_id, date_of_birth, sex, entered_care, legal_route
    )
    print_record(view, as_json, f"Added child {view.trial_id} to family {family_id.upper()}")


@child_group.command("correct")
@click.argument("child_id")
@click.option("--dob", "date_of_birth", type=DATE, help="Corrected date of birth.")
@click.option("--sex", type=click.Choice(["female", "male", "unknown"]), help="Corrected sex.")
@click.option("--entered-care", "entered_care_on", type=DATE, help="Corrected date entered care.")
@click.option("--legal-route", "legal_route_code", help="Corrected legal route into care.")
@reason_option()
@json_option
@pass_state
def child_correct(
    state: CliState, /, child_id: str, reason: str, as_json: bool, **fields: Any
) -> None:
    """Correct CHILD_ID's core details (audited, with a reason)."""
    changes = changes_given(fields, "--dob, --sex, --entered-care, --legal-route")
    view = families.correct_child(state.db(), state.actor(), child_id, changes, reason)
    if as_json:
        print_json(view)
    else:
        click.echo(
            f"Corrected {view.trial_id}: " + ", ".join(f"{k} = {v}" for k, v in changes.items())
        )


@child_group.command("identity")
@click.argument("child_id")
@click.option("--given-name", help="Given name(s).")
@click.option("--family-name", help="Family name.")
@click.option("--social-work-ref", help="Local authority social-work case reference.")
@click.option("--health-number", help="CHI (Scotland) or NHS number.")
@change_options
@json_option
@pass_state
def child_identity(
    state: CliState,
    /,
    child_id: str,
    reason: str | None,
    erase: bool,
    as_json: bool,
    **fields: str | None,
) -> None:
    """Show CHILD_ID's identifiable details, set them with the options, or erase them
    (coordinators, administrators)."""
    identity_command(state, "child", child_id, fields, reason, erase, as_json)
