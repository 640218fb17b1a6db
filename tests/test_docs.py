"""The documentation stays true: every table and field is described, the CLI reference is current."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import noim.db.models  # noqa: F401  (register every table)
from noim.cli.reference import render
from noim.db.base import Base
from noim.domain.legal import DECISION_TYPES

DOCS = Path(__file__).resolve().parent.parent / "docs"
README = Path(__file__).resolve().parent.parent / "README.md"


def _section(text: str, table: str) -> str | None:
    m = re.search(r"^### `" + re.escape(table) + r"`\s*$", text, re.M)
    if not m:
        return None
    end = text.find("\n### ", m.end())
    return text[m.end() : end if end != -1 else len(text)]


def test_data_model_describes_every_table_and_field() -> None:
    text = (DOCS / "data-model.md").read_text(encoding="utf-8")
    missing = []
    for name, table in sorted(Base.metadata.tables.items()):
        section = _section(text, name)
        if section is None:
            missing.append(name)
            continue
        missing += [f"{name}.{c.name}" for c in table.columns if f"`{c.name}`" not in section]
    assert missing == [], f"docs/data-model.md lacks: {', '.join(missing)}"
    assert "```mermaid" in text and "erDiagram" in text
    assert all(f"`{d.code}`" in text for d in DECISION_TYPES)


def test_cli_reference_is_current() -> None:
    current = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert current == render(), (
        "docs/cli.md is out of date: run `python -m noim.cli.reference > docs/cli.md`"
    )


def test_readme_opens_with_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    first_block = text.split("```")[1]
    lines = [line.split("#")[0].strip() for line in first_block.strip().splitlines()[0:]]
    assert [line for line in lines if line] == ["make demo", "make test"]


def _readme_commands() -> list[list[str]]:
    import shlex

    out = []
    for line in README.read_text(encoding="utf-8").splitlines():
        if not line.startswith("$ "):
            continue
        words = shlex.split(line[2:])
        while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
            words.pop(0)
        if words and words[0] == "noim":
            out.append(words[1:])
    return out


def test_readme_tour_names_real_commands_and_options() -> None:
    """Every `$ noim ...` line of the README resolves to a command with those options."""
    import click

    from noim.cli import noim_cli

    commands = _readme_commands()
    assert len(commands) > 30
    for words in commands:
        cmd: click.Command = noim_cli
        rest = list(words)
        while isinstance(cmd, click.Group) and rest:
            sub = cmd.get_command(click.Context(cmd), rest[0])
            if sub is None:
                break
            cmd = sub
            rest.pop(0)
        assert not isinstance(cmd, click.Group), f"README: `noim {' '.join(words)}` is no command"
        known = {
            o for p in cmd.params for o in getattr(p, "opts", []) + getattr(p, "secondary_opts", [])
        }
        unknown = [w for w in rest if w.startswith("--") and w not in known]
        assert unknown == [], f"README: `noim {' '.join(words)}`: no option {unknown}"


def test_readme_tour_blocks_are_recorded() -> None:
    """The tour's blocks (scripts/readme_tour.py) are all in the README, none empty."""
    import importlib.util

    path = README.parent / "scripts" / "readme_tour.py"
    spec = importlib.util.spec_from_file_location("readme_tour", path)
    assert spec is not None and spec.loader is not None
    tour = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = tour  # dataclasses look their module up there
    spec.loader.exec_module(tour)
    text = README.read_text(encoding="utf-8")
    for name, _steps in tour.tour():
        m = re.search(rf"<!-- tour:{re.escape(name)} -->\n```\n(.*?)^```$", text, re.S | re.M)
        assert m is not None, f"README.md lacks the tour block {name!r}"
        assert m.group(1).startswith("$ "), f"README.md tour block {name!r} is not recorded"
