"""The CLI reference (docs/cli.md), generated from the commands' own help.

``python -m noim.cli.reference > docs/cli.md`` rewrites it; a test fails when
the file is out of date.
"""

from __future__ import annotations

import click

from noim.cli.common import noim_cli

HEADER = """# noim command-line reference

Generated from the commands' own `--help` by `python -m noim.cli.reference > docs/cli.md`
(a test fails when this file is out of date).  Every command acts as the user named by
`--user` or `NOIM_USER` (default: your login name) on the database named by `--database` or
`NOIM_DATABASE_URL` (default: `sqlite:///noim.db`).  On failure a command prints one line,
`error: ...`, to standard error and exits non-zero (1 for refused input, 2 for usage errors).
Commands that report data accept `--json`.

## Start-up time

`noim --help` and `noim --version` answer in about a tenth of a second, and a command that
reads or writes one record (`family show`, `child add`, `consent add`, `placement move`,
`visit complete`, `followups due`) loads only what it needs: `noim --help` is printed from a
table of the commands and their one-line help (`noim/cli/commands.py`) without importing
them, and a command imports its own module and the services it calls when it runs.
numpy, pandas, scipy, statsmodels, matplotlib, Jinja2, Starlette and Alembic are imported
only by the commands that use them (statistics and reports, imports, randomisation,
`serve`, `db upgrade`, `init`, `demo`).  Before it reads or writes, a command checks the
database's schema revision with one `SELECT` against the newest revision of noim's
migrations, read from their files without Alembic (`noim/db/revisions.py`).  A new command
goes into `noim/cli/commands.py` with the first sentence of its help;
`tests/test_cli_startup.py` fails when the table and the commands disagree, or when a
one-record command imports one of those libraries.  `benchmarks/cli.py` times ten typical
commands on the demonstration trial ([operations](operations.md#benchmarks)).

On the shared 2-core machine (load average about 2.5, medians of 5 runs) `noim --help`
takes 0.08 s (1.1 to 2.0 s when every command was imported up front) and the one-record
commands 0.57 to 0.67 s (1.2 to 1.9 s before).  Most of what remains is importing
SQLAlchemy and mapping noim's tables, about 0.4 s of CPU, which any command that opens
the database needs; Python's clean-up at exit, which collected all of it again (a third
of the CPU of a one-record command), is skipped (`noim.cli.common.main`).
"""


def _walk(
    cmd: click.Command, path: list[str], parent: click.Context | None
) -> list[tuple[str, str]]:
    settings = {**cmd.context_settings, "terminal_width": 100, "max_content_width": 100}
    ctx = click.Context(cmd, info_name=path[-1], parent=parent, **settings)
    out = [(" ".join(path), cmd.get_help(ctx))]
    if isinstance(cmd, click.Group):
        for name in cmd.list_commands(ctx):  # imports every command (lazy groups)
            sub = cmd.get_command(ctx, name)
            assert sub is not None, f"{' '.join(path)} lists {name} but has no such command"
            out += _walk(sub, [*path, name], ctx)
    return out


def render() -> str:
    sections = _walk(noim_cli, ["noim"], None)
    lines = [HEADER, "## Commands\n"]
    lines += [f"- [`{name}`](#{name.replace(' ', '-')})" for name, _ in sections[1:]]
    lines.append("")
    for name, text in sections:
        lines += [f"## {name}", "", "```text", text.rstrip(), "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
