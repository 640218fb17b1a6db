"""Unit costs (reference data) and children's service use, costed as quantity × unit cost.

Unit costs are kept by the data manager and administrators
(``MANAGE_REFERENCE_DATA``); service use is collected with the outcome
assessments (a service-receipt questionnaire), so coordinators and researchers
record it (``WRITE_ASSESSMENTS``), at their own sites.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.orm import Session

from noim.db.blinding import arm_revealing_services, sees_arm
from noim.db.models import ServiceUse, UnitCost
from noim.db.session import Database
from noim.domain.codes import UNIT_COST_CODE
from noim.domain.exceptions import Problem, ValidationError
from noim.domain.roles import Actor, Capability
from noim.services.families import child_for
from noim.services.recording import (
    live,
    not_before,
    not_future,
    short_enough,
    text_given,
    today,
)

CENT = Decimal("0.01")
#: Numeric(12, 2): at most ten digits before the point
MAX_AMOUNT = Decimal("9999999999.99")
FIRST_PRICE_YEAR = 1990


@dataclass(frozen=True)
class UnitCostView:
    code: str
    service: str
    unit: str
    cost: Decimal
    currency: str
    price_year: int
    source: str | None


@dataclass(frozen=True)
class ServiceUseView:
    id: int
    child: str
    unit_cost: str
    service: str
    unit: str
    period_start: date
    period_end: date
    quantity: Decimal
    unit_price: Decimal
    currency: str
    price_year: int
    #: quantity × unit price, rounded half up to the penny
    cost: Decimal
    source: str | None
    voided: bool


@dataclass(frozen=True)
class ServiceUseReport:
    child: str
    rows: tuple[ServiceUseView, ...]
    #: total cost of live rows by currency
    totals: dict[str, Decimal]


def _amount(record: str, field: str, value: Decimal, rule: str, what: str) -> list[Problem]:
    """``value`` must be a finite amount from 0 to ``MAX_AMOUNT`` with at most 2 decimals."""
    expected = f"{what} from 0 to {MAX_AMOUNT} with at most 2 decimal places"
    try:
        value = Decimal(value)
        ok = value.is_finite() and 0 <= value <= MAX_AMOUNT and value == value.quantize(CENT)
    except (InvalidOperation, TypeError, ValueError):
        ok = False
    return [] if ok else [Problem(record, field, str(value), rule, expected)]


def add_unit_cost(
    db: Database,
    actor: Actor,
    code: str,
    service: str,
    unit: str,
    cost: Decimal,
    price_year: int,
    currency: str = "GBP",
    source: str | None = None,
) -> UnitCostView:
    """Add a unit cost (e.g. ``sw_hour``: one social-worker hour, £45.00, 2023 prices)."""
    actor.require(Capability.MANAGE_REFERENCE_DATA, "add unit costs")
    code = code.strip().lower()
    record = f"unit cost {code!r}"
    problems: list[Problem] = []
    if not UNIT_COST_CODE.match(code):
        problems.append(
            Problem(
                record,
                "code",
                code,
                "SRV-001",
                "1 to 32 lower-case letters, digits, '_', '.' or '-', starting with a letter or digit",
            )
        )
    problems += text_given(record, "service", service, "SRV-003", 128)
    problems += text_given(record, "unit", unit, "SRV-003", 32)
    problems += _amount(record, "cost", cost, "SRV-004", "a cost")
    if not re.fullmatch(r"[A-Z]{3}", currency or ""):
        problems.append(
            Problem(record, "currency", currency, "SRV-005", "an ISO 4217 code such as GBP")
        )
    if not FIRST_PRICE_YEAR <= price_year <= today().year:
        problems.append(
            Problem(
                record,
                "price_year",
                price_year,
                "SRV-006",
                f"a year from {FIRST_PRICE_YEAR} to {today().year}",
            )
        )
    with db.write(actor) as s:
        if s.scalar(select(UnitCost.id).where(UnitCost.code == code)) is not None:
            problems.append(
                Problem(record, "code", code, "SRV-002", "a code not already used by a unit cost")
            )
        if problems:
            raise ValidationError(problems)
        row = UnitCost(
            code=code,
            service=service.strip(),
            unit=unit.strip(),
            cost=Decimal(cost).quantize(CENT),
            currency=currency,
            price_year=price_year,
            source=source,
        )
        s.add(row)
        s.flush()
        return _unit_cost_view(row)


def list_unit_costs(db: Database, actor: Actor) -> list[UnitCostView]:
    """Every unit cost, by code."""
    actor.require(Capability.READ_TRIAL_DATA, "read unit costs")
    with db.read(actor) as s:
        return [_unit_cost_view(u) for u in s.scalars(select(UnitCost).order_by(UnitCost.code))]


def recordable_unit_costs(db: Database, actor: Actor) -> list[UnitCostView]:
    """The unit costs ``actor`` may record service use of, by code: for roles that may not
    see the arm, without the services the trial definition marks as revealing it."""
    actor.require(Capability.WRITE_ASSESSMENTS, "record service use")
    with db.read(actor) as s:
        hidden = unrecordable(s, actor)
        return [
            _unit_cost_view(u)
            for u in s.scalars(select(UnitCost).order_by(UnitCost.code))
            if u.code not in hidden
        ]


def add_service_use(
    db: Database,
    actor: Actor,
    child_trial_id: str,
    unit_cost: str,
    period_start: date,
    period_end: date,
    quantity: Decimal,
    source: str | None = None,
) -> ServiceUseView:
    """Record units of a service a child used between two dates."""
    actor.require(Capability.WRITE_ASSESSMENTS, "record service use")
    code = unit_cost.strip().lower()
    with db.write(actor) as s:
        child, _family, _site = child_for(s, actor, child_trial_id, "record service use of")
        record = f"service use of child {child.trial_id}"
        problems = live(record, child.voided_at, "SRV-012", f"child {child.trial_id}")
        costs = {u.code: u for u in s.scalars(select(UnitCost))}
        cost_row = costs.get(code)
        problems += service_use_problems(
            record,
            unit_cost,
            costs,
            quantity,
            period_start,
            period_end,
            child.date_of_birth,
            source,
            unrecordable(s, actor),
        )
        if problems:
            raise ValidationError(problems)
        assert cost_row is not None
        use = ServiceUse(
            child_id=child.id,
            unit_cost_id=cost_row.id,
            period_start=period_start,
            period_end=period_end,
            quantity=Decimal(quantity).quantize(CENT),
            source=source,
        )
        s.add(use)
        s.flush()
        return _use_view(use, child.trial_id, cost_row)


def service_use_problems(
    record: str,
    unit_cost: str,
    known: Collection[str],
    quantity: Decimal,
    period_start: date,
    period_end: date,
    date_of_birth: date,
    source: str | None,
    forbidden: Collection[str] = (),
) -> list[Problem]:
    """The service-use rules (SRV-007 to SRV-011, SRV-013, SRV-014) for ``add_service_use``
    and the import.

    ``known`` holds the unit-cost codes; ``forbidden`` those the acting user may not record
    (``unrecordable``).
    """
    problems = []
    code = unit_cost.strip().lower()
    if code not in known:
        listed = ", ".join(sorted(c for c in known if c not in forbidden)) or "none yet"
        problems.append(
            Problem(record, "unit_cost", unit_cost, "SRV-007", f"a unit cost code: {listed}")
        )
    elif code in forbidden:
        problems.append(
            Problem(
                record,
                "unit_cost",
                unit_cost,
                "SRV-014",
                "a service your role may record: the trial definition marks this one as "
                "revealing the arm, so a coordinator of the child's site records it",
            )
        )
    problems += _amount(record, "quantity", quantity, "SRV-008", "a quantity")
    problems += not_before(
        record, "period_end", period_end, period_start, "the period start", "SRV-009"
    )
    problems += not_before(
        record, "period_start", period_start, date_of_birth, "the child's date of birth", "SRV-010"
    )
    problems += not_future(record, "period_end", period_end, "SRV-011")
    problems += short_enough(record, "source", source, "SRV-013", 64)
    return problems


def unrecordable(s: Session, actor: Actor) -> frozenset[str]:
    """Unit-cost codes ``actor`` may neither record nor read: for roles that may not see
    the arm, the services the trial definition marks as revealing it."""
    return frozenset() if sees_arm(actor) else arm_revealing_services(s)


def list_service_use(db: Database, actor: Actor, child_trial_id: str) -> ServiceUseReport:
    """A child's service use with each row's cost and the total (voided rows marked, not counted).

    Roles that may not see the arm get neither the rows of services that reveal it nor
    their cost: such a row and its total are left out, as if it did not exist.
    """
    actor.require(Capability.READ_TRIAL_DATA, "read service use")
    with db.read(actor) as s:
        child, _family, _site = child_for(s, actor, child_trial_id, "read service use of")
        stmt = (
            select(ServiceUse, UnitCost)
            .join(UnitCost, UnitCost.id == ServiceUse.unit_cost_id)
            .where(ServiceUse.child_id == child.id)
            .order_by(ServiceUse.period_start, ServiceUse.id)
        )
        hidden = unrecordable(s, actor)
        if hidden:
            stmt = stmt.where(UnitCost.code.not_in(sorted(hidden)))
        rows = [_use_view(use, child.trial_id, cost) for use, cost in s.execute(stmt)]
        totals: dict[str, Decimal] = {}
        for r in rows:
            if not r.voided:
                totals[r.currency] = totals.get(r.currency, Decimal("0.00")) + r.cost
        return ServiceUseReport(child.trial_id, tuple(rows), totals)


def _unit_cost_view(u: UnitCost) -> UnitCostView:
    return UnitCostView(
        u.code, u.service, u.unit, Decimal(u.cost), u.currency, u.price_year, u.source
    )


def _use_view(use: ServiceUse, child: str, cost: UnitCost) -> ServiceUseView:
    quantity, price = Decimal(use.quantity), Decimal(cost.cost)
    return ServiceUseView(
        id=use.id,
        child=child,
        unit_cost=cost.code,
        service=cost.service,
        unit=cost.unit,
        period_start=use.period_start,
        period_end=use.period_end,
        quantity=quantity,
        unit_price=price,
        currency=cost.currency,
        price_year=cost.price_year,
        cost=(quantity * price).quantize(CENT, rounding=ROUND_HALF_UP),
        source=use.source,
        voided=use.voided_at is not None,
    )
