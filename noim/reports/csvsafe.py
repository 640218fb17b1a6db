"""CSV files whose cells a spreadsheet cannot run as formulas (OWASP "CSV injection").

A spreadsheet program opening a CSV file reads a cell that starts with ``=``, ``+``, ``-``
or ``@`` as a formula (``=cmd|' /C calc'!A0``, ``=HYPERLINK(...)``), and some skip a
leading tab or carriage return before deciding.  Free text typed into noim (a withdrawal
reason, an SAE description, a deviation category) ends up in report tables, so every CSV
noim writes goes through ``write_csv``, which neutralises such cells as OWASP advises:
the cell is prefixed with a single quote (``'=cmd|...``), which spreadsheets show as text.

* Only text cells are changed.  Numeric, boolean and date columns are written as they are,
  so ``-1.5`` in a numeric column stays the number ``-1.5``.
* A text cell that is exactly a plain decimal number (``-1``, ``+2.5``, ``-1e-3``) is also
  left as it is: a spreadsheet reads it as that number and no formula can be made of it.
  Any other text starting with one of the characters is prefixed, e.g. ``-0.5 to 1.2``
  becomes ``'-0.5 to 1.2``.
* Column names are text cells too.

The quoting of separators, quotes and line breaks inside cells is the CSV writer's
(pandas ``to_csv``), as before.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FORMULA_STARTS", "neutralise", "neutralise_cell", "safe_frame", "write_csv"]

#: the first characters that make a spreadsheet read a cell as a formula (OWASP)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def neutralise(text: str) -> str:
    """``text`` prefixed with ``'`` when a spreadsheet would read it as a formula."""
    if text.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def neutralise_cell(value: Any) -> Any:
    """A cell's value as written: text neutralised, anything else unchanged."""
    return neutralise(value) if isinstance(value, str) else value


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells and column names are neutralised (numeric,
    boolean and date columns untouched)."""
    import pandas as pd  # heavy: only when writing

    out = frame.copy()
    for position in range(frame.shape[1]):
        series = frame.iloc[:, position]
        if (
            pd.api.types.is_numeric_dtype(series)
            or pd.api.types.is_bool_dtype(series)
            or pd.api.types.is_datetime64_any_dtype(series)
        ):
            continue
        out.isetitem(position, series.astype(object).map(neutralise_cell))
    out.columns = [neutralise_cell(c) for c in frame.columns]
    return out


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` (no index) to ``path`` with every text cell neutralised: fixed float
    format and ``\\n`` line ends, so two runs over the same data give the same bytes."""
    safe_frame(frame).to_csv(path, index=False, float_format="%.10g", lineterminator="\n")
    return path
