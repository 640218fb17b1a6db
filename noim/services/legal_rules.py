"""The legal row rules and vocabulary: one implementation, used by the legal services and
the ``legal-events`` import.

``LegalChecker`` reads the vocabulary (the ``decision_types`` table) once and the
proceedings that rows name in a few queries, then checks rows in Python.
``vocabulary`` lists what each jurisdiction may record (from ``noim.domain.legal``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from noim.db.base import utcnow
from noim.db.models import DecisionType, LegalProceedings
from noim.domain.codes import JURISDICTIONS
from noim.domain.exceptions import Problem, ValidationError
from noim.domain.legal import ANY_JURISDICTION, DECISION_TYPES
from noim.domain.permanence import PROCEEDINGS_JURISDICTIONS, proceedings_kinds_for
from noim.services import checks

_CHUNK = 900
COURT_MAX = 128

# --------------------------------------------------------------------------- the rules


@dataclass(frozen=True)
class TypeRow:
    code: str
    jurisdiction: str
    kind: str
    label: str
    permanence_outcome: str | None
    sort_order: int


@dataclass(frozen=True)
class _ProceedingsFacts:
    child_id: int
    kind: str
    started_on: date
    voided: bool


class LegalChecker:
    """The rules for legal proceedings and events (LGL-001 to LGL-007).

    The vocabulary is read once (one query), the proceedings rows name by id are read
    with ``load_proceedings`` (one query per 900), so checking many rows costs a few
    queries.

    Rules: LGL-001 proceedings kind valid in the child's jurisdiction, LGL-002 dates not
    before birth, LGL-003 dates not after today, LGL-004 end of proceedings not before
    their start, LGL-005 event type valid in the child's jurisdiction, LGL-006 the
    proceedings an event belongs to are live proceedings of the same child, LGL-007
    court / panel name at most 128 characters.
    """

    def __init__(self, s: Session, today: date | None = None) -> None:
        self.s = s
        self.today = today or utcnow().date()
        self.types: dict[str, TypeRow] = {
            r.code: TypeRow(
                r.code, r.jurisdiction, r.kind, r.label, r.permanence_outcome, r.sort_order
            )
            for r in s.scalars(select(DecisionType))
        }
        self._lower = {c.lower(): c for c in self.types}
        self.proceedings: dict[int, _ProceedingsFacts] = {}

    def load_proceedings(self, ids: Iterable[int | None]) -> None:
        wanted = sorted({i for i in ids if i is not None} - set(self.proceedings))
        for start in range(0, len(wanted), _CHUNK):
            for pid, child_id, kind, started, voided in self.s.execute(
                select(
                    LegalProceedings.id,
                    LegalProceedings.child_id,
                    LegalProceedings.kind,
                    LegalProceedings.started_on,
                    LegalProceedings.voided_at,
                ).where(LegalProceedings.id.in_(wanted[start : start + _CHUNK]))
            ):
                self.proceedings[pid] = _ProceedingsFacts(
                    child_id, kind, started, voided is not None
                )

    def type_code(self, text: str | None) -> str | None:
        """The vocabulary's spelling of ``text`` (codes are matched case-insensitively)."""
        if text is None:
            return None
        return self._lower.get(text.strip().lower())

    def valid_codes(self, jurisdiction: str) -> list[str]:
        rows = [
            t for t in self.types.values() if t.jurisdiction in (jurisdiction, ANY_JURISDICTION)
        ]
        return [t.code for t in sorted(rows, key=lambda t: t.sort_order)]

    def _dates(
        self, record: str, field: str, value: date | None, date_of_birth: date
    ) -> list[Problem]:
        out: list[Problem] = []
        if value is None:
            return out
        if value < date_of_birth:
            out.append(
                Problem(
                    record,
                    field,
                    value.isoformat(),
                    "LGL-002",
                    f"a date on or after the child's date of birth ({date_of_birth})",
                )
            )
        if value > self.today:
            out.append(
                Problem(
                    record,
                    field,
                    value.isoformat(),
                    "LGL-003",
                    f"a date not after today ({self.today})",
                )
            )
        return out

    def proceedings_problems(
        self,
        record: str,
        *,
        jurisdiction: str,
        date_of_birth: date,
        kind: str | None,
        started_on: date | None,
        ended_on: date | None = None,
        court_or_panel: str | None = None,
    ) -> list[Problem]:
        """Every proceedings rule the values break (None values were refused by the caller)."""
        out: list[Problem] = []
        if kind is not None and jurisdiction not in PROCEEDINGS_JURISDICTIONS.get(kind, ()):
            allowed = proceedings_kinds_for(jurisdiction)
            out.append(
                Problem(
                    record,
                    "kind",
                    kind,
                    "LGL-001",
                    f"a kind of proceedings in {jurisdiction}: {', '.join(allowed)}",
                )
            )
        out += self._dates(record, "started_on", started_on, date_of_birth)
        out += self._dates(record, "ended_on", ended_on, date_of_birth)
        if started_on is not None and ended_on is not None and ended_on < started_on:
            out.append(
                Problem(
                    record,
                    "ended_on",
                    ended_on.isoformat(),
                    "LGL-004",
                    f"a date on or after the proceedings' start ({started_on})",
                )
            )
        if court_or_panel is not None and len(court_or_panel) > COURT_MAX:
            out.append(
                Problem(
                    record,
                    "court_or_panel",
                    court_or_panel[:40] + "...",
                    "LGL-007",
                    f"at most {COURT_MAX} characters (got {len(court_or_panel)})",
                )
            )
        return out

    def event_problems(
        self,
        record: str,
        *,
        child_id: int,
        jurisdiction: str,
        date_of_birth: date,
        event_type: str | None,
        event_date: date | None,
        proceedings_id: int | None,
    ) -> list[Problem]:
        """Every event rule the values break (``event_type`` as the vocabulary spells it)."""
        out: list[Problem] = []
        if event_type is not None:
            t = self.types.get(event_type)
            if t is None or t.jurisdiction not in (jurisdiction, ANY_JURISDICTION):
                out.append(
                    Problem(
                        record,
                        "event_type",
                        event_type,
                        "LGL-005",
                        f"an event type of {jurisdiction} or any jurisdiction: "
                        + ", ".join(self.valid_codes(jurisdiction)),
                    )
                )
        out += self._dates(record, "event_date", event_date, date_of_birth)
        if proceedings_id is not None:
            p = self.proceedings.get(proceedings_id)
            if p is None or p.voided or p.child_id != child_id:
                out.append(
                    Problem(
                        record,
                        "proceedings_id",
                        proceedings_id,
                        "LGL-006",
                        "the id of live proceedings of the same child",
                    )
                )
        return out


def refuse_voided(record: str, voided_at: Any, action: str) -> None:
    """Refuse to change a voided legal record (LGL-008)."""
    checks.refuse_voided(
        record,
        voided_at,
        "LGL-008",
        f"a record that is not voided (a voided record cannot be {action})",
    )


# --------------------------------------------------------------------------- vocabulary


@dataclass(frozen=True)
class TypeView:
    code: str
    jurisdiction: str
    kind: str
    label: str
    statute: str | None
    ssda903: str | None
    permanence_outcome: str | None
    entry_route: bool


@dataclass(frozen=True)
class Vocabulary:
    jurisdictions: tuple[str, ...]
    proceedings_kinds: dict[str, tuple[str, ...]]
    event_types: tuple[TypeView, ...]


def vocabulary(jurisdiction: str | None = None) -> Vocabulary:
    """The legal vocabulary (of one jurisdiction, with the common types, or of all)."""
    if jurisdiction is not None and jurisdiction not in JURISDICTIONS:
        raise ValidationError(
            Problem(
                "vocabulary",
                "jurisdiction",
                jurisdiction,
                "LGL-023",
                "one of " + ", ".join(JURISDICTIONS),
            )
        )
    wanted = (jurisdiction,) if jurisdiction else JURISDICTIONS
    types = tuple(
        TypeView(
            d.code,
            d.jurisdiction,
            d.kind,
            d.label,
            d.statute,
            d.ssda903,
            d.permanence_outcome,
            d.can_be_entry_route,
        )
        for d in DECISION_TYPES
        if jurisdiction is None or d.jurisdiction in (jurisdiction, ANY_JURISDICTION)
    )
    kinds = {j: tuple(proceedings_kinds_for(j)) for j in wanted}
    return Vocabulary(wanted, kinds, types)
