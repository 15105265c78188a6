"""Naming a product by its SKU wherever the API takes a product id.

The services downstream work with product ids, so the gateway resolves SKUs
to ids before it calls them: with one ``catalog.get_products_by_sku`` call per
request, for every SKU the request names. A request that names its products by
id only makes no such call.

In a path (``/api/inventory/{product_id_or_sku}``) digits only are an id and
anything else a SKU; the catalog refuses SKUs made of digits only, so one
segment names one product.
"""

from __future__ import annotations

from typing import Any

from werkzeug.routing import BaseConverter

from gateway import rpc
from gateway.errors import ApiError

#: what a product path segment may look like: an id (digits) or a SKU
PRODUCT_REF_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"


class ProductRefConverter(BaseConverter):
    """``<product:name>``: an ``int`` id for digits only, else the SKU as a ``str``."""

    regex = PRODUCT_REF_PATTERN

    def to_python(self, value: str) -> int | str:
        return int(value) if value.isdigit() else value

    def to_url(self, value: Any) -> str:
        return str(value)


def _by_sku(skus: list[str]) -> dict[str, dict[str, Any]]:
    products = rpc.call("catalog", "get_products_by_sku", sorted(set(skus)))
    return {product["sku"]: product for product in products}


def resolve_lines(lines: list[dict[str, Any]]) -> list[dict[str, int]]:
    """``[{"product_id": ..., "quantity": ...}]`` for lines that name a product by id or by SKU.

    An unknown SKU is refused the way the orders service refuses an unknown id: 422, with
    ``fields.items`` keyed by what the line named.
    """
    skus = [line["sku"] for line in lines if "sku" in line]
    found = _by_sku(skus) if skus else {}
    missing = sorted({sku for sku in skus if sku not in found})
    if missing:
        raise ApiError("validation", "invalid items",
                       fields={"items": {sku: ["no such product"] for sku in missing}})
    return [{"product_id": line["product_id"] if "product_id" in line else found[line["sku"]]["id"],
             "quantity": line["quantity"]} for line in lines]


def resolve_line(line: dict[str, Any]) -> dict[str, int]:
    """One line (a cart item) resolved; an unknown SKU is a 404, as an unknown id is there."""
    if "sku" not in line:
        return {"product_id": line["product_id"], "quantity": line["quantity"]}
    return {"product_id": product(line["sku"])["id"], "quantity": line["quantity"]}


def product(ref: int | str) -> dict[str, Any]:
    """The catalog's product for an id or a SKU (404 when there is none)."""
    if isinstance(ref, int):
        return rpc.call("catalog", "get_product", ref)
    found = _by_sku([ref]).get(ref)
    if found is None:
        raise ApiError("not-found", f"no product has sku {ref}")
    return found


def product_id(ref: int | str) -> int:
    """The product id a path segment names; an id costs no call."""
    return ref if isinstance(ref, int) else product(ref)["id"]

