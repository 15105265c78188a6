"""/api/products: the catalog; writes are for admins.

Reads are cached in the worker process for ``PRODUCT_CACHE_SECONDS`` (default 1 s, 0 turns it off):
one product by id, and each listing page by its query. That staleness is safe: what a shopper pays
is never taken from here; the orders service re-reads every price from the catalog when it prices
an order. An admin's create, update or delete through this process empties the cache at once;
other worker processes and replicas catch up when their entries expire.
"""

from __future__ import annotations

import json

from flask import Blueprint, current_app, jsonify
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
from services.common.cache import TtlCache

bp = Blueprint("products", __name__, url_prefix="/api/products")


def product_cache() -> TtlCache:
    """This worker process's cache of product reads (made on first use)."""
    cache = current_app.extensions.get("gateway.product_cache")
    if cache is None:
        settings = current_app.extensions["gateway.settings"]
        cache = current_app.extensions.setdefault("gateway.product_cache",
                                                  TtlCache(settings.product_cache_seconds))
    return cache


def _write(method: str, *args: object) -> dict:
    """An admin's catalog write; this process's cached reads go with it."""
    try:
        return rpc.call("catalog", method, *args)
    finally:
        # also after a failure: a call that timed out may still have changed the product
        product_cache().clear()


def _is_admin() -> bool:
    user = optional_user()
    return user is not None and user.is_admin


@bp.get("")
@operation("Browse and search active products", "products", query=ProductQuery,
           responses={200: (ProductPageResponse, "A page of products")})
def list_products() -> ResponseReturnValue:
    query = query_args(ProductQuery())
    query["include_inactive"] = query.get("include_inactive", False) and _is_admin()
    key = ("list", json.dumps(query, sort_keys=True, default=str))
    return jsonify(product_cache().get_or_load(key, lambda: rpc.call("catalog", "list_products", query)))


@bp.get("/<id:product_id>")
@operation("One product", "products", responses={200: (ProductResponse, "The product")})
def get_product(product_id: int) -> ResponseReturnValue:
    # cached whether active or not: who may see an inactive one is decided per request
    product = product_cache().get_or_load(("product", product_id),
                                          lambda: rpc.call("catalog", "get_product", product_id))
    if not product.get("active", True) and not _is_admin():
        raise ApiError("not-found", f"product {product_id} not found")
    return jsonify(product)


@bp.post("")
@operation("Create a product", "products", body=ProductCreateRequest, errors=(409,), location=True,
           responses={201: (ProductResponse, "Created")})
@admin_required
def create_product() -> ResponseReturnValue:
    product = _write("create_product", json_body(ProductCreateRequest()))
    response = jsonify(product)
    response.status_code = 201
    response.headers["Location"] = f"/api/products/{product['id']}"
    return response


@bp.put("/<id:product_id>")
@operation("Change a product (sku never changes)", "products", body=ProductUpdateRequest,
           responses={200: (ProductResponse, "Updated")})
@admin_required
def update_product(product_id: int) -> ResponseReturnValue:
    return jsonify(_write("update_product", product_id, json_body(ProductUpdateRequest())))


@bp.delete("/<id:product_id>")
@operation("Deactivate a product (orders keep referring to it)", "products",
           responses={200: (ProductResponse, "Deactivated: `active` is false")})
@admin_required
def delete_product(product_id: int) -> ResponseReturnValue:
    return jsonify(_write("deactivate_product", product_id))
