"""What text noim stores: no control characters, and no longer than its column allows.

Two rules apply to every text value written to the database, whatever the path (a
single-record command, an import, a bulk write) and whatever the backend, so SQLite and
PostgreSQL refuse the same values with the same message:

* ``TXT-001``: no control characters.  NUL and the other C0 controls (U+0000-U+001F),
  DEL (U+007F) and unpaired surrogates are refused everywhere; tab, newline and carriage
  return are allowed only in free-text fields (reasons, descriptions, notes: the columns
  declared ``Text``), never in a single-line field (codes, references, versions, names).
* ``TXT-002``: a single-line field holds at most as many characters as its column
  (``String(n)``).  Free text has no length limit.

``TextLimit`` describes one field; ``noim.db.text_rules`` derives it from the models for
every column.  Values shown in problems are shortened (``shorten``): a 1 MB cell is
reported by its first characters and its length.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from noim.domain.exceptions import Problem, shorten

__all__ = [
    "CONTROL_RULE",
    "LENGTH_RULE",
    "SINGLE_LINE",
    "TextLimit",
    "any_bad",
    "first_control",
    "problems",
    "shorten",
]

CONTROL_RULE = "TXT-001"
LENGTH_RULE = "TXT-002"

#: characters refused in free text: C0 controls but tab, newline and CR; DEL; lone surrogates
_FREE_TEXT_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
#: characters refused in single-line text: every C0 control, DEL, lone surrogates
_SINGLE_LINE_BAD = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


@dataclass(frozen=True)
class TextLimit:
    """What one text field accepts: at most ``max_length`` characters (None: any length),
    and tab, newline and carriage return only when ``multiline``."""

    max_length: int | None = None
    multiline: bool = False

    @property
    def pattern(self) -> re.Pattern[str]:
        return _FREE_TEXT_BAD if self.multiline else _SINGLE_LINE_BAD

    def control_expected(self, position: int, char: str) -> str:
        found = f"U+{ord(char):04X} at character {position + 1}"
        if self.multiline:
            return (
                "free text without control characters (tab, newline and carriage return "
                f"are allowed); found {found}"
            )
        return f"single-line text without control characters; found {found}"

    def length_expected(self, length: int) -> str:
        return f"at most {self.max_length} characters; got {length}"


#: a field that is not stored as given (a date, a number, a code, a trial ID): one line
SINGLE_LINE = TextLimit()


def first_control(text: str, limit: TextLimit = SINGLE_LINE) -> int | None:
    """Where the first character ``limit`` refuses is in ``text`` (None: there is none)."""
    m = limit.pattern.search(text)
    return None if m is None else m.start()


def problems(record: str, field: str, value: object, limit: TextLimit) -> list[Problem]:
    """The problems of one value (none for a value that is not text, or is fine)."""
    if not isinstance(value, str):
        return []
    out: list[Problem] = []
    at = first_control(value, limit)
    if at is not None:
        out.append(
            Problem(record, field, value, CONTROL_RULE, limit.control_expected(at, value[at]))
        )
    if limit.max_length is not None and len(value) > limit.max_length:
        out.append(Problem(record, field, value, LENGTH_RULE, limit.length_expected(len(value))))
    return out


def any_bad(values: Iterable[str], limit: TextLimit) -> bool:
    """Whether any of ``values`` (strings) breaks ``limit``: one C-level join and search, and
    one ``max`` over the lengths, so a million cells cost milliseconds."""
    values = values if isinstance(values, Sequence) else list(values)
    if not values:
        return False
    if limit.max_length is not None and max(map(len, values)) > limit.max_length:
        return True
    # joined with a character neither pattern refuses: a match lies inside one value
    joined = " ".join(values)
    if joined.isprintable():  # the common case, decided in C: no control character at all
        return False
    return limit.pattern.search(joined) is not None
