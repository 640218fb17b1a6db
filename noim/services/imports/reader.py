"""Reading an import file: UTF-8 CSV (with or without a BOM), its declared settings, and
cell parsers that collect every problem instead of stopping at the first.

A file may start with one settings line beginning with ``#``, for example::

    # noim-import: dates=dmy

``dates=dmy`` (or ``dates=uk``) declares day-first UK dates (``31/01/2024``); without it
dates must be ISO (``2024-01-31``).  Row numbers in problems are the file's line numbers
(the header is line 1, or 2 after a settings line), as a spreadsheet shows them.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, overload

import numpy as np

from noim.domain.exceptions import Problem

DATE_STYLES = ("iso", "dmy")
_DATE_ALIASES = {"iso": "iso", "ymd": "iso", "dmy": "dmy", "uk": "dmy", "day-first": "dmy"}
SETTINGS_PREFIX = "#"


@dataclass
class CsvData:
    """A parsed CSV file held column-wise: ``columns[name][i]`` is row ``i``'s cell (stripped)."""

    source: str
    sha256: str
    header: list[str]
    columns: Mapping[str, list[str]]
    n_rows: int
    #: file line number of the first data row
    first_line: int
    settings: dict[str, str] = field(default_factory=dict)
    #: per column, each row's code and the distinct cells (in no particular order), when
    #: the reader already has them
    codes: dict[str, tuple[np.ndarray, list[str]]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def line(self, i: int) -> int:
        """The file line number of data row ``i`` (0-based)."""
        return self.first_line + i

    def record(self, i: int) -> str:
        return f"row {self.line(i)}"

    def column(self, name: str) -> list[str]:
        """The cells of column ``name`` (all empty when the file has no such column)."""
        return self.columns.get(name) or [""] * self.n_rows

    def cells(self, name: str) -> Sequence[str]:
        """The cells of column ``name`` for reading a few of them (a problem's value):
        ``column(name)`` without making a list of every cell when the codes are at hand."""
        if name in self.codes:
            return _Coded(*self.codes[name])
        return self.column(name)

    def factorized(self, name: str) -> tuple[np.ndarray, list[str]]:
        """Each row's code in column ``name`` and the distinct cells (``uniques[codes[i]]`` is
        row ``i``'s cell; every one is used by some row)."""
        if name in self.codes:
            return self.codes[name]
        import pandas as pd  # heavy: only when needed

        codes, uniques = pd.factorize(np.asarray(self.column(name), dtype=object))
        return codes.astype(np.int64), [str(u) for u in uniques]


def _decode(raw: bytes, source: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ValueError(
            f"{source}: line {line} is not UTF-8 (byte {raw[exc.start]:#04x}); "
            "expected a UTF-8 CSV file (in Excel: Save As 'CSV UTF-8')"
        ) from None


def parse_settings(line: str) -> dict[str, str]:
    """``# noim-import: dates=dmy; kind=assessments`` -> ``{"dates": "dmy", "kind": ...}``."""
    body = line.lstrip(SETTINGS_PREFIX).strip()
    if ":" in body.split("=", 1)[0]:
        body = body.split(":", 1)[1]
    out: dict[str, str] = {}
    for part in body.replace(",", ";").split(";"):
        if "=" in part:
            key, value = part.split("=", 1)
            out[key.strip().lower()] = value.strip().lower()
    return out


def read_csv(path: Path | str, text: str | None = None) -> CsvData:
    """Read ``path`` (or ``text``) into columns; header names are lower-cased and stripped."""
    source = str(path)
    start = 0  # where ``text`` starts in ``raw``
    if text is None:
        raw = Path(path).read_bytes()
        text = _decode(raw, source)
        start = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    else:
        raw = text.encode("utf-8")
    digest = hashlib.sha256(raw).hexdigest()
    settings: dict[str, str] = {}
    first_line = 2
    if text.startswith(SETTINGS_PREFIX):
        first, _, text = text.partition("\n")
        settings = parse_settings(first)
        first_line = 3
        start = raw.find(b"\n", start) + 1 if text else len(raw)
    fast = _read_fast(text, memoryview(raw)[start:])
    if fast is not None:
        data = CsvData(source, digest, fast[0], fast[1], fast[2], first_line, settings, fast[3])
        data.settings["_ragged"] = ""
        return data
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        header = []
    rows = [r for r in reader if any(c.strip() for c in r)]
    width = len(header)
    columns: dict[str, list[str]] = {h: [] for h in header if h}
    ragged: list[int] = []
    for i, r in enumerate(rows):
        if len(r) != width:
            ragged.append(i)
            r = (r + [""] * width)[:width]
        for h, cell in zip(header, r, strict=True):
            if h:
                columns[h].append(cell.strip())
    data = CsvData(source, digest, header, columns, len(rows), first_line, settings)
    data.settings["_ragged"] = ",".join(str(i) for i in ragged)
    return data


Fast = tuple[list[str], Mapping[str, list[str]], int, dict[str, tuple[np.ndarray, list[str]]]]


def _read_fast(text: str, encoded: memoryview) -> Fast | None:
    """The C parser's reading of a plain file (no quotes, every row as wide as the header).

    Gives exactly what the ``csv`` module path gives for such files, about ten times
    faster, and each column's codes (the parser factorizes the cells as it reads them, so
    a million rows make no million strings); None for anything else (quoted cells, ragged
    rows), which the ``csv`` path reads.  ``encoded`` is ``text`` as UTF-8 (the parser
    reads bytes faster than text).
    """
    if '"' in text or len(text) < _FAST_MIN_CHARS:
        return None
    import pandas as pd  # heavy: only for large files

    try:
        frame = pd.read_csv(
            io.BytesIO(encoded),
            header=None,
            dtype="category",
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=True,
            low_memory=False,
        )
    except (ValueError, pd.errors.ParserError):  # a row longer than the header
        return None
    # the C parser pads short rows: each row has at most width - 1 commas (longer rows
    # raise), so the rows are all exactly as wide as the header when the commas add up
    width = frame.shape[1]
    if frame.shape[0] < 2 or text.count(",") != (width - 1) * frame.shape[0]:
        return None
    factors = []
    raw_header = []
    for c in frame.columns:
        column = frame[c].cat
        categories = np.asarray(column.categories.astype(str), dtype=object)
        all_codes = column.codes.to_numpy()  # int8 or int16 for a few values
        raw_header.append(str(categories[all_codes[0]]))
        codes, which = _used(all_codes[1:], len(categories))
        uniques = [str(u).strip() for u in categories[which].tolist()]
        if len(set(uniques)) < len(uniques):  # cells equal once stripped
            merged, kept = pd.factorize(np.asarray(uniques, dtype=object))
            codes, uniques = merged[codes], [str(u) for u in kept]
        factors.append((np.asarray(codes, dtype=np.int64), uniques))
    header = [h.strip().lower() for h in raw_header]
    # wholly blank rows (every cell empty once stripped) are dropped, as the csv path does
    blank = np.ones(frame.shape[0] - 1, dtype=bool)
    for codes, uniques in factors:
        empty = uniques.index("") if "" in uniques else -1
        blank &= codes == empty
    if blank.any():
        keep = ~blank
        factors = [_refactorized(codes[keep], uniques) for codes, uniques in factors]
    codes_of = {h: f for h, f in zip(header, factors, strict=True) if h}
    n = int(factors[0][0].size) if factors else 0
    return header, _Columns(codes_of), n, codes_of


class _Coded(Sequence[str]):
    """A column's cells read through its codes."""

    def __init__(self, codes: np.ndarray, uniques: list[str]) -> None:
        self._codes = codes
        self._uniques = uniques

    def __len__(self) -> int:
        return int(self._codes.size)

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[str]: ...

    def __getitem__(self, i: int | slice) -> str | Sequence[str]:
        if isinstance(i, slice):
            return [self._uniques[c] for c in self._codes[i].tolist()]
        return self._uniques[int(self._codes[i])]


class _Columns(Mapping[str, list[str]]):
    """Columns as lists of cells, each made from the parser's codes when first asked for
    (an import that works on the codes never makes a million-string list)."""

    def __init__(self, factors: dict[str, tuple[np.ndarray, list[str]]]) -> None:
        self._factors = factors
        self._made: dict[str, list[str]] = {}

    def __getitem__(self, name: str) -> list[str]:
        made = self._made.get(name)
        if made is None:
            codes, uniques = self._factors[name]
            made = self._made[name] = np.asarray(uniques, dtype=object)[codes].tolist()
        return made

    def __iter__(self) -> Iterator[str]:
        return iter(self._factors)

    def __len__(self) -> int:
        return len(self._factors)

    def __repr__(self) -> str:
        return f"_Columns({list(self._factors)})"


def _used(codes: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Codes renumbered over the values the rows use (in the values' order), and which
    values those are (the header's cell, for one, may be used by no row)."""
    which = np.flatnonzero(np.bincount(codes, minlength=size))
    renumber = np.zeros(max(size, 1), dtype=np.int64)
    renumber[which] = np.arange(which.size)
    return renumber[codes], which


def _refactorized(codes: np.ndarray, uniques: list[str]) -> tuple[np.ndarray, list[str]]:
    """Codes of a subset of rows, renumbered over the values they use."""
    new, which = _used(codes, len(uniques))
    return new, [uniques[int(k)] for k in which]


_FAST_MIN_CHARS = 200_000


def ragged_problems(data: CsvData, rule: str) -> list[Problem]:
    """Rows whose number of cells differs from the header's."""
    text = data.settings.get("_ragged", "")
    return [
        Problem(
            data.record(int(i)),
            "",
            "(row)",
            rule,
            f"{len(data.header)} cells, one per header column",
        )
        for i in text.split(",")
        if i
    ]


def date_style(data: CsvData, override: str | None) -> str:
    """The date style in force: the caller's override, else the file's declaration, else ISO."""
    declared = override or data.settings.get("dates") or "iso"
    style = _DATE_ALIASES.get(declared.lower())
    if style is None:
        raise ValueError(
            f"{data.source}: dates={declared!r} is not a date style; expected one of "
            + ", ".join(sorted(_DATE_ALIASES))
        )
    return style


def parse_date(text: str, style: str) -> date | None:
    """``text`` as a date in ``style`` (``iso`` or ``dmy``), or None when it is not one."""
    try:
        if style == "dmy" and "/" in text:
            d, m, y = text.split("/")
            if len(y) != 4:
                return None
            return date(int(y), int(m), int(d))
        if len(text) == 10 and text[4] == "-" and text[7] == "-":
            return date.fromisoformat(text)
    except ValueError:
        return None
    return None


class Cells:
    """Parses cells of one file, appending a ``Problem`` for each bad cell.

    Each parser takes the column name and a row index and returns the parsed value
    (None for an empty optional cell or a bad cell).  Parsed values of repeated cells are
    cached, so a million rows with a few thousand distinct dates cost a few thousand parses.
    """

    def __init__(self, data: CsvData, dates: str, rule: str) -> None:
        self.data = data
        self.dates = dates
        self.rule = rule
        self.problems: list[Problem] = []
        self._date_cache: dict[str, date | None] = {}

    def problem(self, i: int, column: str, value: object, expected: str, rule: str = "") -> None:
        self.problems.append(
            Problem(self.data.record(i), column, value, rule or self.rule, expected)
        )

    def _date_expected(self) -> str:
        if self.dates == "dmy":
            return "a date as DD/MM/YYYY (the file declares dates=dmy) or YYYY-MM-DD"
        return "a date as YYYY-MM-DD (declare day-first dates with '# noim-import: dates=dmy')"

    def date_column(self, column: str, required: bool = True, rule: str = "") -> list[date | None]:
        """Every row's date in ``column``."""
        out: list[date | None] = []
        cache = self._date_cache
        for i, text in enumerate(self.data.column(column)):
            if not text:
                if required:
                    self.problem(i, column, "", "a date (the cell is empty)", rule=rule)
                out.append(None)
                continue
            if text in cache:
                value = cache[text]
            else:
                value = cache[text] = parse_date(text, self.dates)
            if value is None:
                self.problem(i, column, text, self._date_expected(), rule=rule)
            out.append(value)
        return out

    def text_column(self, column: str, required: bool = True, rule: str = "") -> list[str | None]:
        out: list[str | None] = []
        for i, text in enumerate(self.data.column(column)):
            if not text:
                if required:
                    self.problem(i, column, "", "a value (the cell is empty)", rule=rule)
                out.append(None)
            else:
                out.append(text)
        return out

    def code_column(
        self,
        column: str,
        allowed: Sequence[str],
        required: bool = True,
        lower: bool = True,
        rule: str = "",
    ) -> list[str | None]:
        """Cells that must be one of ``allowed`` (compared lower-case unless ``lower`` is False)."""
        allowed_set = set(allowed)
        expected = "one of " + ", ".join(allowed)
        out: list[str | None] = []
        for i, text in enumerate(self.data.column(column)):
            value = text.lower() if lower else text
            if not value:
                if required:
                    self.problem(i, column, "", expected + " (the cell is empty)", rule=rule)
                out.append(None)
            elif value not in allowed_set:
                self.problem(i, column, text, expected, rule=rule)
                out.append(None)
            else:
                out.append(value)
        return out

    def int_column(
        self, column: str, required: bool = True, minimum: int | None = None, rule: str = ""
    ) -> list[int | None]:
        out: list[int | None] = []
        for i, text in enumerate(self.data.column(column)):
            if not text:
                if required:
                    self.problem(i, column, "", "a whole number (the cell is empty)", rule=rule)
                out.append(None)
                continue
            try:
                value = int(text)
            except ValueError:
                self.problem(i, column, text, "a whole number", rule=rule)
                out.append(None)
                continue
            if minimum is not None and value < minimum:
                self.problem(i, column, text, f"a whole number of at least {minimum}", rule=rule)
                out.append(None)
                continue
            out.append(value)
        return out

    def bool_column(self, column: str, required: bool = True, rule: str = "") -> list[bool | None]:
        truth = {"yes": True, "y": True, "true": True, "1": True}
        falsity = {"no": False, "n": False, "false": False, "0": False}
        out: list[bool | None] = []
        for i, text in enumerate(self.data.column(column)):
            key = text.lower()
            if not key:
                if required:
                    self.problem(i, column, "", "yes or no (the cell is empty)", rule=rule)
                out.append(None)
            elif key in truth:
                out.append(True)
            elif key in falsity:
                out.append(False)
            else:
                self.problem(i, column, text, "yes or no (also true/false, 1/0)", rule=rule)
                out.append(None)
        return out

    def mapped(
        self,
        column: str,
        values: Sequence[Any],
        lookup: Callable[[Any], Any],
        expected: str,
        rule: str | None = None,
    ) -> list[Any]:
        """Map already-parsed ``values`` through ``lookup``; a None result is a problem."""
        out: list[Any] = []
        cells = self.data.column(column)
        for i, v in enumerate(values):
            if v is None:
                out.append(None)
                continue
            found = lookup(v)
            if found is None:
                self.problem(i, column, cells[i], expected, rule or self.rule)
            out.append(found)
        return out
