from __future__ import annotations

from marshmallow import Schema, fields, validate

from services.common.schemas import Cents, Currency, Id, PageSchema, text


class ProductSchema(Schema):
    id = Id(dump_only=True)
    sku = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))
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
