"""Forms: turning posted text into typed values, and a service's errors back into fields.

The web layer parses text (dates, whole numbers, choices) and nothing more: every rule of the
trial is the services'. A ``ValidationError``'s problems are shown beside the fields they name;
the rejected form keeps what the user typed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from noim.domain.exceptions import NoimError, Problem, ValidationError

_DMY = re.compile(r"^\s*(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})\s*$")
_ISO = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})\s*$")


def fmt_date(value: date | None) -> str:
    """A date as the UK trial writes it: dd/mm/yyyy ('' for none)."""
    return "" if value is None else f"{value.day:02d}/{value.month:02d}/{value.year:04d}"


def parse_date(text: str | None, field_name: str, *, required: bool = False) -> date | None:
    """``text`` typed as dd/mm/yyyy (or yyyy-mm-dd, as a date picker sends it)."""
    text = (text or "").strip()
    if not text:
        if required:
            raise ValidationError(Problem("form", field_name, "", "WEB-004", "a date"))
        return None
    m = _DMY.match(text)
    try:
        if m:
            return date(int(m.group(3)), int(m.group(2)), int(m.group(1)))
        m = _ISO.match(text)
        if m:
            return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        pass
    raise ValidationError(
        Problem("form", field_name, text, "WEB-001", "a date as dd/mm/yyyy, e.g. 31/01/2026")
    )


def parse_int(text: str | None, field_name: str, *, required: bool = False) -> int | None:
    text = (text or "").strip()
    if not text:
        if required:
            raise ValidationError(Problem("form", field_name, "", "WEB-004", "a whole number"))
        return None
    if re.fullmatch(r"[+-]?\d{1,12}", text):
        return int(text)
    raise ValidationError(Problem("form", field_name, text, "WEB-002", "a whole number"))


def parse_choice(
    text: str | None, field_name: str, choices: Iterable[str], *, required: bool = False
) -> str | None:
    text = (text or "").strip()
    allowed = list(choices)
    if not text:
        if required:
            raise ValidationError(
                Problem("form", field_name, "", "WEB-004", f"one of {', '.join(allowed)}")
            )
        return None
    if text in allowed:
        return text
    raise ValidationError(
        Problem("form", field_name, text, "WEB-003", f"one of {', '.join(allowed)}")
    )


def require_text(text: str | None, field_name: str, what: str = "a value") -> str:
    value = (text or "").strip()
    if not value:
        raise ValidationError(Problem("form", field_name, "", "WEB-004", what))
    return value


class Collector:
    """Parses several fields and reports every problem at once.

    >>> c = Collector(); on = c.date("on", form.get("on")); c.raise_if_any()
    """

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ValidationError as exc:
            self.problems.extend(exc.problems)
            return None

    def date(self, name: str, text: str | None, *, required: bool = False) -> date | None:
        return self._run(parse_date, text, name, required=required)  # type: ignore[no-any-return]

    def int(self, name: str, text: str | None, *, required: bool = False) -> int | None:
        return self._run(parse_int, text, name, required=required)  # type: ignore[no-any-return]

    def choice(
        self, name: str, text: str | None, choices: Iterable[str], *, required: bool = False
    ) -> str | None:
        return self._run(parse_choice, text, name, choices, required=required)  # type: ignore[no-any-return]

    def text(self, name: str, text: str | None, what: str = "a value") -> str:
        return self._run(require_text, text, name, what) or ""

    def raise_if_any(self) -> None:
        if self.problems:
            raise ValidationError(self.problems)


@dataclass
class FormState:
    """What a form shows: the values typed, errors beside fields, and errors for the form."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    summary: list[str] = field(default_factory=list)

    @classmethod
    def empty(cls, **defaults: object) -> FormState:
        return cls(values={k: "" if v is None else str(v) for k, v in defaults.items()})

    @classmethod
    def of(cls, values: Mapping[str, str]) -> FormState:
        return cls(values=dict(values))

    @classmethod
    def failed(
        cls,
        values: Mapping[str, str],
        exc: NoimError,
        fields: Mapping[str, str] | None = None,
        known: Sequence[str] | None = None,
    ) -> FormState:
        """The form again with ``exc``'s problems beside the fields they name.

        ``fields`` maps a service's field names to the form's; a problem whose field the
        form has not (``known``: the form's field names; default: those posted) goes to the
        summary.
        """
        state = cls(values=dict(values))
        names = set(known) if known is not None else set(values)
        mapping = dict(fields or {})
        if isinstance(exc, ValidationError):
            for p in exc.problems:
                name = mapping.get(p.field, p.field)
                message = problem_text(p)
                if name in names:
                    state.errors.setdefault(name, []).append(message)
                else:
                    state.summary.append(
                        f"{p.record}, {p.field}: {message}" if p.field else message
                    )
        else:
            state.summary.append(str(exc))
        return state

    @property
    def failed_any(self) -> bool:
        return bool(self.errors or self.summary)

    def get(self, name: str, default: str = "") -> str:
        return self.values.get(name, default)

    def error(self, name: str) -> str:
        return " ".join(self.errors.get(name, []))


def problem_text(p: Problem) -> str:
    """A problem as shown beside its field: what was expected, what was received, the rule."""
    shown = "" if p.value in (None, "") else f" (got {p.value!r})"
    return f"Expected {p.expected}{shown}. [rule {p.rule}]"
