"""Inventory rules: how order lines merge and what each reservation transition does to stock."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from services.common.items import merge_quantities

RESERVED = "RESERVED"
COMMITTED = "COMMITTED"
RELEASED = "RELEASED"

#: from least to most advanced; an order's status is that of its least advanced line
STATUS_ORDER = (RESERVED, COMMITTED, RELEASED)


@dataclass(frozen=True)
class StockDelta:
    """What a transition adds to a stock row's counters."""

    available: int
    reserved: int


def merge_items(items: Iterable[dict[str, Any]]) -> list[dict[str, int]]:
    """One line per product, sorted by product id.

    The fixed order makes concurrent transactions lock stock rows in the same
    order, so they queue instead of deadlocking.
    """
    return [{"product_id": product_id, "quantity": quantity}
            for product_id, quantity in merge_quantities(items).items()]


def release_delta(status: str, quantity: int) -> StockDelta | None:
    """Releasing gives back a held line and restocks a committed one; None if already released."""
    if status == RESERVED:
        return StockDelta(available=quantity, reserved=-quantity)
    if status == COMMITTED:
        return StockDelta(available=quantity, reserved=0)
    return None


def commit_delta(status: str, quantity: int) -> StockDelta | None:
    """Committing turns a hold into a sale: the units leave ``reserved``; None unless held."""
    if status == RESERVED:
        return StockDelta(available=0, reserved=-quantity)
    return None


def order_status(statuses: Iterable[str]) -> str:
    """The status of an order's reservation as a whole: its least advanced line's."""
    return min(statuses, key=STATUS_ORDER.index)


def stock_view(product_id: int, available: int, reserved: int) -> dict[str, int]:
    return {"product_id": product_id, "available": available, "reserved": reserved}
