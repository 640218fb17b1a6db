"""Permanence derived from dated legal events, and the proceedings each jurisdiction knows.

Coordinators record what happened (an order made, a panel's plan, a return home, a
re-entry to care) with the jurisdiction's own event *type*; every type that settles a
child's future maps onto one common permanence *outcome* (``noim.domain.legal``).  The
functions here read a child's dated events and derive what analyses and coordinators
ask about:

* the **first permanence decision**: the earliest event whose type has a permanence
  outcome (a panel's plan, an order, or an actual return home); permanence timing is
  measured to it (DOMAIN.md, "Permanence and the law");
* **returns home**: events of kind ``care_status`` with outcome ``return_home`` (the
  child actually went home, not only a plan to);
* **re-entries to care**: ``any.reentry`` events, each matched to the latest return home
  before it (and after the previous re-entry); a re-entry with no such return home is
  reported with ``after_return_home_on = None``.

Pure Python: no database, no click.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from noim.domain.codes import JURISDICTIONS, PROCEEDINGS_KINDS

REENTRY_CODE = "any.reentry"

#: where each kind of proceedings exists (codes.PROCEEDINGS_KINDS)
PROCEEDINGS_JURISDICTIONS: dict[str, tuple[str, ...]] = {
    "care_proceedings": ("england_wales",),  # s.31 Children Act 1989
    "childrens_hearing": ("scotland",),  # referral to the Reporter and hearings
    "permanence_application": ("scotland",),  # s.80 Adoption and Children (Scotland) Act 2007
    "placement_application": ("england_wales",),  # s.21 Adoption and Children Act 2002
    "adoption_application": JURISDICTIONS,
    "other": JURISDICTIONS,
}


if set(PROCEEDINGS_JURISDICTIONS) != set(PROCEEDINGS_KINDS):  # a programming error
    raise RuntimeError("PROCEEDINGS_JURISDICTIONS must cover codes.PROCEEDINGS_KINDS exactly")


def proceedings_kinds_for(jurisdiction: str) -> list[str]:
    """The proceedings kinds a site in ``jurisdiction`` may record, in vocabulary order."""
    return [k for k, where in PROCEEDINGS_JURISDICTIONS.items() if jurisdiction in where]


@dataclass(frozen=True)
class DatedEvent:
    """One live legal event with what its type says about it."""

    id: int
    event_date: date
    code: str
    kind: str
    permanence_outcome: str | None
    sort_order: int = 0

    @property
    def is_return_home(self) -> bool:
        return self.kind == "care_status" and self.permanence_outcome == "return_home"


@dataclass(frozen=True)
class Reentry:
    event_id: int
    on: date
    #: the return home this re-entry ended, or None when none is recorded before it
    after_return_home_on: date | None


@dataclass(frozen=True)
class PermanenceSummary:
    first_permanence: DatedEvent | None
    returns_home: tuple[DatedEvent, ...]
    reentries: tuple[Reentry, ...]

    @property
    def reentries_after_return_home(self) -> int:
        return sum(r.after_return_home_on is not None for r in self.reentries)


def in_order(events: Iterable[DatedEvent]) -> list[DatedEvent]:
    """Events by date, then vocabulary order, then id (a stable, documented order)."""
    return sorted(events, key=lambda e: (e.event_date, e.sort_order, e.id))


def summarise(events: Sequence[DatedEvent]) -> PermanenceSummary:
    """The first permanence decision, the returns home and the re-entries of one child."""
    ordered = in_order(events)
    first = next((e for e in ordered if e.permanence_outcome is not None), None)
    returns = tuple(e for e in ordered if e.is_return_home)
    reentries: list[Reentry] = []
    last_home: date | None = None
    for e in ordered:
        if e.is_return_home:
            last_home = e.event_date
        elif e.code == REENTRY_CODE:
            reentries.append(Reentry(e.id, e.event_date, last_home))
            last_home = None  # the next re-entry needs a return home of its own
    return PermanenceSummary(first, returns, tuple(reentries))


def moves(placements: int) -> int:
    """Placement moves: every placement after the first."""
    return max(0, placements - 1)
