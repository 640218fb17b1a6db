"""``noim freeze``: data freezes, the hashed snapshots analyses and reports cite."""

from __future__ import annotations

import click

from noim.cli.common import (
    CliState,
    json_option,
    pass_state,
    print_json,
    print_list,
    to_jsonable,
)
from noim.services import freezes
from noim.services.freezes import FreezeInfo


@click.group("freeze")
def freeze_group() -> None:
    """Data freezes: consistent, hashed snapshots of every dataset the analyses and the
    interim reports read (see docs/data-freezes.md)."""


def _line(f: FreezeInfo) -> str:
    return (
        f"Freeze {f.id} {f.label!r}: as of {f.as_of.isoformat()} (made "
        f"{f.created_at:%Y-%m-%d %H:%M:%S} UTC by {f.created_by}), audit row {f.audit_seq}, "
        f"schema {f.schema_revision}, sha256 {f.content_sha256}"
    )


@freeze_group.command("create")
@click.option("--label", help="A name for the freeze, e.g. 'DMC interim 2' (default: its time).")
@json_option
@pass_state
def freeze_create(state: CliState, label: str | None, as_json: bool) -> None:
    """Freeze every analysis and report dataset now, in one transaction (data manager,
    administrators)."""
    info = freezes.create_freeze(state.db(), state.actor(), label=label)
    if as_json:
        print_json(info)
    else:
        click.echo(_line(info))
        click.echo(", ".join(f"{k}: {v} rows" for k, v in info.row_counts.items()))


@freeze_group.command("list")
@json_option
@pass_state
def freeze_list(state: CliState, as_json: bool) -> None:
    """List the data freezes, oldest first."""
    rows = freezes.list_freezes(state.db(), state.actor())
    print_list(
        rows,
        as_json,
        f"Data freezes ({len(rows)})",
        ["id", "label", "as of", "made at (UTC)", "by", "children", "sha256"],
        lambda f: (
            f.id,
            f.label,
            f.as_of.isoformat(),
            f"{f.created_at:%Y-%m-%d %H:%M:%S}",
            f.created_by,
            f.row_counts.get("children"),
            f.content_sha256[:16],
        ),
    )


@freeze_group.command("show")
@click.argument("freeze_id", metavar="ID", type=int)
@json_option
@pass_state
def freeze_show(state: CliState, freeze_id: int, as_json: bool) -> None:
    """Show freeze ID: when, by whom, its content hash and each dataset's rows and hash."""
    info = freezes.show_freeze(state.db(), state.actor(), freeze_id)
    if as_json:
        print_json(info)
        return
    click.echo(_line(info))
    print_list(
        list(info.datasets),
        False,
        "Datasets",
        ["name", "rows", "sha256", "format", "bytes stored"],
        lambda d: (d.name, d.rows, d.sha256, d.format, d.bytes),
    )


@freeze_group.command("verify")
@click.argument("freeze_id", metavar="ID", type=int)
@json_option
@pass_state
def freeze_verify(state: CliState, freeze_id: int, as_json: bool) -> None:
    """Check freeze ID against its hashes and the audit trail (exit 1 naming what fails).

    Recomputes each dataset's hash from its stored content and the freeze's content hash
    from them, and compares them with what the freeze and the audit trail recorded when it
    was made.  Names datasets, never values."""
    check = freezes.verify(state.db(), state.actor(), freeze_id)
    if as_json:
        print_json({"ok": check.ok, **to_jsonable(check)})
    elif check.ok:
        click.echo(
            f"Freeze {check.freeze_id} {check.label!r} intact: {len(check.datasets)} datasets "
            f"match their hashes; content sha256 {check.content_sha256} matches the freeze "
            f"and the audit trail (audit row {check.audit_seq})"
        )
    else:
        click.echo(f"FREEZE {check.freeze_id} {check.label!r} FAILS VERIFICATION:")
        for problem in check.problems:
            click.echo(f"  {problem}")
    if not check.ok:
        raise click.exceptions.Exit(1)
