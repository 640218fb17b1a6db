"""Uploaded import files: a dry-run preview, then the commit of exactly the file previewed.

A browser uploads a CSV file once.  ``preview`` keeps its bytes on the server (in a folder
of its own under the database's directory, or the system's temporary folder for a server
database), keyed by the uploader and the file's SHA-256, and dry-runs the import
(``run_import(..., dry_run=True)``, the code behind ``noim import KIND FILE --dry-run``):
it returns the file's first rows and every problem (row, column, value, rule), or what
the import would add.  ``commit`` takes the SHA-256 the preview gave, reads the kept
bytes, refuses (IMP-100) when they are gone or no longer hash to it (the file changed
since its preview), and runs the import for real.  Which kinds a role may run:
``offered_kinds`` (a kind that reveals the arm is never offered to a blinded role).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from noim.db.session import Database
from noim.domain.exceptions import ImportRejected, NotFound, Problem, ValidationError
from noim.domain.roles import Actor
from noim.services.imports import (
    ImportReport,
    kinds,
    may_import,
    require_may_import,
    run_import,
)
from noim.services.imports.reader import _decode, read_csv

#: kinds whose records tell their reader the family's arm (receipt of the allocated
#: intervention): offered only to roles that see the arm
#: rows shown in a preview
PREVIEW_ROWS = 100
#: kept files older than this are removed when another file is kept
KEEP_SECONDS = 24 * 3600
#: the largest file accepted
MAX_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class KindChoice:
    name: str
    description: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class ImportPreview:
    kind: str
    filename: str
    sha256: str
    header: tuple[str, ...]
    #: the first ``PREVIEW_ROWS`` rows: (file line number, cells in header order)
    rows: tuple[tuple[int, tuple[str, ...]], ...]
    n_rows: int
    #: what a commit would do (None when the file has problems)
    report: ImportReport | None
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return self.report is not None and not self.problems


def offered_kinds(actor: Actor) -> list[KindChoice]:
    """The import kinds ``actor``'s role may run, by name."""
    out = []
    for name, kind in sorted(kinds().items()):
        if not may_import(actor, name, kind):
            continue
        out.append(KindChoice(name, kind.description, (*kind.required, *kind.optional)))
    return out


def _kind(actor: Actor, kind: str) -> str:
    offered = {k.name for k in offered_kinds(actor)}
    if kind not in offered:
        if kind in kinds():
            require_may_import(actor, kind, kinds()[kind])
        raise NotFound(
            f"no import kind {kind!r} for {actor.describe()}; expected one of "
            + (", ".join(sorted(offered)) or "none (the role may run no import)")
        )
    return kind


def upload_folder(db: Database) -> Path:
    """Where uploaded files are kept: beside a SQLite database file, else in the system's
    temporary folder (one folder per database)."""
    url = make_url(db.url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        path = Path(url.database).resolve()
        return path.parent / f".{path.name}.uploads"
    tag = hashlib.sha256(url.render_as_string(hide_password=True).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"noim-uploads-{tag}"


def _safe_name(filename: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(filename.replace("\\", "/")).name).strip("._")
    return (name or "upload")[:100] + ("" if name.lower().endswith(".csv") else ".csv")


def _slot(folder: Path, actor: Actor, sha256: str) -> Path:
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise _changed(sha256, "a SHA-256 (64 hex digits) given by a preview")
    return folder / f"{actor.user_id or actor.name}-{sha256}"


def _changed(value: str, expected: str) -> ImportRejected:
    return ImportRejected(
        "upload", [Problem("uploaded file", "file", value[:64], "IMP-100", expected)]
    )


def _prune(folder: Path) -> None:
    cutoff = time.time() - KEEP_SECONDS
    for entry in folder.iterdir():
        try:
            if entry.is_dir() and entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry, ignore_errors=True)
        except OSError:
            continue


def _keep(folder: Path, actor: Actor, filename: str, content: bytes) -> tuple[str, Path]:
    sha = hashlib.sha256(content).hexdigest()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    _prune(folder)
    slot = _slot(folder, actor, sha)
    slot.mkdir(mode=0o700, exist_ok=True)
    for old in slot.iterdir():
        old.unlink()
    path = slot / _safe_name(filename)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(content)
    return sha, path


def _kept(folder: Path, actor: Actor, sha256: str) -> tuple[Path, bytes]:
    slot = _slot(folder, actor, sha256.strip().lower())
    files = sorted(slot.iterdir()) if slot.is_dir() else []
    if len(files) != 1:
        raise _changed(sha256, "a file you previewed (preview it again: it is no longer kept)")
    content = files[0].read_bytes()
    if hashlib.sha256(content).hexdigest() != sha256.strip().lower():
        raise _changed(sha256, "the file exactly as previewed (it changed since: preview it again)")
    return files[0], content


def _text(path: Path, content: bytes) -> str:
    try:
        return _decode(content, path.name)
    except ValueError as exc:
        raise ImportRejected(path.name, [Problem(path.name, "", "", "IMP-001", str(exc))]) from None


def preview(
    db: Database,
    actor: Actor,
    kind: str,
    filename: str,
    content: bytes,
    *,
    folder: Path | None = None,
    dates: str | None = None,
) -> ImportPreview:
    """Keep ``content`` and dry-run it as ``kind``: its first rows and problems, or the
    counts a commit would add.  Nothing is written to the database."""
    kind = _kind(actor, kind)
    if not content or len(content) > MAX_BYTES:
        expected = f"a file that is not empty, of at most {MAX_BYTES // (1024 * 1024)} MB"
        raise ValidationError(
            Problem(
                "uploaded file", "file", f"{filename} ({len(content)} bytes)", "IMP-001", expected
            )
        )
    sha, path = _keep(folder or upload_folder(db), actor, filename, content)
    try:
        text = _text(path, content)
    except ImportRejected as exc:
        return ImportPreview(kind, path.name, sha, (), (), 0, None, tuple(exc.problems))
    data = read_csv(path.name, text=text)
    shown = min(data.n_rows, PREVIEW_ROWS)
    rows = tuple(
        (data.line(i), tuple(data.column(h)[i] if h else "" for h in data.header))
        for i in range(shown)
    )
    report: ImportReport | None = None
    problems: tuple[Problem, ...] = ()
    try:
        report = run_import(db, actor, kind, path.name, dry_run=True, dates=dates, text=text)
    except ImportRejected as exc:
        problems = tuple(exc.problems)
    return ImportPreview(
        kind=kind,
        filename=path.name,
        sha256=sha,
        header=tuple(data.header),
        rows=rows,
        n_rows=data.n_rows,
        report=report,
        problems=problems,
    )


def commit(
    db: Database,
    actor: Actor,
    kind: str,
    sha256: str,
    *,
    folder: Path | None = None,
    dates: str | None = None,
) -> ImportReport:
    """Import the file kept by ``preview`` under ``sha256`` as ``kind``; IMP-100 when it is
    gone or changed since.  ``ImportRejected`` (nothing written) when any row is bad."""
    kind = _kind(actor, kind)
    path, content = _kept(folder or upload_folder(db), actor, sha256)
    report = run_import(db, actor, kind, path.name, dates=dates, text=_text(path, content))
    shutil.rmtree(path.parent, ignore_errors=True)
    return report
