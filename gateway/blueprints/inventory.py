"""/api/inventory: stock levels; setting them is for admins."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from gateway import rpc, skus
from gateway.auth import admin_required
from gateway.openapi import operation
from gateway.schemas import StockResponse, StockUpdateRequest
from gateway.validation import json_body

bp = Blueprint("inventory", __name__, url_prefix="/api/inventory")


def _stock(product: dict, stock: dict) -> dict:
    return {**stock, "sku": product["sku"]}


@bp.get("/<product:product_id_or_sku>")
@operation("A product's stock, by product id or SKU", "inventory",
           responses={200: (StockResponse, "Available and reserved units")})
def get_stock(product_id_or_sku: int | str) -> ResponseReturnValue:
    product = skus.product(product_id_or_sku)  # 404 for a product that does not exist
    return jsonify(_stock(product, rpc.call("inventory", "get_stock", product["id"])))


@bp.put("/<product:product_id_or_sku>")
@operation("Set a product's available units, by product id or SKU", "inventory", body=StockUpdateRequest,
           responses={200: (StockResponse, "The new stock")})
@admin_required
def set_stock(product_id_or_sku: int | str) -> ResponseReturnValue:
    data = json_body(StockUpdateRequest())
    product = skus.product(product_id_or_sku)
    return jsonify(_stock(product, rpc.call("inventory", "set_stock", product["id"], data["available"])))
