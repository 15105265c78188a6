from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.store import UtcDateTime, messaging_tables, utcnow
from services.shipping.domain import SCHEDULED


class Base(DeclarativeBase):
    pass


class Shipment(Base):
    """One shipment per order; its status only moves forward (or to CANCELLED before shipping)."""

    __tablename__ = "shipments"
    # the timer looks for shipments by status, oldest first
    __table_args__ = (Index("ix_shipments_status_id", "status", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(Integer, unique=True, nullable=False)
    customer_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=SCHEDULED)
    tracking_number: Mapped[str] = mapped_column(String(32), unique=True, nullable=False)
    #: the scheduling call's (the order's request): the timer's events carry it, so one search finds them
    correlation_id: Mapped[str | None] = mapped_column(String(100))
    scheduled_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)
    shipped_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


messaging_tables(Base.metadata)
