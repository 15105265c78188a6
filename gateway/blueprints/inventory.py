"""/api/inventory: stock levels; setting them is for admins."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from gateway import rpc
from gateway.auth import admin_required
from gateway.openapi import operation
from gateway.schemas import StockResponse, StockUpdateRequest
from gateway.validation import json_body

bp = Blueprint("inventory", __name__, url_prefix="/api/inventory")


@bp.get("/<id:product_id>")
@operation("A product's stock", "inventory", responses={200: (StockResponse, "Available and reserved units")})
def get_stock(product_id: int) -> ResponseReturnValue:
    rpc.call("catalog", "get_product", product_id)  # 404 for a product that does not exist
    return jsonify(rpc.call("inventory", "get_stock", product_id))


@bp.put("/<id:product_id>")
@operation("Set a product's available units", "inventory", body=StockUpdateRequest,
           responses={200: (StockResponse, "The new stock")})
@admin_required
def set_stock(product_id: int) -> ResponseReturnValue:
    data = json_body(StockUpdateRequest())
    rpc.call("catalog", "get_product", product_id)
    return jsonify(rpc.call("inventory", "set_stock", product_id, data["available"]))
