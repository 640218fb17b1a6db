"""The documentation stays true: every table and field is described, the CLI reference is current."""

from __future__ import annotations

import re
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
