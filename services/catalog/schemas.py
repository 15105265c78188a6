from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from services.common.schemas import Cents, Currency, Id, PageSchema, text

#: a SKU starts with a letter or digit and is not digits only, so that one path segment
#: (/api/inventory/{product_id_or_sku}) names one product: digits only are a product id
SKU_PATTERN = r"^(?:[A-Za-z]|[0-9]+[A-Za-z._-])[A-Za-z0-9._-]*$"
SKU_MAX_LENGTH = 64


def Sku(**kw: Any) -> fields.String:
    return fields.String(validate=[
        validate.Length(min=1, max=SKU_MAX_LENGTH),
        validate.Regexp(SKU_PATTERN, error="must be a SKU: letters, digits, '.', '_' or '-', starting with a"
                                           " letter or digit, and not digits only (that is a product id)"),
    ], **kw)


class ProductSchema(Schema):
    id = Id(dump_only=True)
    sku = Sku(required=True)
    name = text(200, required=True)
    description = text(5000, min_length=0, load_default="")
    category = text(100, required=True)
    price_cents = Cents(required=True)
    currency = Currency(required=True)
    active = fields.Boolean(dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


class ProductUpdateSchema(ProductSchema):
    """Every field optional; a product's sku never changes."""

    class Meta:
        exclude = ("sku",)

    name = text(200)
    category = text(100)
    price_cents = Cents()
    currency = Currency()
    description = text(5000, min_length=0)


class ProductQuerySchema(PageSchema):
    q = text(200, load_default=None, allow_none=True)
    category = text(100, load_default=None, allow_none=True)
    include_inactive = fields.Boolean(load_default=False)


class ProductIdsSchema(Schema):
    product_ids = fields.List(Id(), required=True, validate=validate.Length(min=1, max=100))


class ProductSkusSchema(Schema):
    skus = fields.List(Sku(), required=True, validate=validate.Length(min=1, max=100))


# --- events -----------------------------------------------------------------


class ProductEventSchema(ProductSchema):
    """product_created / product_updated: the product exactly as ``ProductSchema`` dumps it.

    The dump-only fields are redeclared as loadable and every field is
    required, so the dump validates and a missing or extra key is a bug.
    """

    id = Id(required=True)
    description = text(5000, min_length=0, required=True)
    active = fields.Boolean(required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class ProductDeactivatedEventSchema(Schema):
    product_id = Id(required=True)


EVENT_SCHEMAS: dict[str, Schema] = {
    "product_created": ProductEventSchema(),
    "product_updated": ProductEventSchema(),
    "product_deactivated": ProductDeactivatedEventSchema(),
}
