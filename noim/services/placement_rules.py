"""The placement row rules: one implementation, used by the placement services and the
``placements`` import.

``PlacementChecker`` reads the carers and local authorities rows name in a few queries,
then checks rows in Python.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from noim.db.base import utcnow
from noim.db.models import Carer, LocalAuthority
from noim.domain.codes import PLACEMENT_END_REASONS, PLACEMENT_TYPES
from noim.domain.exceptions import Problem

_CHUNK = 900

# --------------------------------------------------------------------------- the rules


class PlacementChecker:
    """The placement row rules, shared by the services and the import.

    ``load`` reads the carers the rows name (one query per 900) and the local
    authorities (one small table), so checking many rows costs a few queries.

    Rules: PLC-001 placement type, PLC-002 start not before birth, PLC-003 dates not
    after today, PLC-004 end not before start, PLC-005 end reason code, PLC-006 an end
    date and an end reason go together, PLC-007 the carer is a live carer at the
    child's site, PLC-008 the local authority belongs to the child's site.
    """

    def __init__(self, s: Session, today: date | None = None) -> None:
        self.s = s
        self.today = today or utcnow().date()
        self.carer_site: dict[int, int] = {}
        self.las: dict[str, tuple[int, int]] = {}
        self.la_codes: dict[int, str] = {}

    def load(self, carer_ids: Iterable[int | None] = ()) -> None:
        ids = sorted({c for c in carer_ids if c is not None} - set(self.carer_site))
        for start in range(0, len(ids), _CHUNK):
            stmt = select(Carer.id, Carer.site_id).where(
                Carer.id.in_(ids[start : start + _CHUNK]), Carer.voided_at.is_(None)
            )
            for carer, site in self.s.execute(stmt):
                self.carer_site[carer] = site
        if not self.las:
            for la_id, code, site_id in self.s.execute(
                select(LocalAuthority.id, LocalAuthority.code, LocalAuthority.site_id)
            ):
                self.las[code.upper()] = (la_id, site_id)
                self.la_codes[la_id] = code

    def la_id(self, code: str | None) -> int | None:
        """The id of local authority ``code`` (None when absent or unknown)."""
        found = self.las.get(code.strip().upper()) if code else None
        return found[0] if found else None

    def problems(
        self,
        record: str,
        *,
        site_id: int,
        site_code: str,
        date_of_birth: date,
        start_date: date | None,
        end_date: date | None,
        placement_type: str | None,
        end_reason: str | None,
        carer_id: int | None,
        local_authority: str | None,
        ended: bool | None = None,
    ) -> list[Problem]:
        """Every placement rule the values break (None values were refused by the caller).

        ``ended`` says whether the row has an end (for PLC-006) when a bad end date was
        already refused by the caller; by default an end date makes it ended.
        """
        out: list[Problem] = []
        if placement_type is not None and placement_type not in PLACEMENT_TYPES:
            out.append(
                Problem(
                    record,
                    "placement_type",
                    placement_type,
                    "PLC-001",
                    "one of " + ", ".join(PLACEMENT_TYPES),
                )
            )
        if start_date is not None:
            if start_date < date_of_birth:
                out.append(
                    Problem(
                        record,
                        "start_date",
                        start_date.isoformat(),
                        "PLC-002",
                        f"a date on or after the child's date of birth ({date_of_birth})",
                    )
                )
            if start_date > self.today:
                out.append(
                    Problem(
                        record,
                        "start_date",
                        start_date.isoformat(),
                        "PLC-003",
                        f"a date not after today ({self.today})",
                    )
                )
        if end_date is not None:
            if start_date is not None and end_date < start_date:
                out.append(
                    Problem(
                        record,
                        "end_date",
                        end_date.isoformat(),
                        "PLC-004",
                        f"a date on or after the placement's start ({start_date})",
                    )
                )
            if end_date > self.today:
                out.append(
                    Problem(
                        record,
                        "end_date",
                        end_date.isoformat(),
                        "PLC-003",
                        f"a date not after today ({self.today})",
                    )
                )
        if end_reason is not None and end_reason not in PLACEMENT_END_REASONS:
            out.append(
                Problem(
                    record,
                    "end_reason",
                    end_reason,
                    "PLC-005",
                    "one of " + ", ".join(PLACEMENT_END_REASONS),
                )
            )
        has_end = (end_date is not None) if ended is None else ended
        if has_end and end_reason is None:
            out.append(
                Problem(
                    record,
                    "end_reason",
                    None,
                    "PLC-006",
                    "why the placement ended (one of " + ", ".join(PLACEMENT_END_REASONS) + ")",
                )
            )
        elif not has_end and end_reason is not None:
            out.append(
                Problem(
                    record, "end_reason", end_reason, "PLC-006", "no end reason without an end date"
                )
            )
        if carer_id is not None and self.carer_site.get(carer_id) != site_id:
            out.append(
                Problem(
                    record,
                    "carer_id",
                    carer_id,
                    "PLC-007",
                    f"the id of a carer at site {site_code}",
                )
            )
        if local_authority is not None:
            found = self.las.get(local_authority.strip().upper())
            if found is None or found[1] != site_id:
                known = sorted(c for c, (_i, site) in self.las.items() if site == site_id)
                out.append(
                    Problem(
                        record,
                        "local_authority",
                        local_authority,
                        "PLC-008",
                        f"a local authority of site {site_code}: {', '.join(known)}",
                    )
                )
        return out
