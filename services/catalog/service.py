"""Catalog: the products customers browse and orders price from."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from services.catalog.models import Base, Product
from services.catalog.schemas import (
    EVENT_SCHEMAS,
    ProductIdsSchema,
    ProductQuerySchema,
    ProductSchema,
    ProductSkusSchema,
    ProductUpdateSchema,
)
from services.common.errors import Conflict, NotFound
from services.common.rpc import rpc
from services.common.schemas import load, require_id
from services.common.store import Store, paginate
from services.common.telemetry import Telemetry

product_schema = ProductSchema()


def _get(session: Any, product_id: int) -> Product:
    product = session.get(Product, require_id(product_id, "product_id"))
    if product is None:
        raise NotFound(f"product {product_id} not found")
    return product


class CatalogService:
    name = "catalog"

    store = Store(Base, event_schemas=EVENT_SCHEMAS)
    telemetry = Telemetry()

    @rpc
    def create_product(self, product: dict) -> dict:
        data = load(ProductSchema(), product)
        try:
            with self.store.transaction() as tx:
                created = Product(**data)
                tx.session.add(created)
                tx.session.flush()
                result = product_schema.dump(created)
                tx.emit("product_created", result, aggregate_id=created.id)
        except IntegrityError:
            raise Conflict(f"sku {data['sku']} already exists") from None
        return result

    @rpc
    def update_product(self, product_id: int, changes: dict) -> dict:
        data = load(ProductUpdateSchema(), changes)
        with self.store.transaction() as tx:
            product = _get(tx.session, product_id)
            for field, value in data.items():
                setattr(product, field, value)
            tx.session.flush()
            result = product_schema.dump(product)
            tx.emit("product_updated", result, aggregate_id=product.id)
        return result

    @rpc
    def deactivate_product(self, product_id: int) -> dict:
        with self.store.transaction() as tx:
            product = _get(tx.session, product_id)
            if product.active:
                product.active = False
                tx.emit("product_deactivated", {"product_id": product.id}, aggregate_id=product.id)
            tx.session.flush()
            return product_schema.dump(product)

    @rpc
    def get_product(self, product_id: int) -> dict:
        with self.store.get_session(close_on_exit=True) as session:
            return product_schema.dump(_get(session, product_id))

    @rpc
    def get_products(self, product_ids: list) -> list[dict]:
        """The listed products that exist, active or not (orders decide)."""
        ids = load(ProductIdsSchema(), {"product_ids": product_ids})["product_ids"]
        with self.store.get_session(close_on_exit=True) as session:
            products = session.scalars(select(Product).where(Product.id.in_(ids))).all()
            return product_schema.dump(products, many=True)

    @rpc
    def get_products_by_sku(self, skus: list) -> list[dict]:
        """The products with these SKUs that exist, active or not: one call names a whole order's
        lines. A SKU with no product is simply absent (the caller says which were not found)."""
        wanted = load(ProductSkusSchema(), {"skus": skus})["skus"]
        with self.store.get_session(close_on_exit=True) as session:
            products = session.scalars(select(Product).where(Product.sku.in_(set(wanted)))).all()
            return product_schema.dump(products, many=True)

    @rpc
    def list_products(self, query: dict | None = None) -> dict:
        params = load(ProductQuerySchema(), query or {})
        statement = select(Product)
        if not params["include_inactive"]:
            statement = statement.where(Product.active.is_(True))
        if params["category"]:
            statement = statement.where(Product.category == params["category"])
        if params["q"]:
            pattern = "%" + params["q"].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            statement = statement.where(
                or_(Product.name.ilike(pattern, escape="\\"), Product.description.ilike(pattern, escape="\\"))
            )
        with self.store.get_session(close_on_exit=True) as session:
            return paginate(session, statement, [Product.id], params, product_schema)
