"""``noim unit-cost`` and ``noim service-use``: the economic evaluation's data."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import click

from noim.cli.common import (
    DATE,
    CliState,
    json_option,
    pass_state,
    print_json,
    print_list,
    print_table,
)
from noim.services import economics

if TYPE_CHECKING:
    _ParamType = click.ParamType[Decimal, Any]
else:  # click < 8.3 has no generic ParamType
    _ParamType = click.ParamType


class DecimalType(_ParamType):
    """A decimal number such as 12.50 (kept exact, never a float)."""

    name = "decimal"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Decimal:
        if isinstance(value, Decimal):
            return value
        try:
            result = Decimal(str(value).strip())
        except InvalidOperation:
            self.fail(f"{value!r} is not a number; expected e.g. 12.50", param, ctx)
        if not result.is_finite():
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return result


DECIMAL = DecimalType()


@click.group("unit-cost")
def unit_cost_group() -> None:
    """Unit costs: the price of one unit of each service (data manager, administrators)."""


@unit_cost_group.command("add")
@click.argument("code")
@click.option("--service", required=True, help="The service, e.g. 'Social worker'.")
@click.option("--unit", required=True, help="The unit priced, e.g. hour, visit, night.")
@click.option("--cost", type=DECIMAL, required=True, help="Cost of one unit, e.g. 45.50.")
@click.option("--currency", default="GBP", show_default=True, help="ISO 4217 currency code.")
@click.option("--price-year", type=int, required=True, help="Year of the prices, e.g. 2023.")
@click.option("--source", help="Where the cost comes from, e.g. 'PSSRU 2023, table 11.2'.")
@json_option
@pass_state
def unit_cost_add(
    state: CliState,
    code: str,
    service: str,
    unit: str,
    cost: Decimal,
    currency: str,
    price_year: int,
    source: str | None,
    as_json: bool,
) -> None:
    """Add unit cost CODE."""
    view = economics.add_unit_cost(
        state.db(), state.actor(), code, service, unit, cost, price_year, currency, source
    )
    if as_json:
        print_json(view)
    else:
        click.echo(
            f"Added unit cost {view.code}: {view.service}, {view.cost} {view.currency} per "
            f"{view.unit} ({view.price_year} prices)"
        )


@unit_cost_group.command("list")
@json_option
@pass_state
def unit_cost_list(state: CliState, as_json: bool) -> None:
    """List the unit costs."""
    rows = economics.list_unit_costs(state.db(), state.actor())
    print_list(
        rows,
        as_json,
        f"Unit costs ({len(rows)})",
        ["code", "service", "unit", "cost", "currency", "price year", "source"],
        lambda u: (u.code, u.service, u.unit, u.cost, u.currency, u.price_year, u.source),
    )


@click.group("service-use")
def service_use_group() -> None:
    """Services a child used, costed from the unit costs."""


@service_use_group.command("add")
@click.argument("child_id")
@click.option("--unit-cost", required=True, help="Unit cost code (see `noim unit-cost list`).")
@click.option("--from", "period_start", type=DATE, required=True, help="Start of the period.")
@click.option("--to", "period_end", type=DATE, required=True, help="End of the period.")
@click.option("--quantity", type=DECIMAL, required=True, help="Units used in the period.")
@click.option("--source", help="Where the figure comes from, e.g. carer report, case file.")
@json_option
@pass_state
def service_use_add(
    state: CliState,
    child_id: str,
    unit_cost: str,
    period_start: date,
    period_end: date,
    quantity: Decimal,
    source: str | None,
    as_json: bool,
) -> None:
    """Record CHILD_ID's use of a service over a period."""
    view = economics.add_service_use(
        state.db(), state.actor(), child_id, unit_cost, period_start, period_end, quantity, source
    )
    if as_json:
        print_json(view)
    else:
        click.echo(
            f"Recorded service use {view.id} of child {view.child}: {view.quantity} {view.unit} of "
            f"{view.service}, {view.period_start} to {view.period_end}, cost {view.cost} "
            f"{view.currency}"
        )


@service_use_group.command("list")
@click.argument("child_id")
@json_option
@pass_state
def service_use_list(state: CliState, child_id: str, as_json: bool) -> None:
    """List CHILD_ID's service use with costs (quantity × unit cost) and the total."""
    report = economics.list_service_use(state.db(), state.actor(), child_id)
    if as_json:
        print_json(report)
        return
    print_table(
        f"Service use of {report.child} ({len(report.rows)})",
        ["id", "service", "from", "to", "quantity", "unit", "unit cost", "cost", "source", "void"],
        [
            (
                r.id,
                r.service,
                r.period_start,
                r.period_end,
                r.quantity,
                r.unit,
                f"{r.unit_price} {r.currency}",
                f"{r.cost} {r.currency}",
                r.source,
                "void" if r.voided else "",
            )
            for r in report.rows
        ],
    )
    for currency, total in sorted(report.totals.items()):
        click.echo(f"Total: {total} {currency}")
