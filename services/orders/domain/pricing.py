"""Pricing: snapshot catalog prices into order lines, in integer cents."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.common.limits import MAX_CENTS
from services.orders.domain.errors import InvalidOrder


@dataclass(frozen=True)
class Line:
    product_id: int
    sku: str
    name: str
    quantity: int
    unit_price_cents: int
    currency: str

    @property
    def total_cents(self) -> int:
        return self.unit_price_cents * self.quantity


@dataclass(frozen=True)
class PricedOrder:
    lines: tuple[Line, ...]
    currency: str

    @property
    def total_cents(self) -> int:
        return sum(line.total_cents for line in self.lines)


def price_order(quantities: dict[int, int], products: list[dict[str, Any]]) -> PricedOrder:
    """Price the requested quantities with the products as the catalog has them now.

    An order is paid in one currency: products priced in different currencies
    go in separate orders.
    """
    by_id = {product["id"]: product for product in products}
    problems: dict[str, list[str]] = {}
    for product_id in quantities:
        product = by_id.get(product_id)
        if product is None:
            problems[str(product_id)] = ["no such product"]
        elif not product["active"]:
            problems[str(product_id)] = ["product is not available"]
    if problems:
        raise InvalidOrder("invalid items", {"items": problems})
    lines = tuple(
        Line(
            product_id=product_id,
            sku=by_id[product_id]["sku"],
            name=by_id[product_id]["name"],
            quantity=quantity,
            unit_price_cents=by_id[product_id]["price_cents"],
            currency=by_id[product_id]["currency"],
        )
        for product_id, quantity in sorted(quantities.items())
    )
    if sum(line.total_cents for line in lines) > MAX_CENTS:
        raise InvalidOrder(
            "order total too large", {"items": [f"the total may not exceed {MAX_CENTS} cents"]}
        )
    currencies = {line.currency for line in lines}
    if len(currencies) != 1:
        raise InvalidOrder(
            "items are priced in different currencies",
            {"items": [f"one currency per order; got {', '.join(sorted(currencies))}"]},
        )
    return PricedOrder(lines=lines, currency=currencies.pop())
