"""Freeze the data and write both interim reports from that freeze (what ``noim demo`` ends with,
and what a trial team does before a DMC meeting)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from noim.db.session import Database
from noim.domain.roles import Actor
from noim.reports import render
from noim.services import freezes


@dataclass(frozen=True)
class Published:
    freeze_id: int
    freeze_sha256: str
    open_files: list[Path]
    closed_files: list[Path]
    #: the closed report's primary analysis (one row: estimate, lower, upper, p ...), if any
    primary: dict[str, Any]


def freeze_and_report(db: Database, actor: Actor, out: Path, *, label: str) -> Published:
    """Create a data freeze, then write the open report to ``out/open`` and the closed one to
    ``out/closed``, both read from that freeze (so re-running gives the same tables)."""
    info = freezes.create_freeze(db, actor, label=label)
    freeze = str(info.id)
    _open, open_files = render.produce(db, actor, closed=False, out=out / "open", freeze=freeze)
    closed, closed_files = render.produce(db, actor, closed=True, out=out / "closed", freeze=freeze)
    table = closed.tables().get("primary_analysis")
    primary = table.iloc[0].to_dict() if table is not None and len(table) else {}
    return Published(info.id, info.content_sha256, open_files, closed_files, primary)
