"""``noim parent`` and ``noim carer``: birth parents, carers and their links to children."""

from __future__ import annotations

from datetime import date

import click

from noim.cli.common import (
    DATE,
    CliState,
    json_option,
    pass_state,
    print_json,
    print_list,
    print_record,
    print_table,
    show_record,
    site_option,
)
from noim.cli.identity import change_options, identity_command
from noim.domain.codes import CARER_RELATIONSHIPS, CARER_TYPES, PARENT_ROLES
from noim.services import people
from noim.services.people import CarerLinkView, ParentLinkView


def _period(start: date | None, end: date | None) -> str:
    return f"{start or 'unknown'} to {end or 'open'}"


def _echo_link(link: CarerLinkView | ParentLinkView) -> None:
    who = (
        f"carer {link.carer_id} ({link.relationship})"
        if isinstance(link, CarerLinkView)
        else f"birth parent {link.parent_id} ({link.role})"
    )
    click.echo(
        f"Link {link.id}: {who} and child {link.child}, {_period(link.start_date, link.end_date)}"
    )


def _identity_options(f: click.decorators.FC) -> click.decorators.FC:
    for name, text in reversed(
        [
            ("--given-name", "Given name(s)."),
            ("--family-name", "Family name."),
            ("--address", "Postal address."),
            ("--postcode", "Postcode."),
            ("--phone", "Telephone number."),
        ]
    ):
        f = click.option(name, help=text)(f)
    return f


# --------------------------------------------------------------------------- birth parents


@click.group("parent")
def parent_group() -> None:
    """Birth parents of a family and their links to its children."""


@parent_group.command("add")
@click.argument("family_id")
@click.option("--role", required=True, help=f"One of {', '.join(PARENT_ROLES)}.")
@click.option("--born-year", "year_of_birth", type=int, help="Year of birth.")
@click.option(
    "--previous-child-removed/--no-previous-child-removed",
    default=None,
    help="Whether a birth mother has had an earlier child removed from her care.",
)
@json_option
@pass_state
def parent_add(
    state: CliState,
    family_id: str,
    role: str,
    year_of_birth: int | None,
    previous_child_removed: bool | None,
    as_json: bool,
) -> None:
    """Add a birth parent to FAMILY_ID."""
    view = people.add_parent(
        state.db(), state.actor(), family_id, role, year_of_birth, previous_child_removed
    )
    print_record(
        view, as_json, f"Added birth parent {view.id} ({view.role}) to family {view.family}"
    )


@parent_group.command("list")
@click.argument("family_id")
@json_option
@pass_state
def parent_list(state: CliState, family_id: str, as_json: bool) -> None:
    """List the birth parents of FAMILY_ID."""
    rows = people.list_parents(state.db(), state.actor(), family_id)
    print_list(
        rows,
        as_json,
        f"Birth parents of {family_id.upper()} ({len(rows)})",
        ["id", "role", "born", "previous child removed", "void"],
        lambda p: (
            p.id,
            p.role,
            p.year_of_birth,
            {True: "yes", False: "no", None: ""}[p.previous_child_removed],
            "void" if p.voided else "",
        ),
    )


@parent_group.command("link")
@click.argument("parent_id", type=int)
@click.argument("child_id")
@click.option(
    "--responsibility/--no-responsibility",
    default=None,
    help="Whether the parent has parental responsibility for the child.",
)
@click.option("--from", "start_date", type=DATE, help="Start of the relationship (YYYY-MM-DD).")
@click.option("--to", "end_date", type=DATE, help="End of the relationship, if it has ended.")
@json_option
@pass_state
def parent_link(
    state: CliState,
    parent_id: int,
    child_id: str,
    responsibility: bool | None,
    start_date: date | None,
    end_date: date | None,
    as_json: bool,
) -> None:
    """Link birth parent PARENT_ID to CHILD_ID (a child of the same family)."""
    link = people.link_parent(
        state.db(), state.actor(), parent_id, child_id, responsibility, start_date, end_date
    )
    show_record(link, as_json, _echo_link)


@parent_group.command("unlink")
@click.argument("link_id", type=int)
@click.option("--on", "end_date", type=DATE, required=True, help="Date the link ended.")
@json_option
@pass_state
def parent_unlink(state: CliState, link_id: int, end_date: date, as_json: bool) -> None:
    """End birth-parent link LINK_ID on a date."""
    link = people.end_link(state.db(), state.actor(), "parent", link_id, end_date)
    show_record(link, as_json, _echo_link)


@parent_group.command("identity")
@click.argument("parent_id", type=int)
@_identity_options
@change_options
@json_option
@pass_state
def parent_identity(
    state: CliState,
    /,
    parent_id: int,
    reason: str | None,
    erase: bool,
    as_json: bool,
    **fields: str | None,
) -> None:
    """Show PARENT_ID's identifiable details, set them with the options, or erase them
    (coordinators, administrators)."""
    identity_command(state, "parent", parent_id, fields, reason, erase, as_json)


# --------------------------------------------------------------------------- carers


@click.group("carer")
def carer_group() -> None:
    """Carers (foster, kinship, adoptive, residential) and the children they care for."""


@carer_group.command("add")
@click.option("--site", required=True, help="Site code (e.g. GLA, CRO).")
@click.option("--type", "carer_type", required=True, help=f"One of {', '.join(CARER_TYPES)}.")
@click.option("--reference", help="Local carer reference (no names).")
@json_option
@pass_state
def carer_add(
    state: CliState, site: str, carer_type: str, reference: str | None, as_json: bool
) -> None:
    """Register a carer at a site."""
    view = people.add_carer(state.db(), state.actor(), site, carer_type, reference)
    print_record(view, as_json, f"Added carer {view.id} ({view.carer_type}) at {view.site}")


@carer_group.command("list")
@site_option
@json_option
@pass_state
def carer_list(state: CliState, site: str | None, as_json: bool) -> None:
    """List the carers at your sites."""
    rows = people.list_carers(state.db(), state.actor(), site)
    print_list(
        rows,
        as_json,
        f"Carers ({len(rows)})",
        ["id", "site", "type", "reference", "void"],
        lambda c: (c.id, c.site, c.carer_type, c.reference, "void" if c.voided else ""),
    )


@carer_group.command("link")
@click.argument("carer_id", type=int)
@click.argument("child_id")
@click.option("--relationship", required=True, help=f"One of {', '.join(CARER_RELATIONSHIPS)}.")
@click.option("--from", "start_date", type=DATE, required=True, help="Date care began.")
@click.option("--to", "end_date", type=DATE, help="Date care ended, if it has.")
@json_option
@pass_state
def carer_link(
    state: CliState,
    carer_id: int,
    child_id: str,
    relationship: str,
    start_date: date,
    end_date: date | None,
    as_json: bool,
) -> None:
    """Record that carer CARER_ID cares for CHILD_ID from a date."""
    link = people.link_carer(
        state.db(), state.actor(), carer_id, child_id, relationship, start_date, end_date
    )
    show_record(link, as_json, _echo_link)


@carer_group.command("unlink")
@click.argument("link_id", type=int)
@click.option("--on", "end_date", type=DATE, required=True, help="Date care ended.")
@json_option
@pass_state
def carer_unlink(state: CliState, link_id: int, end_date: date, as_json: bool) -> None:
    """End carer link LINK_ID on a date."""
    link = people.end_link(state.db(), state.actor(), "carer", link_id, end_date)
    show_record(link, as_json, _echo_link)


@carer_group.command("identity")
@click.argument("carer_id", type=int)
@_identity_options
@change_options
@json_option
@pass_state
def carer_identity(
    state: CliState,
    /,
    carer_id: int,
    reason: str | None,
    erase: bool,
    as_json: bool,
    **fields: str | None,
) -> None:
    """Show CARER_ID's identifiable details, set them with the options, or erase them
    (coordinators, administrators)."""
    identity_command(state, "carer", carer_id, fields, reason, erase, as_json)


@click.command("carers")
@click.argument("child_id")
@click.option("--all", "include_voided", is_flag=True, help="Include voided links.")
@json_option
@pass_state
def child_carers(state: CliState, child_id: str, include_voided: bool, as_json: bool) -> None:
    """List who cared for CHILD_ID on which dates, and the child's birth parents."""
    view = people.child_people(state.db(), state.actor(), child_id, include_voided)
    if as_json:
        print_json(view)
        return
    print_table(
        f"Carers of {view.child} ({len(view.carers)})",
        ["link", "carer", "type", "reference", "relationship", "from", "to", "void"],
        [
            (
                c.id,
                c.carer_id,
                c.carer_type,
                c.reference,
                c.relationship,
                c.start_date,
                c.end_date,
                "void" if c.voided else "",
            )
            for c in view.carers
        ],
    )
    print_table(
        f"Birth parents of {view.child} ({len(view.parents)})",
        ["link", "parent", "role", "parental responsibility", "from", "to", "void"],
        [
            (
                p.id,
                p.parent_id,
                p.role,
                {True: "yes", False: "no", None: ""}[p.parental_responsibility],
                p.start_date,
                p.end_date,
                "void" if p.voided else "",
            )
            for p in view.parents
        ],
    )
