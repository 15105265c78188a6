from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from services.common.store import UtcDateTime, messaging_tables, utcnow


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "orders"
    # a caller's retry of create_order (same customer, same request key) finds the order it made
    __table_args__ = (Index("uq_orders_customer_request_key", "customer_id", "request_key", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    request_key: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), nullable=False, index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    total_cents: Mapped[int] = mapped_column(BigInteger, nullable=False)
    correlation_id: Mapped[str | None] = mapped_column(String(100))
    tracking_number: Mapped[str | None] = mapped_column(String(64))
    # the persisted saga (see domain.saga.SagaState; adapters/repository.py maps it)
    stock_reserved: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    payment_charged: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    stock_committed: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    shipment_requested: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    compensating: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    compensation_target: Mapped[str | None] = mapped_column(String(20))
    # scheduling: whether a step is due, when to retry, and who runs it
    saga_active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    lease_token: Mapped[str | None] = mapped_column(String(32))
    #: set when the saga was parked after too many technical failures in a row (why); cleared on resume
    stalled_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    items: Mapped[list[OrderItem]] = relationship(order_by="OrderItem.id", lazy="selectin")
    history: Mapped[list[StatusChange]] = relationship(order_by="StatusChange.id", lazy="selectin")


class OrderItem(Base):
    __tablename__ = "order_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), nullable=False, index=True)
    product_id: Mapped[int] = mapped_column(Integer, nullable=False)
    sku: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    unit_price_cents: Mapped[int] = mapped_column(BigInteger, nullable=False)
    line_total_cents: Mapped[int] = mapped_column(BigInteger, nullable=False)


class StatusChange(Base):
    __tablename__ = "order_status_history"
    # the metrics count orders per status they reached at every scrape (services/orders/metrics.py)
    __table_args__ = (Index("ix_order_status_history_status_order_id", "status", "order_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), nullable=False, index=True)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, nullable=False)


class ProductPrice(Base):
    """The orders service's read model of the catalog: what an order needs to price a line, kept
    current by the catalog's product events (``adapters/price_book.py``)."""

    __tablename__ = "product_prices"

    product_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    sku: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    price_cents: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False)
    #: when the catalog's state this row holds was current: an older event never overwrites it
    as_of: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)


messaging_tables(Base.metadata)
