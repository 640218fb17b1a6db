"""Service use and unit costs for the economic evaluation."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import CheckConstraint, Date, ForeignKey, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from noim.db.base import Base, VoidMixin, date_order_check, void_check


class UnitCost(Base):
    """The price of one unit of a service (e.g. one social-worker hour), with its price year."""

    __tablename__ = "unit_costs"
    __table_args__ = (
        CheckConstraint("cost >= 0", name="cost_not_negative"),
        CheckConstraint("length(currency) = 3", name="currency_iso"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    service: Mapped[str] = mapped_column(String(128))
    unit: Mapped[str] = mapped_column(String(32))
    cost: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    currency: Mapped[str] = mapped_column(String(3), default="GBP")
    price_year: Mapped[int] = mapped_column(Integer)
    source: Mapped[str | None] = mapped_column(Text)


class ServiceUse(VoidMixin, Base):
    """Units of a service a child (or their family) used in a period."""

    __tablename__ = "service_use"
    __table_args__ = (
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
        date_order_check("period_start", "period_end"),
        void_check(),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(
        ForeignKey("children.id", ondelete="RESTRICT"), index=True
    )
    unit_cost_id: Mapped[int] = mapped_column(ForeignKey("unit_costs.id", ondelete="RESTRICT"))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    quantity: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    source: Mapped[str | None] = mapped_column(String(64))
