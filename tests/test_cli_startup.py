"""Start-up cost: what ``noim --help`` and one-record commands import, and the command table.

The commands are listed in ``noim.cli.commands`` and imported only when used
(``noim.cli.lazy``).  These tests run commands in a fresh interpreter, as a user does, and
look at ``sys.modules`` afterwards; and they check that the table is the truth about the
commands (each entry names the command with that name and that short help, and no command
is left out of it).
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
from click.testing import CliRunner

import noim
import noim.cli
from noim.cli import noim_cli
from noim.cli.lazy import LazyGroup
from tests.test_cli import ALL_COMMANDS, run
from tests.test_cli_visits import _randomised

ROOT = Path(noim.__file__).resolve().parent.parent

#: runs ``noim ARGS`` for each ARGS of argv[1] (JSON) in one interpreter, then writes the exit
#: codes and the names in ``sys.modules`` to argv[2]
DRIVER = """
import json, sys
from noim.cli import noim_cli
codes = []
for args in json.loads(sys.argv[1]):
    try:
        codes.append(noim_cli.main(args, prog_name="noim", standalone_mode=False) or 0)
    except Exception as exc:
        codes.append(f"{type(exc).__name__}: {exc}")
with open(sys.argv[2], "w") as out:
    json.dump({"codes": codes, "modules": sorted(sys.modules)}, out)
"""

#: what no one-record command may import (the analysis, report, web and migration stacks)
HEAVY = ("numpy", "pandas", "scipy", "statsmodels", "matplotlib", "jinja2", "starlette")
HEAVY += ("alembic", "mako", "uvicorn", "argon2")


def in_fresh_interpreter(tmp_path: Path, *commands: list[str]) -> tuple[list[Any], set[str], str]:
    """Run ``commands`` in a new Python process: their exit codes, the modules it imported and
    what it wrote to standard error."""
    out = tmp_path / "modules.json"
    env = {k: v for k, v in os.environ.items() if k not in ("NOIM_DEBUG", "NOIM_USER")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(list(commands)), str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text(encoding="utf-8"))
    return result["codes"], set(result["modules"]), done.stderr


def loaded(modules: set[str], *packages: str) -> list[str]:
    """The ``packages`` (or their submodules) among ``modules``."""
    return sorted(p for p in packages if any(m == p or m.startswith(p + ".") for m in modules))


# --------------------------------------------------------------------------- what is imported


def test_help_and_version_import_no_command_module(tmp_path: Path) -> None:
    codes, modules, errors = in_fresh_interpreter(tmp_path, ["--help"], ["--version"])
    assert codes == [0, 0], errors
    assert {m for m in modules if m.startswith("noim.cli.")} == {
        "noim.cli.common",
        "noim.cli.commands",
        "noim.cli.lazy",
    }
    assert loaded(modules, "noim.services", "noim.db", "noim.web", "noim.stats") == []
    assert loaded(modules, "sqlalchemy", "rich", *HEAVY) == []


def test_one_record_commands_import_no_heavy_library(db_url: str, tmp_path: Path) -> None:
    """family show, child add, consent add, placement move, visit complete, followups due."""
    fam, child = _randomised(db_url)  # a Glasgow family randomised today, its boy in care
    base = ["--database", db_url, "--user", "coord_gla"]
    placed = run(*base, "placement", "add", child, "--from", "2024-02-01", "--type", "foster")
    assert placed.exit_code == 0, placed.stderr
    born, entered = ("--dob", "2023-01-05"), ("--entered-care", "2024-02-01")
    added = run(*base, "child", "add", fam, *born, "--sex", "female", *entered, "--json")
    assert added.exit_code == 0, added.stderr
    sister = json.loads(added.output)["trial_id"]
    codes, modules, errors = in_fresh_interpreter(
        tmp_path,
        [*base, "family", "show", fam],
        [*base, "child", "add", fam, *born, "--sex", "male", *entered],
        [*base, "consent", "add", sister, "--by", "local_authority", "--form-version", "v3",
         "--on", "2024-03-03"],
        [*base, "placement", "move", child, "--on", "2024-05-01", "--type", "kinship",
         "--reason", "planned_move"],
        [*base, "visit", "complete", child, "baseline", "--on", "2024-06-01"],
        [*base, "followups", "due"],
    )  # fmt: skip
    assert codes == [0] * 6, errors
    assert loaded(modules, *HEAVY) == []
    assert "noim.cli.records" in modules and "sqlalchemy" in modules  # they did run


# --------------------------------------------------------------------------- the command table


def lazy_groups() -> list[tuple[str, LazyGroup]]:
    """Every group with a command table: the root and the groups it names."""
    groups: list[tuple[str, LazyGroup]] = [("noim", noim_cli)]
    groups += [
        (f"noim {' '.join(path)}", cmd) for path, cmd in ALL_COMMANDS if isinstance(cmd, LazyGroup)
    ]
    return groups


def test_every_table_entry_is_the_command_it_names() -> None:
    """Its name, and the short help ``--help`` lists, at any width (the table cannot go stale)."""
    entries = 0
    for where, group in lazy_groups():
        for name, entry in group.lazy.items():
            cmd = entry.load(name)  # TypeError when the target is not the command `name`
            assert not cmd.hidden, f"{where} {name} is hidden but listed"
            stand_in = click.Command(name, help=entry.help)
            for width in (20, 45, 60, 80, 100, 10_000):
                assert stand_in.get_short_help_str(width) == cmd.get_short_help_str(width), (
                    f"the command table's help for `{where} {name}` is not the command's own: "
                    f"{entry.help!r} vs {cmd.get_short_help_str(10_000)!r} (noim/cli/commands.py)"
                )
            entries += 1
    assert entries >= 40


def test_every_command_defined_is_reachable() -> None:
    """A command defined in noim/cli but named by no table (or group) would be lost."""
    reachable = {id(noim_cli)} | {id(cmd) for _path, cmd in ALL_COMMANDS}
    defined: dict[str, click.Command] = {}
    for info in pkgutil.iter_modules(noim.cli.__path__, "noim.cli."):
        module = importlib.import_module(info.name)
        for attribute, value in vars(module).items():
            defined_here = getattr(getattr(value, "callback", None), "__module__", None)
            if isinstance(value, click.Command) and defined_here == module.__name__:
                defined[f"{info.name}:{attribute}"] = value
    groups = [c for c in defined.values() if isinstance(c, click.Group)]
    while groups:  # and the commands their modules add to them (e.g. built in a loop)
        group = groups.pop()
        for sub in group.commands.values():
            defined.setdefault(f"{group.name} {sub.name}", sub)
            if isinstance(sub, click.Group):
                groups.append(sub)
    lost = sorted(where for where, cmd in defined.items() if id(cmd) not in reachable)
    assert lost == [], f"commands no `noim ...` reaches (add them to noim/cli/commands.py): {lost}"
    assert len(defined) > 100


def test_the_root_has_no_command_outside_the_table() -> None:
    """Every `noim NAME` is in the table, so that `noim --help` lists it without loading it."""
    assert len(ALL_COMMANDS) > 100  # every command's module is loaded
    assert set(noim_cli.commands) <= set(noim_cli.lazy)


def test_help_from_the_table_is_the_help_of_the_loaded_commands(tmp_path: Path) -> None:
    """``noim GROUP --help`` in a fresh interpreter (from the table) equals it with every
    command loaded (from the commands themselves)."""
    assert len(ALL_COMMANDS) > 100  # every command's module is loaded in this process
    listed = [[*where.split()[1:], "--help"] for where, _group in lazy_groups()]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    for args in listed:
        fresh = subprocess.run(
            [sys.executable, "-c", "from noim.cli import main; main()", *args],
            capture_output=True,
            text=True,
            env={**env, "COLUMNS": "80"},
            timeout=120,
            check=False,
        )
        assert fresh.returncode == 0, fresh.stderr
        # click formats for 2 columns less than the terminal (78 in the 80 columns above)
        loaded_help = CliRunner().invoke(noim_cli, args, prog_name="noim", terminal_width=78)
        assert fresh.stdout == loaded_help.output, f"noim {' '.join(args)}"
