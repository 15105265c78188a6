"""Order lines: the one rule for merging repeated products."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from services.common.errors import ValidationFailed
from services.common.limits import MAX_QUANTITY


def merge_quantities(items: Iterable[dict[str, Any]]) -> dict[int, int]:
    """Quantity per product, repeated lines summed, sorted by product id.

    The sum is held to the same cap as a single line, so every service that
    accepts one line accepts the merged order.
    """
    merged: dict[int, int] = {}
    for item in items:
        merged[item["product_id"]] = merged.get(item["product_id"], 0) + item["quantity"]
    too_many = {str(product_id): [f"at most {MAX_QUANTITY} per order"]
                for product_id, quantity in merged.items() if quantity > MAX_QUANTITY}
    if too_many:
        raise ValidationFailed("invalid items", {"fields": {"items": too_many}})
    return dict(sorted(merged.items()))
