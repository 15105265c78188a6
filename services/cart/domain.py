"""Cart rules: line quantities, cart size, availability and what checkout removes.

Pure code (no broker, no database) so the rules are unit-tested directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from services.common.errors import Conflict, ValidationFailed

MAX_LINE_QUANTITY = 10_000
#: distinct products in one cart; an order of more lines is not a shopping cart
MAX_LINES = 100


def ensure_available(product: Mapping[str, Any]) -> None:
    """Only an active catalog product may be put in a cart."""
    if not product.get("active"):
        raise Conflict("product is not available", {"product_id": product.get("id")})


def added_quantity(current: int, added: int) -> int:
    """The line's new quantity after adding ``added``; beyond the cap the add is refused."""
    total = current + added
    if total > MAX_LINE_QUANTITY:
        raise ValidationFailed(
            "invalid input",
            {"fields": {"quantity": [f"a cart line may hold at most {MAX_LINE_QUANTITY} (has {current})"]}},
        )
    return total


def ensure_room(line_count: int) -> None:
    """A new line fits only while the cart has fewer than ``MAX_LINES`` lines."""
    if line_count >= MAX_LINES:
        raise Conflict(f"a cart holds at most {MAX_LINES} different products")


def order_items(lines: Mapping[int, int]) -> list[dict[str, int]]:
    """The cart's lines as the items of an order, in product order."""
    return [{"product_id": product_id, "quantity": lines[product_id]} for product_id in sorted(lines)]


def remaining_after_checkout(current: Mapping[int, int], ordered: Mapping[int, int]) -> dict[int, int]:
    """What stays in the cart once ``ordered`` became an order.

    Only the ordered quantities leave, so an item added while the order was
    being placed is kept rather than silently dropped.
    """
    remaining = {}
    for product_id, quantity in current.items():
        left = quantity - ordered.get(product_id, 0)
        if left > 0:
            remaining[product_id] = left
    return remaining


def checkout_key(cart_updated_at: datetime) -> str:
    """The request key of a checkout: one per state of the cart.

    A checkout that timed out and is tried again, with the cart unchanged, asks orders with the same
    key and gets the order the first attempt made; any change to the cart makes the next checkout
    a new order.
    """
    return f"cart-checkout:{cart_updated_at.isoformat()}"
