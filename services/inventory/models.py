from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Integer, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.store import UtcDateTime, messaging_tables, utcnow


class Base(DeclarativeBase):
    pass


class Stock(Base):
    """One row per product; the CHECKs make overselling impossible even for a buggy writer."""

    __tablename__ = "stock"
    __table_args__ = (
        CheckConstraint("available >= 0", name="ck_stock_available_non_negative"),
        CheckConstraint("reserved >= 0", name="ck_stock_reserved_non_negative"),
    )

    product_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    available: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    reserved: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class Reservation(Base):
    """One line of an order's hold; the unique key makes a second reserve for an order fail."""

    __tablename__ = "reservations"
    __table_args__ = (
        UniqueConstraint("order_id", "product_id", name="uq_reservations_order_product"),
        CheckConstraint("quantity > 0", name="ck_reservations_quantity_positive"),
        CheckConstraint("status IN ('RESERVED', 'COMMITTED', 'RELEASED')", name="ck_reservations_status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    product_id: Mapped[int] = mapped_column(Integer, nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


messaging_tables(Base.metadata)
