"""``noim import KIND FILE``: validated, atomic, idempotent bulk import of CSV files."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from noim.cli.common import CliState, fail, json_option, pass_state, print_json
from noim.domain.exceptions import ImportRejected
from noim.services import imports
from noim.services.imports.base import Progress as ProgressCallback


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[ProgressCallback | None]:
    """A rich progress bar on a terminal (stderr), else no callback."""
    if not enabled:
        yield None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        transient=True,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update


@click.command("import")
@click.argument("kind", type=click.Choice(imports.KIND_NAMES))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Validate and count; write nothing.")
@click.option(
    "--dates",
    type=click.Choice(["iso", "dmy"]),
    help="Date style of the file (default: what the file declares, else ISO YYYY-MM-DD).",
)
@json_option
@pass_state
def import_command(
    state: CliState, kind: str, file: Path, dry_run: bool, dates: str | None, as_json: bool
) -> None:
    """Import FILE (UTF-8 CSV) as KIND; formats in docs/import-formats.md.

    Nothing is written when any row is invalid: every bad row is listed with its
    row number, column, value and rule, and the exit status is 1.  Importing the
    same file again adds nothing.  A families import lists the trial IDs of the
    families (by family_ref) and children (by row) so paperwork can be labelled.
    """
    show_bar = not as_json and sys.stderr.isatty()
    try:
        with _progress_bar(show_bar) as progress:
            report = imports.run_import(
                state.db(),
                state.actor(),
                kind,
                file,
                dry_run=dry_run,
                dates=dates,
                progress=progress,
            )
    except ImportRejected as exc:
        if as_json:
            print_json(
                {
                    "kind": kind,
                    "source": exc.source,
                    "written": False,
                    "problems": [
                        {
                            "row": p.record,
                            "column": p.field,
                            "value": p.value,
                            "rule": p.rule,
                            "expected": p.expected,
                        }
                        for p in exc.problems
                    ],
                }
            )
            raise click.exceptions.Exit(1) from None
        for p in exc.problems:
            click.echo(f"{p}", err=True)
        fail(str(exc))
    if as_json:
        print_json({**report.__dict__, "summary": report.summary, "problems": []})
    else:
        click.echo(report.summary)
        if report.family_ids:
            click.echo("families (family_ref: trial ID):")
            for ref, trial_id in report.family_ids.items():
                click.echo(f"  {ref}: {trial_id}")
        if report.child_ids:
            click.echo("children (row: trial ID):")
            for row, trial_id in report.child_ids.items():
                click.echo(f"  {row}: {trial_id}")
