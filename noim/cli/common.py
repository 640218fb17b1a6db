"""Shared CLI plumbing: the root group, settings, errors, JSON and table output."""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

import noim
from noim.cli.commands import ROOT
from noim.cli.lazy import LazyGroup
from noim.config import DATABASE_ENV, USER_ENV, Settings
from noim.domain.exceptions import NoimError

if TYPE_CHECKING:
    from rich.console import Console

    from noim.db.session import Database
    from noim.domain.roles import Actor

# Start-up time (docs/cli.md): this module is imported by every command, `noim --help`
# included, so it imports neither SQLAlchemy nor Alembic nor rich at its top; the
# functions that need them import them.


class NoimGroup(LazyGroup):
    """Turns noim's errors into one line on stderr and a non-zero exit, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except NoimError as exc:
            fail(str(exc), exc.exit_code)
        except Exception as exc:
            _database_error(exc)
            _internal(exc)


def _database_error(exc: Exception) -> None:
    """Fail with the one-line message of a database error noim explains; else return."""
    if "sqlalchemy" not in sys.modules:  # no database was opened: not a database error
        return
    from sqlalchemy.exc import DBAPIError, OperationalError

    from noim.db.errors import translate

    if isinstance(exc, DBAPIError):
        translated = translate(exc)
        if translated is not None:
            fail(str(translated), translated.exit_code)
        if isinstance(exc, OperationalError):
            fail(f"database error: {str(exc.orig).strip().splitlines()[0]}")


def _internal(exc: BaseException) -> NoReturn:
    if os.environ.get("NOIM_DEBUG"):
        raise exc
    fail(f"internal error ({type(exc).__name__}: {exc}); set NOIM_DEBUG=1 to see the traceback", 70)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` to stderr and exit with ``code``."""
    click.echo(f"error: {message}", err=True)
    raise click.exceptions.Exit(code)


@dataclasses.dataclass
class CliState:
    database: str | None
    user: str | None
    _db: Database | None = None
    _actor: Actor | None = None
    _schema_checked: bool = False

    @property
    def settings(self) -> Settings:
        return Settings.resolve(database=self.database, user=self.user)

    def db(self, check_schema: bool = True) -> Database:
        """The database, refusing one whose schema does not match this noim (unless told not to)."""
        if self._db is None:
            settings = self.settings
            path = settings.sqlite_path()
            if path is not None and not path.exists():
                fail(
                    f"no database at {path}; create one with `noim init` or point to one with "
                    f"--database / {DATABASE_ENV}"
                )
            from noim.db.session import Database

            self._db = Database(settings.database_url)
        if check_schema and not self._schema_checked:
            from noim.db.revisions import require_current

            require_current(self._db.engine)
            self._schema_checked = True
        return self._db

    def actor(self) -> Actor:
        """The acting user (``--user`` / ``NOIM_USER`` / the operating-system user)."""
        if self._actor is None:
            from noim.services.users import resolve_actor

            self._actor = resolve_actor(self.db(), self.settings.user_name)
        return self._actor

    def close(self) -> None:
        if self._db is not None:
            self._db.dispose()


@click.group(cls=NoimGroup, lazy=ROOT, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--database",
    metavar="URL",
    help=f"Database URL or SQLite file (default: ${DATABASE_ENV}, else sqlite:///noim.db).",
)
@click.option(
    "--user",
    metavar="NAME",
    help=f"Act as this noim user (default: ${USER_ENV}, else your login name).",
)
@click.version_option(noim.__version__, prog_name="noim")
@click.pass_context
def noim_cli(ctx: click.Context, database: str | None, user: str | None) -> None:
    """noim: data management and analysis for the NIM infant mental health trial.

    Every command acts as a noim user, checks that user's role and sites, and
    records every change in the audit trail.
    """
    state = CliState(database=database, user=user)
    ctx.obj = state
    ctx.call_on_close(state.close)


pass_state = click.make_pass_decorator(CliState)

if TYPE_CHECKING:
    _ParamType = click.ParamType[date, Any]
else:  # click < 8.3 has no generic ParamType
    _ParamType = click.ParamType


class DateType(_ParamType):
    """An ISO date (YYYY-MM-DD)."""

    name = "date"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> date:
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not a date; expected YYYY-MM-DD", param, ctx)


DATE = DateType()

json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")

site_option = click.option("--site", help="Only this site.")

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
V = TypeVar("V")


def apply_options(*decorators: Callable[[Any], Any]) -> Callable[[F], F]:
    """One decorator applying ``decorators`` in order (as if stacked top to bottom)."""

    def decorate(f: F) -> F:
        for decorator in reversed(decorators):
            f = decorator(f)
        return f

    return decorate


def reason_option(help: str = "Why (kept in the audit trail).") -> Callable[[F], F]:
    """The required ``--reason`` of a command that corrects, voids or closes a record."""
    return click.option("--reason", required=True, help=help)


def given(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The options that were given (not ``None``)."""
    return {k: v for k, v in fields.items() if v is not None}


def changes_given(fields: Mapping[str, Any], hint: str) -> dict[str, Any]:
    """The corrections given; a usage error naming the options (``hint``) when there are none."""
    changes = given(fields)
    if not changes:
        raise click.UsageError(f"nothing to correct: give at least one of {hint}")
    return changes


def print_list(
    rows: Sequence[T],
    as_json: bool,
    title: str,
    columns: Sequence[str],
    cells: Callable[[T], Sequence[Any]],
) -> None:
    """Print a list of records as JSON, or as a table of ``columns`` (``cells`` of each row)."""
    if as_json:
        print_json(rows)
    else:
        print_table(title, columns, [cells(r) for r in rows])


def show_record(view: V, as_json: bool, show: Callable[[V], None]) -> None:
    """Print a record as JSON, or the way ``show`` prints it."""
    if as_json:
        print_json(view)
    else:
        show(view)


def print_record(view: Any, as_json: bool, text: str) -> None:
    """Print a written record as JSON, or its one-line ``text``."""
    if as_json:
        print_json(view)
    else:
        click.echo(text)


def to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def print_json(value: Any) -> None:
    click.echo(json.dumps(to_jsonable(value), indent=2, ensure_ascii=False))


def console() -> Console:
    from rich.console import Console

    return Console(file=sys.stdout, soft_wrap=True, highlight=False)


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_lines=False)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console().print(table)


def main() -> None:
    """Entry point of the ``noim`` command."""
    try:
        noim_cli(prog_name="noim")
    finally:
        # The process ends here.  Python's clean-up at exit would otherwise collect the
        # whole heap (SQLAlchemy's mapped classes and their compiled state, about 100,000
        # objects), a third of the CPU time of a one-record command; frozen objects are
        # skipped (exit handlers still run, files are still flushed and closed).
        gc.freeze()
