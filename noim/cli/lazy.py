"""Command groups that import a command's module only when that command is used.

``noim --help`` lists every command with its one-line help from a table
(``noim.cli.commands``) without importing the commands' modules, their services or
SQLAlchemy; ``noim family show`` imports ``noim.cli.records`` and what it needs,
nothing else.  A test checks that each table entry names a real command whose own
short help is the one in the table (``tests/test_cli_startup.py``).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import click


@dataclass(frozen=True)
class Lazy:
    """Where a command lives (``"package.module:attribute"``) and its one-line help."""

    target: str
    help: str

    def load(self, name: str) -> click.Command:
        module_name, _, attribute = self.target.partition(":")
        cmd = getattr(importlib.import_module(module_name), attribute, None)
        if not isinstance(cmd, click.Command) or cmd.name != name:
            raise TypeError(
                f"the command table names {self.target} for `{name}`, which is "
                f"{'no click command' if not isinstance(cmd, click.Command) else f'the command {cmd.name!r}'}; "
                f"expected the command {name!r}"
            )
        return cmd


class LazyGroup(click.Group):
    """A group whose commands are its own plus those of a ``lazy`` table, loaded on use."""

    def __init__(self, *args: Any, lazy: Mapping[str, Lazy] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy: dict[str, Lazy] = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            self.add_command(self.lazy[cmd_name].load(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def listed_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command as ``--help`` lists it: a stand-in with the table's help if not loaded."""
        if cmd_name not in self.commands and cmd_name in self.lazy:
            return click.Command(cmd_name, help=self.lazy[cmd_name].help)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's listing of the commands, from the table for the commands not loaded."""
        commands = [
            (name, cmd)
            for name in self.list_commands(ctx)
            if (cmd := self.listed_command(ctx, name)) is not None and not cmd.hidden
        ]
        if commands:
            limit = formatter.width - 6 - max(len(name) for name, _ in commands)
            with formatter.section("Commands"):
                formatter.write_dl(
                    [(name, cmd.get_short_help_str(limit)) for name, cmd in commands]
                )
