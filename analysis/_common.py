"""What every analysis script shares: arguments, the database and actor, writing outputs.

A script does::

    from _common import start

    run = start("02_baseline", __doc__)
    kids = run.children()          # extract.children(db, actor, as_of=...), ITT rows kept
    run.table("baseline", frame, "Baseline characteristics by arm")
    run.finish()

``start`` parses ``--database URL --out DIR [--user NAME] [--as-of DATE | --freeze ID]`` (the user as the
noim CLI resolves it: ``--user``, else ``NOIM_USER``, else the operating-system user),
opens the database (refusing one whose schema is not current), resolves the actor (who
needs the ``analyse`` capability: extraction refuses anyone else) and creates the output
folder.

A blinded actor (no ``see_arm`` capability) runs on **dummy arms** (``noim.extract.dummy``):
every dataset's ``arm`` (the family's masked code) is replaced by a seeded two-arm coding of
the families (``--dummy-seed``), and every output says "DUMMY ARMS: not the allocation".
An actor who may see arms gets the allocated arms through the same code.  ``table`` writes ``<name>.csv`` and ``<name>.md``; ``figure`` writes ``<name>.png``
and ``<name>.svg``; ``finish`` writes ``provenance.json`` (database URL with the password
hidden, noim version, as-of date, the data freeze read (id, label, content hash) or
null for live data, script, who ran it and whether arms were masked, and the
SHA-256 of every output file) and ``report.md`` (every table in order, with the notes).

Tables are written deterministically (fixed float formatting, no timestamps), so two runs on
the same data give byte-identical CSV and Markdown files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.engine import make_url

import noim
from noim import extract
from noim.config import Settings
from noim.db import migrate
from noim.db.session import Database
from noim.domain.exceptions import NoimError
from noim.domain.roles import Actor, Capability
from noim.domain.trialdef import TrialDefinition, parse_definition
from noim.extract import dummy
from noim.reports import figures, summaries
from noim.reports.csvsafe import write_csv
from noim.reports.summaries import (
    PRIMARY,
    PRIMARY_BASELINE,
    PRIMARY_DUE,
    comparison_row,
    mean_sd_by,
    not_estimable,
)
from noim.services import freezes
from noim.services.freezes import FreezeInfo
from noim.services.users import resolve_actor

#: days shown as months in figures and tables
MONTH = figures.DAYS_PER_MONTH
#: seed of every random procedure (bootstrap, imputation) unless --seed is given
DEFAULT_SEED = 20260401


def parse_args(description: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(description or "").strip().splitlines()[0])
    parser.add_argument(
        "--database", metavar="URL", help="database URL (default: $NOIM_DATABASE_URL)"
    )
    parser.add_argument("--out", metavar="DIR", required=True, type=Path, help="output folder")
    parser.add_argument(
        "--user", metavar="NAME", help="acting user (default: $NOIM_USER, else the OS user)"
    )
    parser.add_argument(
        "--as-of",
        metavar="DATE",
        type=date.fromisoformat,
        help="censoring date, YYYY-MM-DD (default: today)",
    )
    parser.add_argument(
        "--freeze",
        metavar="ID",
        type=int,
        help="read the datasets of data freeze ID (`noim freeze list`) instead of the live "
        "data; the data are then as of the freeze's date (not with --as-of)",
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"seed of random procedures ({DEFAULT_SEED})"
    )
    parser.add_argument(
        "--dummy-seed",
        type=int,
        default=dummy.DEFAULT_SEED,
        help="seed of the dummy arm coding a blinded user runs on "
        f"({dummy.DEFAULT_SEED}; ignored for roles that see the arms)",
    )
    return parser.parse_args(argv)


def hide_password(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


# --------------------------------------------------------------------------- formatting


def _cell(value: Any) -> str:
    """A value as text: floats with at most 4 significant digits (1 decimal from 1000 on)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if math.isinf(value):
            return "not reached" if value > 0 else "-inf"
        if value != 0 and (abs(value) < 1e-4):
            return f"{value:.2e}"
        if abs(value) >= 1000:
            return f"{value:.1f}"
        return f"{value:.4g}"
    if isinstance(value, pd.Timestamp):
        return str(value.date().isoformat())
    return str(value)


def markdown(df: pd.DataFrame) -> str:
    """A GitHub-style Markdown table of ``df`` (its index is not written: reset it first)."""
    header = [str(c) for c in df.columns]
    if not header:
        return "(no data)\n"
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in df.itertuples(index=False):
        cells = [_cell(v).replace("|", "\\|").replace("\n", " ") for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def pvalue(p: float) -> str:
    if p is None or math.isnan(p):
        return ""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


# --------------------------------------------------------------------------- the run


@dataclass
class Run:
    """One run of one script: the database, the actor, the output folder and what was written."""

    script: str
    title: str
    db: Database
    actor: Actor
    as_of: date
    out: Path
    seed: int
    database_url: str
    freeze: FreezeInfo | None = None
    dummy_seed: int = dummy.DEFAULT_SEED
    outputs: list[Path] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)
    arm_coding: str = "unknown"
    _dummy: dict[str, str] | None = field(default=None, init=False, repr=False)
    #: warnings raised while the script runs; the statistics' ones go beside the next table
    caught: list[warnings.WarningMessage] = field(default_factory=list)
    _definition: TrialDefinition | None = None
    _definition_read: bool = False

    @property
    def dummy(self) -> bool:
        """Whether this run is on dummy arms: the actor may not see the arms."""
        return not self.actor.can(Capability.SEE_ARM)

    # ----------------------------------------------------------- data
    def _when(self) -> dict[str, Any]:
        return {"freeze": self.freeze.id} if self.freeze is not None else {"as_of": self.as_of}

    def _read(self, name: str, **kwargs: Any) -> pd.DataFrame:
        df: pd.DataFrame = getattr(extract, name)(self.db, self.actor, **self._when(), **kwargs)
        return df

    def definition(self) -> TrialDefinition | None:
        """The trial definition (from the data freeze with ``--freeze``), read once; None
        from a freeze made before freezes held it (arms then in sorted order, said so)."""
        if not self._definition_read:
            self._definition_read = True
            try:
                trial = extract.bundle(self.db, self.actor, ["trial"], **self._when())["trial"]
            except NoimError:
                return None
            text = str(trial["definition"].iloc[0])
            self._definition = parse_definition(text, "trial definition", stored=True)
        return self._definition

    def dummy_coding(self) -> dict[str, str]:
        """The families' dummy arms (``noim.extract.dummy.coding``), made once per run from
        the ``children`` dataset as this (blinded) actor extracts it: family IDs and sites."""
        if self._dummy is None:
            self._dummy = dummy.coding(self._read("children"), self.dummy_seed)
        return self._dummy

    def extract(self, name: str, **kwargs: Any) -> pd.DataFrame:
        """``noim.extract.<name>(db, actor, as_of=...)`` (``freeze=ID`` with ``--freeze``),
        noting how arms were coded; allocated arms are ordered control arm first
        (``summaries.order_arms``), so every comparison is intervention minus control; for a
        blinded actor the masked codes in ``arm`` are replaced by the dummy arms
        (``DUMMY-A`` first, in the place of the control arm)."""
        df = self._read(name, **kwargs)
        if "arm_masked" in df.columns and len(df):
            masked = bool(df["arm_masked"].all())
            self.arm_coding = "masked" if masked else "allocated"
            if not masked:
                df = summaries.order_arms(df, self.definition())
        if self.dummy and "arm" in df.columns:
            df = dummy.apply(df, self.dummy_coding())
            self.arm_coding = "dummy"
        return df

    def randomised(self) -> dict[Any, int]:
        """Children randomised per arm (the ``children`` dataset, every row)."""
        return summaries.arm_counts(self.extract("children"))

    def direction(self) -> str:
        """The note saying which arm is subtracted from which (``summaries.direction_note``;
        on dummy arms, ``noim.extract.dummy.DIRECTION``)."""
        if self.dummy:
            return dummy.DIRECTION
        return summaries.direction_note(self.definition())

    def itt(self, df: pd.DataFrame) -> pd.DataFrame:
        """Rows of ``df`` whose child is in the ITT set."""
        kids = self.extract("children")
        ids = set(kids.loc[kids["itt"], "child_id"].tolist())
        return df[df["child_id"].isin(ids)].reset_index(drop=True)

    def arms(self, df: pd.DataFrame) -> list[Any]:
        """The arm levels present: allocated codes in analysis order (control arm first), or
        masked codes (sorted) for blinded roles."""
        arm = df["arm"]
        if isinstance(arm.dtype, pd.CategoricalDtype):
            present = set(arm.dropna().tolist())
            return [c for c in arm.cat.categories.tolist() if c in present]
        return sorted(arm.dropna().unique().tolist())

    def two_arms(self, df: pd.DataFrame) -> bool:
        """Whether arm comparisons can run: exactly two arm levels.  Otherwise (masked codes,
        one per family) the script reports pooled results and says why."""
        levels = self.arms(df)
        if len(levels) == 2:
            return True
        if not levels:
            self.note(f"No randomised children in these data by {self.as_of.isoformat()}.")
            return False
        codes = {"masked": "masked codes", "dummy": "dummy arms"}.get(self.arm_coding, "arm codes")
        self.note(
            f"The `arm` column has {len(levels)} level(s) ({codes}); comparisons by "
            "arm need exactly two, so only pooled (all children) results are reported here."
        )
        return False

    # ----------------------------------------------------------- outputs
    def _path(self, name: str) -> Path:
        return self.out / name

    def note(self, text: str) -> None:
        """A paragraph in report.md (in order with the tables)."""
        self.sections.append(text.strip() + "\n")

    def table(self, name: str, df: pd.DataFrame, title: str, notes: Iterable[str] = ()) -> None:
        """Write ``<name>.csv`` and ``<name>.md`` (title, table, notes) and add it to report.md.

        On dummy arms the title is prefixed with the label and the table starts with an
        ``arm_coding`` column holding it (``noim.extract.dummy.label_table``)."""
        frame = df.reset_index(drop=True)
        if self.dummy:
            frame = dummy.label_table(frame)
            title = f"[{dummy.DUMMY_LABEL}] {title}"
        csv_path, md_path = self._path(f"{name}.csv"), self._path(f"{name}.md")
        write_csv(frame, csv_path)  # text cells a spreadsheet would run as formulas neutralised
        text = f"## {title}\n\n{markdown(frame)}"
        notes = [*notes, *summaries.warning_notes(self.caught)]  # too few clusters, ...
        if notes:
            text += "\n" + "\n".join(f"* {n}" for n in notes) + "\n"
        md_path.write_text(text, encoding="utf-8")
        self.outputs += [csv_path, md_path]
        self.sections.append(text)

    def figure(self, name: str, fig: Any) -> None:
        """Write ``<name>.png`` and ``<name>.svg`` (on dummy arms, labelled as such)."""
        if self.dummy:
            figures.label(fig, dummy.DUMMY_LABEL)
        self.outputs += figures.save(fig, self._path(name))
        self.sections.append(f"![{name}]({name}.png)\n")

    def finish(self) -> None:
        """Write report.md and provenance.json; close the database."""
        coding = {
            "masked": "masked arm codes (blinded role): `arm` carries no arm information",
            "allocated": "allocated arm codes (unblinded role)",
            "dummy": f"dummy arms (blinded role). {dummy.describe(self.dummy_seed)}",
        }.get(self.arm_coding, "no arm codes (no randomised children in the data read)")
        if self.dummy and self.arm_coding != "dummy":
            coding += f". {dummy.DUMMY_LABEL}: a blinded run uses dummy arms"
        source = (
            f"data freeze {self.freeze.id} ({self.freeze.label}, sha256 "
            f"{self.freeze.content_sha256}), data as of {self.as_of.isoformat()}"
            if self.freeze is not None
            else f"live data as of {self.as_of.isoformat()} (no data freeze)"
        )
        title = f"[{dummy.DUMMY_LABEL}] {self.title}" if self.dummy else self.title
        head = f"# {title}\n\nScript `{self.script}`, {source}; run on {coding}.\n"
        report = self._path("report.md")
        report.write_text("\n".join([head, *self.sections]), encoding="utf-8")
        self.outputs.append(report)
        provenance = {
            "script": self.script,
            "title": self.title,
            "database": hide_password(self.database_url),
            "noim_version": noim.__version__,
            "as_of": self.as_of.isoformat(),
            "freeze": None
            if self.freeze is None
            else {
                "id": self.freeze.id,
                "label": self.freeze.label,
                "content_sha256": self.freeze.content_sha256,
                "created_at": self.freeze.created_at.isoformat(),
                "audit_seq": self.freeze.audit_seq,
            },
            "user": self.actor.name,
            "role": str(self.actor.role),
            "arm_coding": self.arm_coding,
            "arm_label": dummy.DUMMY_LABEL if self.dummy else None,
            "dummy_seed": self.dummy_seed if self.dummy else None,
            "seed": self.seed,
            "python": sys.version.split()[0],
            "run_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
            "files": {
                p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(self.outputs, key=lambda p: p.name)
            },
        }
        self._path("provenance.json").write_text(
            json.dumps(provenance, indent=2) + "\n", encoding="utf-8"
        )
        self.db.dispose()


def start(script: str, doc: str | None, argv: Sequence[str] | None = None) -> Run:
    """Parse the arguments, open the database, resolve the actor, create the output folder.

    Errors (no database, unknown user, a schema that is not current) end the script with
    one line ``error: ...`` and exit code 2.
    """
    args = parse_args(doc or script, argv)
    settings = Settings.resolve(database=args.database, user=args.user)
    path = settings.sqlite_path()
    if path is not None and not path.exists():
        raise SystemExit(f"error: no database at {path}")
    db = Database(settings.database_url)
    if args.freeze is not None and args.as_of is not None:
        db.dispose()
        raise SystemExit("error: give --freeze or --as-of, not both (a freeze has its own date)")
    frozen: FreezeInfo | None = None
    try:
        migrate.require_current(db.engine)
        actor = resolve_actor(db, settings.user_name)
        if args.freeze is not None:
            frozen = freezes.show_freeze(db, actor, args.freeze)
            # refuse a freeze changed behind noim's back before anything is written
            freezes.verify(db, actor, args.freeze).raise_if_failed()
    except NoimError as exc:
        db.dispose()
        raise SystemExit(f"error: {exc}") from None
    args.out.mkdir(parents=True, exist_ok=True)
    title = (doc or script).strip().splitlines()[0].rstrip(".")
    return Run(
        script=script,
        title=title,
        db=db,
        actor=actor,
        as_of=frozen.as_of if frozen is not None else (args.as_of or date.today()),
        freeze=frozen,
        out=args.out,
        seed=args.seed,
        dummy_seed=args.dummy_seed,
        database_url=settings.database_url,
    )


def main(body: Any, script: str, doc: str | None) -> None:
    """Run ``body(run)`` with the plumbing; a NoimError ends with ``error: ...`` (exit 1)."""
    run = start(script, doc)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run.caught = caught
            body(run)
    except NoimError as exc:
        run.db.dispose()
        raise SystemExit(f"error: {exc}") from None
    for w in caught:  # warnings no table took: shown as usual
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    run.finish()


# --------------------------------------------------------------------------- shared pieces


__all__ = [
    "MONTH",
    "PRIMARY",
    "PRIMARY_BASELINE",
    "PRIMARY_DUE",
    "Run",
    "comparison_row",
    "main",
    "mean_sd_by",
    "not_estimable",
    "outcome_data",
    "start",
]


def outcome_data(run: Run) -> pd.DataFrame:
    """One row per child in the ITT set: the wide scores (carer) with sex, site and the
    analysis-set flags, and each child's primary outcome status (observed, missing or not
    yet reached: ``noim.reports.summaries.outcome_data`` with the ``visits`` dataset)."""
    return summaries.outcome_data(
        run.extract("children"), run.extract("scores", wide=True), run.extract("visits"), run.as_of
    )
