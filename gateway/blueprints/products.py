"""/api/products: the catalog; writes are for admins."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from gateway import rpc
from gateway.auth import admin_required, optional_user
from gateway.errors import ApiError
from gateway.openapi import operation
from gateway.schemas import (
    ProductCreateRequest,
    ProductPageResponse,
    ProductQuery,
    ProductResponse,
    ProductUpdateRequest,
)
from gateway.validation import json_body, query_args

bp = Blueprint("products", __name__, url_prefix="/api/products")


def _is_admin() -> bool:
    user = optional_user()
    return user is not None and user.is_admin


@bp.get("")
@operation("Browse and search active products", "products", query=ProductQuery,
           responses={200: (ProductPageResponse, "A page of products")})
def list_products() -> ResponseReturnValue:
    query = query_args(ProductQuery())
    query["include_inactive"] = query.get("include_inactive", False) and _is_admin()
    return jsonify(rpc.call("catalog", "list_products", query))


@bp.get("/<id:product_id>")
@operation("One product", "products", responses={200: (ProductResponse, "The product")})
def get_product(product_id: int) -> ResponseReturnValue:
    product = rpc.call("catalog", "get_product", product_id)
    if not product.get("active", True) and not _is_admin():
        raise ApiError("not-found", f"product {product_id} not found")
    return jsonify(product)


@bp.post("")
@operation("Create a product", "products", body=ProductCreateRequest, errors=(409,), location=True,
           responses={201: (ProductResponse, "Created")})
@admin_required
def create_product() -> ResponseReturnValue:
    product = rpc.call("catalog", "create_product", json_body(ProductCreateRequest()))
    response = jsonify(product)
    response.status_code = 201
    response.headers["Location"] = f"/api/products/{product['id']}"
    return response


@bp.put("/<id:product_id>")
@operation("Change a product (sku never changes)", "products", body=ProductUpdateRequest,
           responses={200: (ProductResponse, "Updated")})
@admin_required
def update_product(product_id: int) -> ResponseReturnValue:
    return jsonify(rpc.call("catalog", "update_product", product_id, json_body(ProductUpdateRequest())))


@bp.delete("/<id:product_id>")
@operation("Deactivate a product (orders keep referring to it)", "products",
           responses={200: (ProductResponse, "Deactivated: `active` is false")})
@admin_required
def delete_product(product_id: int) -> ResponseReturnValue:
    return jsonify(rpc.call("catalog", "deactivate_product", product_id))
