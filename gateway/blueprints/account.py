"""/api/payments, /api/shipments, /api/notifications: what happened to an order.

Customers see their own only (another customer's answers 404); admins see
every order's and may move a shipment forward.
"""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from gateway import rpc
from gateway.auth import admin_required, current_user, login_required
from gateway.openapi import operation
from gateway.schemas import (
    AdvanceShipmentRequest,
    NotificationPageResponse,
    PageQuery,
    PaymentResponse,
    ShipmentResponse,
)
from gateway.validation import json_body, query_args

bp = Blueprint("account", __name__, url_prefix="/api")


def _owner() -> int | None:
    user = current_user()
    return None if user.is_admin else user.id


@bp.get("/payments/<id:order_id>")
@operation("An order's payment", "payments", responses={200: (PaymentResponse, "The payment")})
@login_required
def get_payment(order_id: int) -> ResponseReturnValue:
    return jsonify(rpc.call("payments", "get_payment", order_id, customer_id=_owner()))


@bp.get("/shipments/<id:order_id>")
@operation("An order's shipment", "shipments", responses={200: (ShipmentResponse, "The shipment")})
@login_required
def get_shipment(order_id: int) -> ResponseReturnValue:
    return jsonify(rpc.call("shipping", "get_shipment", order_id, customer_id=_owner()))


@bp.post("/shipments/<id:order_id>/advance")
@operation("Move a shipment forward (admin)", "shipments", body=AdvanceShipmentRequest, errors=(409,),
           responses={200: (ShipmentResponse, "The shipment")})
@admin_required
def advance_shipment(order_id: int) -> ResponseReturnValue:
    data = json_body(AdvanceShipmentRequest())
    return jsonify(rpc.call("shipping", "advance_shipment", order_id, data["status"]))


@bp.get("/notifications")
@operation("The caller's notifications, newest first", "notifications", query=PageQuery,
           responses={200: (NotificationPageResponse, "A page of notifications")})
@login_required
def list_notifications() -> ResponseReturnValue:
    query = query_args(PageQuery())
    return jsonify(rpc.call("notifications", "list_notifications", current_user().id,
                            query["page"], query["per_page"]))
