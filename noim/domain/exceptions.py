"""Every error noim raises on purpose.

Each class names a rule of the trial or of the system.  Messages say what was
received, what was expected and where, so the CLI can print ``str(error)`` as
its one-line message.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: a text value longer than this is shown shortened in a problem (``shorten``) ...
SHOWN_MAX = 80
#: ... by its first characters and its length
SHOWN_KEEP = 40


def shorten(value: object) -> object:
    """``value`` as a problem shows it: text longer than ``SHOWN_MAX`` characters as its first
    ``SHOWN_KEEP`` characters and its length (never a megabyte in an error message)."""
    if isinstance(value, str) and len(value) > SHOWN_MAX:
        return f"{value[:SHOWN_KEEP]}… ({len(value)} characters)"
    return value


class NoimError(Exception):
    """Base class: an error the user can act on (no traceback is shown)."""

    exit_code = 1


@dataclass(frozen=True)
class Problem:
    """One failed rule: which record, field and value, and what was expected.

    A text ``value`` longer than ``SHOWN_MAX`` characters is kept shortened (``shorten``)."""

    record: str
    field: str
    value: object
    rule: str
    expected: str
    #: the trial ID of the child (or family) the record belongs to, when known: an import
    #: uses it to name the file rows of a problem found by a cross-record rule at commit
    subject: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", shorten(self.value))

    def __str__(self) -> str:
        where = f"{self.record}" + (f", field {self.field}" if self.field else "")
        return f"{where}: got {self.value!r}; expected {self.expected} [rule {self.rule}]"


class ValidationError(NoimError):
    """A write was refused because one or more rules failed.  Nothing was written."""

    def __init__(self, problems: Sequence[Problem] | Problem) -> None:
        if isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        if not self.problems:
            raise ValueError("ValidationError needs at least one problem")
        if len(self.problems) == 1:
            message = str(self.problems[0])
        else:
            lines = "; ".join(str(p) for p in self.problems)
            message = f"{len(self.problems)} problems: {lines}"
        super().__init__(message)


class TrialDefinitionError(NoimError):
    """The trial definition file is invalid."""

    def __init__(self, source: str, problems: Iterable[str]) -> None:
        self.source = source
        self.problems = list(problems)
        joined = "; ".join(self.problems)
        super().__init__(f"invalid trial definition {source}: {joined}")


class NotFound(NoimError):
    """A record named by the caller does not exist (or is not visible to them)."""


class AlreadyExists(NoimError):
    """A record with the same identifying key is already stored."""


class PermissionDenied(NoimError):
    """The acting user's role or site memberships do not allow this."""


class UnknownUser(NoimError):
    """The acting user is not a known, active noim user."""


class ReasonRequired(NoimError):
    """A change that must carry a reason (void, correction of a completed record) had none."""


class RecordProtected(NoimError):
    """The database refused a delete or an update of a record that is never changed that way."""


class NotInitialised(NoimError):
    """The database has no noim schema or no trial yet."""


class SchemaOutOfDate(NoimError):
    """The database schema revision does not match this version of noim."""


class AlreadyInitialised(NoimError):
    """``noim init`` was run on a database that already holds a trial."""


class AuditTrailBroken(NoimError):
    """The audit trail's hash chain or its agreement with the data failed verification."""


class FreezeTampered(NoimError):
    """A data freeze's stored datasets no longer match the hashes recorded when it was made
    (beside the datasets, on the freeze row or in the audit trail): it is not read."""


class AlreadyRandomised(NoimError):
    """A second allocation was requested for a family that already has one."""


class ScheduleWindowError(NoimError):
    """A follow-up visit date falls outside what its schedule allows."""


class ImportRejected(NoimError):
    """A bulk import was refused as a whole; ``problems`` lists every bad row."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__(
            f"import of {source} rejected: {len(self.problems)} problem(s); nothing was written"
        )
