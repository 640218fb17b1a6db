"""Identifiable details of a child, birth parent or carer: show, set, or erase them
(``noim child|parent|carer identity``)."""

from __future__ import annotations

import click

from noim.cli.common import CliState, given, print_json
from noim.services import families, identities, people_identity


def change_options(f: click.decorators.FC) -> click.decorators.FC:
    """--reason (changing recorded details) and --erase (erasure on request)."""
    f = click.option(
        "--erase",
        is_flag=True,
        help="Erase the details on request (every field emptied; needs --reason).",
    )(f)
    return click.option(
        "--reason",
        help="Why (changing details already recorded, or erasing them): kept in the audit "
        "trail, so do not repeat the details.",
    )(f)


def identity_command(
    state: CliState,
    kind: str,
    ref: str | int,
    fields: dict[str, str | None],
    reason: str | None,
    erase: bool,
    as_json: bool,
) -> None:
    """Show, set or erase the identifiable details of a child, birth parent or carer."""
    changes = given(fields)
    if erase:
        if changes:
            raise click.UsageError("--erase takes no details: it empties them all")
        done = identities.erase(state.db(), state.actor(), kind, ref, reason or "")
        if as_json:
            print_json({"erased": bool(done.fields), "table": done.table, "fields": done.fields})
        else:
            click.echo(
                f"Erased the identifiable details of {kind} {ref}; the audit trail keeps only "
                "digests that can no longer be linked to them"
                if done.fields
                else f"{kind} {ref} has no identifiable details to erase"
            )
        return
    setters = {
        "child": families.set_child_identity,
        "parent": people_identity.set_parent_identity,
        "carer": people_identity.set_carer_identity,
    }
    getters = {
        "child": families.get_child_identity,
        "parent": people_identity.get_parent_identity,
        "carer": people_identity.get_carer_identity,
    }
    if changes:
        result = setters[kind](state.db(), state.actor(), ref, reason, **changes)  # type: ignore[operator]
    else:
        result = getters[kind](state.db(), state.actor(), ref)  # type: ignore[operator]
    _echo_identity(result, as_json)


def _echo_identity(result: dict[str, str | None], as_json: bool) -> None:
    if as_json:
        print_json(result)
    else:
        for k, v in result.items():
            click.echo(f"{k}: {v if v is not None else ''}")
