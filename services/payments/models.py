from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.store import UtcDateTime, messaging_tables, utcnow


class Base(DeclarativeBase):
    pass


class Payment(Base):
    """At most one per order (the unique key is what makes a double charge impossible)."""

    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("amount_cents >= 0", name="ck_payments_amount_non_negative"),
        CheckConstraint("status IN ('CAPTURED', 'DECLINED', 'REFUNDED')", name="ck_payments_status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(Integer, unique=True, nullable=False)
    customer_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    # cents up to 10**12 do not fit a 32-bit integer
    amount_cents: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    decline_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    processor_reference: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


messaging_tables(Base.metadata)
