"""/api/cart: the caller's cart and its checkout."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from gateway import rpc, skus
from gateway.auth import current_user, login_required
from gateway.blueprints.orders import accepted
from gateway.idempotency import idempotent
from gateway.openapi import operation
from gateway.schemas import CartItemRequest, CartQuantityRequest, CartResponse, OrderAcceptedResponse
from gateway.validation import json_body

bp = Blueprint("cart", __name__, url_prefix="/api/cart")


@bp.get("")
@operation("The caller's cart", "cart", responses={200: (CartResponse, "The cart (empty if never used)")})
@login_required
def get_cart() -> ResponseReturnValue:
    return jsonify(rpc.call("cart", "get_cart", current_user().id))


@bp.post("/items")
@operation("Add units of a product", "cart", body=CartItemRequest, errors=(404, 409),
           responses={200: (CartResponse, "The cart")},
           description='Body: `{"product_id": 1, "quantity": 2}` or `{"sku": "COFFEE-1KG", "quantity": 2}`'
                       ' (not both: 422). An unknown id or SKU is a 404.')
@login_required
def add_item() -> ResponseReturnValue:
    item = skus.resolve_line(json_body(CartItemRequest()))
    return jsonify(rpc.call("cart", "add_item", current_user().id, item))


@bp.put("/items/<product:product_id_or_sku>")
@operation("Set a line's quantity (the product by id or SKU)", "cart", body=CartQuantityRequest,
           responses={200: (CartResponse, "The cart")})
@login_required
def update_item(product_id_or_sku: int | str) -> ResponseReturnValue:
    data = json_body(CartQuantityRequest())
    product_id = skus.product_id(product_id_or_sku)
    return jsonify(rpc.call("cart", "update_item", current_user().id, product_id, data["quantity"]))


@bp.delete("/items/<product:product_id_or_sku>")
@operation("Remove a line (the product by id or SKU)", "cart", responses={200: (CartResponse, "The cart")})
@login_required
def remove_item(product_id_or_sku: int | str) -> ResponseReturnValue:
    product_id = skus.product_id(product_id_or_sku)
    return jsonify(rpc.call("cart", "remove_item", current_user().id, product_id))


@bp.post("/checkout")
@operation("Order the cart", "cart", errors=(409,), location=True, idempotent=True,
           responses={202: (OrderAcceptedResponse, "Order accepted; follow Location for its status")})
@login_required
@idempotent
def checkout() -> ResponseReturnValue:
    return accepted(rpc.call("cart", "checkout", current_user().id))
