"""Calendar durations used by visit schedules: ``"4w"``, ``"15m"``, ``"-2w"``, ``"90d"``, ``"2y"``.

Months and years are calendar months: 15 months after 31 January is the last
day of April of the next year (the day is clamped to the month's length).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

_RE = re.compile(r"^\s*([+-]?)(\d{1,4})\s*([dwmy])\s*$")
_UNIT_WORDS = {"d": "day", "w": "week", "m": "month", "y": "year"}


@dataclass(frozen=True, order=True)
class Duration:
    """A signed calendar duration of days, weeks, months or years."""

    amount: int
    unit: str  # one of d, w, m, y

    @classmethod
    def parse(cls, text: str) -> Duration:
        m = _RE.match(str(text))
        if not m:
            raise ValueError(
                f"duration {text!r}: expected a whole number and a unit d, w, m or y, "
                "e.g. '4w', '15m', '-2w'"
            )
        sign = -1 if m.group(1) == "-" else 1
        return cls(sign * int(m.group(2)), m.group(3))

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"

    def describe(self) -> str:
        word = _UNIT_WORDS[self.unit]
        n = abs(self.amount)
        return f"{n} {word}{'' if n == 1 else 's'}" + (" before" if self.amount < 0 else "")

    def add_to(self, start: date) -> date:
        """Return ``start`` moved by this duration."""
        if self.unit == "d":
            return start + timedelta(days=self.amount)
        if self.unit == "w":
            return start + timedelta(weeks=self.amount)
        months = self.amount * (12 if self.unit == "y" else 1)
        return add_months(start, months)

    def approx_days(self) -> float:
        """Length in days, months taken as 30.4375 days (only for ordering checks)."""
        per = {"d": 1.0, "w": 7.0, "m": 30.4375, "y": 365.25}[self.unit]
        return self.amount * per


def add_months(start: date, months: int) -> date:
    """Add calendar months, clamping the day to the target month's length."""
    index = start.year * 12 + (start.month - 1) + months
    year, month0 = divmod(index, 12)
    last = calendar.monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, min(start.day, last))


def months_between(earlier: date, later: date) -> int:
    """Completed calendar months from ``earlier`` to ``later`` (age in months)."""
    months = (later.year - earlier.year) * 12 + (later.month - earlier.month)
    if later.day < earlier.day:
        # not yet reached the same day of the month; the month-end clamp counts as reached
        last = calendar.monthrange(later.year, later.month)[1]
        if not (later.day == last and earlier.day > last):
            months -= 1
    return months
