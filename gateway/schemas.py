"""The HTTP API's own schemas: what requests must look like and what answers look like.

Request schemas validate at the edge (422 listing the fields) before any
RPC; the services validate again. Response schemas document what the
services return. The OpenAPI document is generated from both.
"""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate, validates_schema

from services.catalog.schemas import Sku

#: ids are 32-bit database integers
MAX_ID = 2**31 - 1
ORDER_STATUSES = ["PENDING", "CONFIRMED", "SHIPPED", "DELIVERED", "REJECTED", "CANCELLED"]
SHIPMENT_TARGETS = ["SCHEDULED", "SHIPPED", "DELIVERED"]


def Id(**kw: Any) -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_ID), **kw)


def Quantity(**kw: Any) -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(min=1, max=10_000), **kw)


def Cents(**kw: Any) -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(min=0, max=10**12), **kw)


def Currency(**kw: Any) -> fields.String:
    code = validate.Regexp(r"^[A-Z]{3}$", error="must be a 3-letter ISO 4217 code")
    return fields.String(validate=code, **kw)


def Page(**kw: Any) -> fields.Integer:
    return fields.Integer(validate=validate.Range(min=1, max=100_000), load_default=1, **kw)


def PerPage(**kw: Any) -> fields.Integer:
    return fields.Integer(validate=validate.Range(min=1, max=100), load_default=20, **kw)


def Timestamp() -> fields.String:
    """An ISO 8601 timestamp as the services write it."""
    return fields.String(allow_none=True, metadata={"description": "ISO 8601 timestamp (UTC)"})


class Request(Schema):
    """Unknown keys are dropped (a self-registration's "role", for one)."""

    class Meta:
        unknown = EXCLUDE


class Query(Schema):
    """Query strings are strict: an unknown parameter is an error, not silently ignored."""

    class Meta:
        unknown = RAISE


class NonBlank(validate.Validator):
    error = "must not be blank"

    def __call__(self, value: str) -> str:
        if not value.strip():
            raise ValidationError(self.error)
        return value


# ---------------------------------------------------------------- requests

class RegisterRequest(Request):
    name = fields.String(required=True, validate=[validate.Length(min=1, max=200), NonBlank()])
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=8, max=128))


class LoginRequest(Request):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=128))


class ProfileUpdateRequest(Request):
    name = fields.String(required=True, validate=[validate.Length(min=1, max=200), NonBlank()])


class ProductCreateRequest(Request):
    sku = Sku(required=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(load_default="", validate=validate.Length(max=5000))
    category = fields.String(required=True, validate=validate.Length(min=1, max=100))
    price_cents = Cents(required=True)
    currency = Currency(required=True)


class ProductUpdateRequest(Request):
    name = fields.String(validate=validate.Length(min=1, max=200))
    description = fields.String(validate=validate.Length(max=5000))
    category = fields.String(validate=validate.Length(min=1, max=100))
    price_cents = Cents()
    currency = Currency()

    @validates_schema
    def _not_empty(self, data: dict[str, Any], **_kw: Any) -> None:
        if not data:
            raise ValidationError("give at least one field to change", "_schema")


class ProductQuery(Query):
    q = fields.String(validate=validate.Length(min=1, max=200))
    category = fields.String(validate=validate.Length(min=1, max=100))
    page = Page()
    per_page = PerPage()
    include_inactive = fields.Boolean(load_default=False, metadata={"description": "admins only"})


class StockUpdateRequest(Request):
    available = fields.Integer(strict=True, required=True, validate=validate.Range(min=0, max=1_000_000))


def _name_the_product(data: dict[str, Any]) -> None:
    """A line names its product by ``product_id`` or by ``sku``: exactly one of them."""
    if "product_id" in data and "sku" in data:
        conflict = "give either sku or product_id for one line, not both"
        raise ValidationError({"sku": [conflict], "product_id": [conflict]})
    if "product_id" not in data and "sku" not in data:
        raise ValidationError({"product_id": ["Missing data for required field (or give sku)."]})


class ProductLineRequest(Request):
    """Units of one product, named by its id or by its SKU."""

    product_id = Id(metadata={"description": "the product's id; or give `sku` instead"})
    sku = Sku(metadata={"description": "the product's SKU; or give `product_id` instead"})
    quantity = Quantity(required=True)

    @validates_schema
    def _one_name(self, data: dict[str, Any], **_kw: Any) -> None:
        _name_the_product(data)


class CartItemRequest(ProductLineRequest):
    pass


class CartQuantityRequest(Request):
    quantity = Quantity(required=True)


class OrderItemRequest(ProductLineRequest):
    pass


class OrderCreateRequest(Request):
    """Either ``items`` or the one-product shorthand: ``product_id`` (or ``sku``) + ``quantity``."""

    items = fields.List(fields.Nested(OrderItemRequest), validate=validate.Length(min=1, max=100))
    product_id = Id()
    sku = Sku()
    quantity = Quantity()

    @validates_schema
    def _one_form(self, data: dict[str, Any], **_kw: Any) -> None:
        shorthand = {"product_id", "sku", "quantity"} & data.keys()
        if "items" in data and shorthand:
            raise ValidationError("give either items or product_id (or sku) and quantity, not both",
                                  "_schema")
        if "items" not in data:
            if not shorthand:
                raise ValidationError({"items": ["Missing data for required field."]})
            _name_the_product(data)
            if "quantity" not in data:
                raise ValidationError({"quantity": ["Missing data for required field."]})

    def items_of(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        """The lines as given, each naming its product by ``product_id`` or ``sku``."""
        if "items" in data:
            return data["items"]
        return [{key: data[key] for key in ("product_id", "sku", "quantity") if key in data}]


class OrderQuery(Query):
    status = fields.String(validate=validate.OneOf(ORDER_STATUSES))
    customer_id = fields.Integer(validate=validate.Range(min=1, max=MAX_ID),
                                 metadata={"description": "admins only; customers see their own orders"})
    page = Page()
    per_page = PerPage()


class CancelRequest(Request):
    reason = fields.String(validate=validate.Length(min=1, max=500))


class AdvanceShipmentRequest(Request):
    status = fields.String(required=True, validate=validate.OneOf(SHIPMENT_TARGETS))


class PageQuery(Query):
    page = Page()
    per_page = PerPage()


# ---------------------------------------------------------------- responses

class CustomerResponse(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    email = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(["customer", "admin"]))
    created_at = Timestamp()


class TokenResponse(Schema):
    access_token = fields.String(required=True)
    token_type = fields.String(required=True, validate=validate.OneOf(["Bearer"]))
    expires_in = fields.Integer(required=True)
    user = fields.Nested(CustomerResponse, required=True)


class ProductResponse(Schema):
    id = fields.Integer(required=True)
    sku = fields.String(required=True)
    name = fields.String(required=True)
    description = fields.String(allow_none=True)
    category = fields.String(required=True)
    price_cents = fields.Integer(required=True)
    currency = fields.String(required=True)
    active = fields.Boolean(required=True)
    created_at = Timestamp()
    updated_at = Timestamp()


class PageResponse(Schema):
    """What every paginated listing carries besides its items."""

    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    total = fields.Integer(required=True)


class ProductPageResponse(PageResponse):
    items = fields.List(fields.Nested(ProductResponse), required=True)


class StockResponse(Schema):
    product_id = fields.Integer(required=True)
    sku = fields.String(required=True)
    available = fields.Integer(required=True)
    reserved = fields.Integer(required=True)


class CartLineResponse(Schema):
    product_id = fields.Integer(required=True)
    quantity = fields.Integer(required=True)


class CartResponse(Schema):
    customer_id = fields.Integer(required=True)
    items = fields.List(fields.Nested(CartLineResponse), required=True)
    updated_at = Timestamp()


class OrderLineResponse(Schema):
    product_id = fields.Integer(required=True)
    sku = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    quantity = fields.Integer(required=True)
    unit_price_cents = fields.Integer(allow_none=True)
    line_total_cents = fields.Integer(allow_none=True)


class StatusChangeResponse(Schema):
    status = fields.String(required=True)
    reason = fields.String(allow_none=True)
    at = Timestamp()


class OrderResponse(Schema):
    id = fields.Integer(required=True)
    customer_id = fields.Integer(required=True)
    status = fields.String(required=True)
    reason = fields.String(allow_none=True)
    currency = fields.String(allow_none=True)
    total_cents = fields.Integer(allow_none=True)
    tracking_number = fields.String(allow_none=True)
    cancellation_requested = fields.Boolean(allow_none=True)
    #: why the saga is parked waiting for an operator (null while it runs)
    stalled_reason = fields.String(allow_none=True)
    items = fields.List(fields.Nested(OrderLineResponse))
    history = fields.List(fields.Nested(StatusChangeResponse))
    created_at = Timestamp()
    updated_at = Timestamp()


class StalledOrderResponse(Schema):
    id = fields.Integer(required=True)
    customer_id = fields.Integer(required=True)
    status = fields.String(required=True)
    attempts = fields.Integer(required=True)
    stalled_reason = fields.String(required=True)
    updated_at = Timestamp()


class StalledOrdersResponse(Schema):
    items = fields.List(fields.Nested(StalledOrderResponse), required=True)


class OrderAcceptedResponse(OrderResponse):
    order_id = fields.Integer(required=True)


class OrderPageResponse(PageResponse):
    items = fields.List(fields.Nested(OrderResponse), required=True)


class PaymentResponse(Schema):
    payment_id = fields.Integer(required=True)
    order_id = fields.Integer(required=True)
    customer_id = fields.Integer(required=True)
    amount_cents = fields.Integer(required=True)
    currency = fields.String(required=True)
    status = fields.String(required=True)
    decline_reason = fields.String(allow_none=True)


class ShipmentResponse(Schema):
    shipment_id = fields.Integer(required=True)
    order_id = fields.Integer(required=True)
    customer_id = fields.Integer(required=True)
    status = fields.String(required=True)
    tracking_number = fields.String(allow_none=True)
    scheduled_at = Timestamp()
    shipped_at = Timestamp()
    delivered_at = Timestamp()


class NotificationResponse(Schema):
    id = fields.Integer(required=True)
    customer_id = fields.Integer(required=True)
    channel = fields.String(required=True)
    subject = fields.String(required=True)
    body = fields.String(required=True)
    event_type = fields.String(allow_none=True)
    created_at = Timestamp()


class NotificationPageResponse(PageResponse):
    items = fields.List(fields.Nested(NotificationResponse), required=True)


class ProblemResponse(Schema):
    type = fields.String(required=True, metadata={"description": "stable URI of the kind of problem"})
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    instance = fields.String(allow_none=True)
    request_id = fields.String(allow_none=True)
    fields_ = fields.Dict(data_key="fields", metadata={"description": "invalid fields and their messages"})
    reference = fields.String(metadata={"description": "id to quote when reporting a 500"})


class HealthResponse(Schema):
    status = fields.String(required=True)


class ReadyResponse(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["ready", "unavailable"]))
    broker = fields.String(required=True)
    services = fields.Dict(required=True, metadata={"description": "per service: consumers, breaker state"})


class KpiQuery(Query):
    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=100),
                           metadata={"description": "how many windows, newest first (default 10)"})


class TopProduct(Schema):
    product_id = fields.Integer(required=True)
    sku = fields.String(required=True)
    units = fields.Integer(required=True)


class KpiWindowResponse(Schema):
    """One tumbling window's KPIs, as the Flink job wrote them (docs/analytics.md defines each)."""

    window_start = fields.String(required=True, metadata={"format": "date-time"})
    window_end = fields.String(required=True, metadata={"format": "date-time"})
    window_seconds = fields.Integer(required=True)
    revision = fields.Integer(required=True,
                              metadata={"description": "1, or more when late events re-emitted it"})
    emitted_at = fields.String(required=True, metadata={"format": "date-time"})
    orders_placed = fields.Integer(required=True)
    orders_confirmed = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True,
                                   metadata={"description": "by currency"})
    gmv_cents = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True,
                            metadata={"description": "confirmed orders' totals by currency, integer cents"})
    avg_order_value_cents = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    payments_captured = fields.Integer(required=True)
    payments_declined = fields.Integer(required=True)
    payment_failure_rate = fields.Float(required=True, allow_none=True)
    top_products = fields.List(fields.Nested(TopProduct), required=True)
    cancellations = fields.Integer(required=True)
    rejections = fields.Integer(required=True)
    orders_shipped = fields.Integer(required=True)
    ship_latency_p50_ms = fields.Integer(required=True, allow_none=True)
    ship_latency_p95_ms = fields.Integer(required=True, allow_none=True)
    events = fields.Integer(required=True)
    duplicates_dropped = fields.Integer(required=True)


class KpiResponse(Schema):
    windows = fields.List(fields.Nested(KpiWindowResponse), required=True)
    topic = fields.String(required=True)
    reachable = fields.Boolean(required=True)
    last_read_at = fields.String(required=True, allow_none=True, metadata={"format": "date-time"})
