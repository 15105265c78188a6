"""/api/orders: placing, following and cancelling orders.

A customer sees only their own orders; another customer's order answers 404
exactly like a missing one. Admins see every order and may filter by customer.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify
from flask.typing import ResponseReturnValue

from gateway import rpc, skus
from gateway.auth import User, admin_required, current_user, login_required
from gateway.errors import ApiError
from gateway.idempotency import idempotent, request_key
from gateway.openapi import operation
from gateway.schemas import (
    CancelRequest,
    OrderAcceptedResponse,
    OrderCreateRequest,
    OrderPageResponse,
    OrderQuery,
    OrderResponse,
    StalledOrdersResponse,
)
from gateway.validation import json_body, query_args

bp = Blueprint("orders", __name__, url_prefix="/api/orders")


def accepted(order: dict[str, Any]) -> Response:
    """202: the order exists and its saga runs on; Location says where to follow it."""
    response = jsonify({**order, "order_id": order["id"]})
    response.status_code = 202
    response.headers["Location"] = f"/api/orders/{order['id']}"
    return response


def _owner(user: User) -> int | None:
    """The customer filter a user's reads are scoped to (None: an admin sees everything)."""
    return None if user.is_admin else user.id


@bp.post("")
@operation("Place an order", "orders", body=OrderCreateRequest, errors=(404, 409), location=True,
           idempotent=True,
           responses={202: (OrderAcceptedResponse,
                             "Accepted (status PENDING); follow Location for progress")},
           description='Body: `{"items": [{"product_id": 1, "quantity": 2}]}` or the shorthand'
                       ' `{"product_id": 1, "quantity": 2}`. Each line (and the shorthand) names its'
                       ' product by `product_id` or by `sku` (`{"items": [{"sku": "COFFEE-1KG",'
                       ' "quantity": 2}]}`), not both: both is a 422 naming the two fields. An unknown'
                       ' id or SKU is a 422 whose `fields.items` names it.')
@login_required
@idempotent
def create_order() -> ResponseReturnValue:
    schema = OrderCreateRequest()
    data = json_body(schema)
    items = skus.resolve_lines(schema.items_of(data))
    order = rpc.call("orders", "create_order", customer_id=current_user().id, items=items,
                     request_key=request_key())
    return accepted(order)


@bp.get("")
@operation("List orders: your own; admins see all and may filter by customer_id", "orders", query=OrderQuery,
           errors=(403,), responses={200: (OrderPageResponse, "A page of orders, newest first")})
@login_required
def list_orders() -> ResponseReturnValue:
    user = current_user()
    query = query_args(OrderQuery())
    if not user.is_admin:
        if query.get("customer_id") not in (None, user.id):
            raise ApiError("forbidden", "Only administrators can list other customers' orders.")
        query["customer_id"] = user.id
    return jsonify(rpc.call("orders", "list_orders", query))


@bp.get("/<id:order_id>")
@operation("One order with its status history", "orders", responses={200: (OrderResponse, "The order")})
@login_required
def get_order(order_id: int) -> ResponseReturnValue:
    return jsonify(rpc.call("orders", "get_order", order_id, customer_id=_owner(current_user())))


@bp.post("/<id:order_id>/cancel")
@operation("Ask to cancel an order (refused once shipped)", "orders", body=CancelRequest, body_optional=True,
           errors=(409,), responses={202: (OrderResponse, "Cancellation requested; the saga compensates")})
@login_required
def cancel_order(order_id: int) -> ResponseReturnValue:
    data = json_body(CancelRequest(), optional=True)
    order = rpc.call("orders", "cancel_order", order_id, customer_id=_owner(current_user()),
                     reason=data.get("reason"))
    response = jsonify(order)
    response.status_code = 202
    return response


@bp.get("/stalled")
@operation("Admins: sagas parked after too many technical failures in a row, with the reason", "orders",
           responses={200: (StalledOrdersResponse, "The stalled orders, oldest first")})
@admin_required
def stalled_orders() -> ResponseReturnValue:
    return jsonify({"items": rpc.call("orders", "list_stalled")})


@bp.post("/<id:order_id>/resume")
@operation("Admins: resume a stalled saga (its step is retried within a second)", "orders", errors=(409,),
           responses={202: (OrderResponse, "Resumed; the saga retries its step")})
@admin_required
def resume_order(order_id: int) -> ResponseReturnValue:
    response = jsonify(rpc.call("orders", "resume_stalled", order_id))
    response.status_code = 202
    return response
