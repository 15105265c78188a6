"""Orders against the real broker and database, with scripted participants.

The stand-ins record every command they receive, so these tests can check
what the saga asked of each participant and in which order.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

import eventlet
import pytest

from services.catalog.service import CatalogService
from services.common.envelope import make_envelope
from services.common.errors import (
    Conflict,
    NotFound,
    OutOfStock,
    ServiceUnavailable,
    ValidationFailed,
    error_entry,
)
from services.common.rpc import rpc
from services.orders.service import OrdersService
from tests.helpers import dead_lettered_ids, publish_event, wait_for

CALLS: list[tuple] = []
SCRIPT: dict[str, object] = {}


class InventoryStandIn:
    name = "inventory"

    @rpc
    def reserve_many(self, reservations):
        CALLS.extend(("reserve", entry["order_id"]) for entry in reservations)
        if SCRIPT.get("inventory_down"):
            raise ServiceUnavailable("inventory unreachable")
        if SCRIPT.get("out_of_stock"):
            return [{"order_id": entry["order_id"], "error": error_entry(OutOfStock(
                "insufficient stock", {"product_ids": [entry["items"][0]["product_id"]]}))}
                for entry in reservations]
        return [{"order_id": entry["order_id"], "reservation": {
                    "order_id": entry["order_id"], "status": "RESERVED", "items": entry["items"]}}
                for entry in reservations]

    @rpc
    def release(self, order_id):
        CALLS.append(("release", order_id))
        return {"order_id": order_id, "released": True}


class PaymentsStandIn:
    name = "payments"

    @rpc
    def charge_many(self, charges):
        CALLS.extend(("charge", entry["order_id"], entry["amount_cents"], entry["currency"])
                     for entry in charges)
        if SCRIPT.get("payments_down"):
            raise ServiceUnavailable("payment processor unreachable")
        status = "DECLINED" if SCRIPT.get("decline") else "CAPTURED"
        return [{"order_id": entry["order_id"], "payment": {
                    "order_id": entry["order_id"], "status": status, "decline_reason": "card_declined"}}
                for entry in charges]

    @rpc
    def refund(self, order_id):
        CALLS.append(("refund", order_id))
        return {"order_id": order_id, "refunded": True}


class ShippingStandIn:
    name = "shipping"

    @rpc
    def cancel_shipment(self, order_id, customer_id=None):
        CALLS.append(("cancel_shipment", order_id))
        return {"order_id": order_id, "cancelled": True}


@pytest.fixture
def platform(start_service, rpc_client, database_flavour):
    CALLS.clear()
    SCRIPT.clear()
    start_service(CatalogService)
    for stand_in in (InventoryStandIn, PaymentsStandIn, ShippingStandIn):
        start_service(stand_in, database=False)
    start_service(OrdersService, flavour=database_flavour)
    catalog = rpc_client("catalog")
    product = catalog.create_product({"sku": "COF-1", "name": "Coffee", "category": "grocery",
                                      "price_cents": 1899, "currency": "USD"})
    return rpc_client("orders"), product


def wait_status(orders, order_id, statuses, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        order = orders.get_order(order_id)
        if order["status"] in statuses:
            return order
        time.sleep(0.1)
    raise AssertionError(f"order stayed {order['status']}")


def test_the_saga_runs_every_forward_step_once_and_confirms(platform):
    orders, product = platform
    order = orders.create_order(customer_id=3, items=[{"product_id": product["id"], "quantity": 2}])
    assert order["status"] == "PENDING" and order["total_cents"] == 3798
    assert order["items"][0]["unit_price_cents"] == 1899
    confirmed = wait_status(orders, order["id"], {"CONFIRMED"})
    time.sleep(0.5)
    # order_confirmed carries the commit and the shipment request to inventory and shipping
    assert [call[0] for call in CALLS] == ["reserve", "charge"]
    assert CALLS[1] == ("charge", order["id"], 3798, "USD")
    assert [change["status"] for change in confirmed["history"]] == ["PENDING", "CONFIRMED"]


def test_out_of_stock_is_rejected_without_charging(platform):
    orders, product = platform
    SCRIPT["out_of_stock"] = True
    order = orders.create_order(customer_id=3, items=[{"product_id": product["id"], "quantity": 1}])
    rejected = wait_status(orders, order["id"], {"REJECTED"})
    assert rejected["reason"] == "insufficient stock"
    assert [call[0] for call in CALLS] == ["reserve"]


def test_a_decline_releases_stock_and_cancels(platform):
    orders, product = platform
    SCRIPT["decline"] = True
    order = orders.create_order(customer_id=3, items=[{"product_id": product["id"], "quantity": 1}])
    cancelled = wait_status(orders, order["id"], {"CANCELLED"})
    assert cancelled["reason"] == "payment declined: card_declined"
    assert [call[0] for call in CALLS] == ["reserve", "charge", "release"]


def test_a_customer_cancellation_compensates_in_reverse(platform):
    orders, product = platform
    order = orders.create_order(customer_id=3, items=[{"product_id": product["id"], "quantity": 1}])
    wait_status(orders, order["id"], {"CONFIRMED"})
    with pytest.raises(NotFound):
        orders.cancel_order(order["id"], customer_id=4)  # someone else's order
    assert orders.cancel_order(order["id"], customer_id=3)["cancellation_requested"] is True
    cancelled = wait_status(orders, order["id"], {"CANCELLED"})
    assert cancelled["reason"] == "cancelled by customer"
    assert [call[0] for call in CALLS][-3:] == ["cancel_shipment", "refund", "release"]


def test_a_cancellation_before_any_step_succeeded_cancels_with_nothing_to_undo(platform):
    orders, product = platform
    SCRIPT["inventory_down"] = True  # the first step fails and waits for its retry
    order = orders.create_order(customer_id=3, items=[{"product_id": product["id"], "quantity": 1}])
    deadline = time.monotonic() + 10
    while ("reserve", order["id"]) not in CALLS:
        assert time.monotonic() < deadline, "the saga never tried to reserve"
        time.sleep(0.05)
    assert orders.cancel_order(order["id"], customer_id=3)["cancellation_requested"] is True
    cancelled = wait_status(orders, order["id"], {"CANCELLED"})
    assert [change["status"] for change in cancelled["history"]] == ["PENDING", "CANCELLED"]
    assert [call[0] for call in CALLS if call[0] != "reserve"] == []  # nothing was held, nothing undone


def test_bad_orders_are_refused_and_write_nothing(platform):
    orders, product = platform
    bad_inputs = [
        (3, [{"product_id": product["id"], "quantity": -1}]),
        (3, [{"product_id": product["id"], "quantity": "1; DROP TABLE orders"}]),
        (3, [{"product_id": product["id"], "quantity": 1, "price_cents": 1}]),
        (3, []),
        (3, [{"product_id": 999, "quantity": 1}]),
        ("3", [{"product_id": product["id"], "quantity": 1}]),
        (3, "x" * 100_000),
        (-1, [{"product_id": product["id"], "quantity": 1}]),
    ]
    for customer_id, items in bad_inputs:
        with pytest.raises(ValidationFailed):
            orders.create_order(customer_id=customer_id, items=items)
    for request_key in ["", "k" * 101, 7, ["k"]]:
        with pytest.raises(ValidationFailed):
            orders.create_order(customer_id=3, items=[{"product_id": product["id"], "quantity": 1}],
                                request_key=request_key)
    with pytest.raises(ValidationFailed):
        orders.get_order("1 OR 1=1")
    with pytest.raises(ValidationFailed):
        orders.list_orders({"status": "'; --"})
    assert orders.list_orders({})["total"] == 0
    assert CALLS == []


def test_a_retry_with_the_same_request_key_gets_the_same_order(platform):
    orders, product = platform
    items = [{"product_id": product["id"], "quantity": 1}]
    first = orders.create_order(customer_id=3, items=items, request_key="checkout-1")
    assert orders.create_order(customer_id=3, items=items, request_key="checkout-1")["id"] == first["id"]
    # another key, or another customer with the same key, is another order
    assert orders.create_order(customer_id=3, items=items, request_key="checkout-2")["id"] != first["id"]
    assert orders.create_order(customer_id=4, items=items, request_key="checkout-1")["id"] != first["id"]
    assert orders.create_order(customer_id=3, items=items)["id"] != first["id"]
    assert orders.list_orders({})["total"] == 4
    wait_status(orders, first["id"], {"CONFIRMED"})
    assert CALLS.count(("charge", first["id"], 1899, "USD")) == 1


def test_concurrent_calls_with_one_request_key_make_one_order(platform, rpc_client):
    _, product = platform
    proxies = [rpc_client("orders") for _ in range(6)]
    pool = eventlet.GreenPool(6)
    made = list(pool.imap(lambda proxy: proxy.create_order(
        customer_id=3, items=[{"product_id": product["id"], "quantity": 1}], request_key="twice")["id"],
        proxies))
    assert len(set(made)) == 1
    assert proxies[0].list_orders({})["total"] == 1


def test_a_participant_outage_is_retried_until_it_answers(platform, caplog):
    """The runner schedules the retry itself; the handler never fails."""
    orders, product = platform
    SCRIPT["payments_down"] = True
    order = orders.create_order(customer_id=3, items=[{"product_id": product["id"], "quantity": 1}])
    deadline = time.monotonic() + 10
    while CALLS.count(("charge", order["id"], 1899, "USD")) < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert orders.get_order(order["id"])["status"] == "PENDING"
    SCRIPT["payments_down"] = False
    confirmed = wait_status(orders, order["id"], {"CONFIRMED"}, timeout=20)
    assert [change["status"] for change in confirmed["history"]] == ["PENDING", "CONFIRMED"]
    assert CALLS.count(("reserve", order["id"])) == 1
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def operator(rabbit_config, *args):
    """``python -m services.orders.stalled`` against the test's vhost, as an operator runs it."""
    return subprocess.run([sys.executable, "-m", "services.orders.stalled", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "AMQP_URI": rabbit_config["AMQP_URI"]})


def test_a_saga_that_keeps_failing_is_stalled_listed_and_resumed_by_an_operator(platform, monkeypatch,
                                                                                rabbit_config):
    orders, product = platform
    monkeypatch.setenv("ORDERS_SAGA_MAX_ATTEMPTS", "2")
    healthy = orders.create_order(customer_id=3, items=[{"product_id": product["id"], "quantity": 1}])
    wait_status(orders, healthy["id"], {"CONFIRMED"})
    SCRIPT["payments_down"] = True
    order = orders.create_order(customer_id=3, items=[{"product_id": product["id"], "quantity": 1}])
    deadline = time.monotonic() + 20
    while not orders.list_stalled() and time.monotonic() < deadline:
        time.sleep(0.2)
    [stalled] = orders.list_stalled()
    assert stalled["id"] == order["id"] and stalled["attempts"] == 2
    assert stalled["stalled_reason"].startswith("CHARGE_PAYMENT failed 2 times")
    assert orders.get_order(order["id"])["stalled_reason"] == stalled["stalled_reason"]
    time.sleep(2.5)  # stalled: the recovery timer leaves it alone
    assert CALLS.count(("charge", order["id"], 1899, "USD")) == 2
    with pytest.raises(Conflict):
        orders.resume_stalled(healthy["id"])

    # the operator's command lists it and resumes it (make stalled, make stalled RESUME=<id>)
    listed = operator(rabbit_config, "list")
    assert listed.returncode == 0 and f"order {order['id']}" in listed.stdout
    assert "CHARGE_PAYMENT failed 2 times" in listed.stdout
    refused = operator(rabbit_config, "resume", str(healthy["id"]))
    assert refused.returncode == 1 and "is not stalled" in refused.stderr
    assert "Traceback" not in refused.stderr
    SCRIPT["payments_down"] = False
    resumed = operator(rabbit_config, "resume", str(order["id"]))
    assert resumed.returncode == 0 and f"order {order['id']} resumed" in resumed.stdout
    confirmed = wait_status(orders, order["id"], {"CONFIRMED"})
    assert confirmed["stalled_reason"] is None and orders.list_stalled() == []


def test_orders_are_priced_from_the_local_read_model_kept_current_by_catalog_events(
        start_service, rpc_client, database_flavour):
    catalog_container = start_service(CatalogService)
    for stand_in in (InventoryStandIn, PaymentsStandIn, ShippingStandIn):
        start_service(stand_in, database=False)
    catalog = rpc_client("catalog")
    # known to the catalog before orders listened to its events: read over RPC once, then kept
    early = catalog.create_product({"sku": "EARLY-1", "name": "Tea", "category": "grocery",
                                    "price_cents": 500, "currency": "USD"})
    start_service(OrdersService, flavour=database_flavour)
    orders = rpc_client("orders")
    first = orders.create_order(customer_id=3, items=[{"product_id": early["id"], "quantity": 1}])
    assert first["total_cents"] == 500

    late = catalog.create_product({"sku": "LATE-1", "name": "Mug", "category": "home",
                                   "price_cents": 1200, "currency": "USD"})
    catalog.update_product(late["id"], {"price_cents": 1500})
    catalog.deactivate_product(early["id"])

    def priced(product_id):
        try:
            return orders.create_order(customer_id=3, items=[{"product_id": product_id, "quantity": 1}])
        except ValidationFailed as exc:
            return exc.details

    wait_for(lambda: priced(late["id"]).get("total_cents") == 1500, what="the new price at orders")
    unavailable = {"fields": {"items": {str(early["id"]): ["product is not available"]}}}
    wait_for(lambda: priced(early["id"]) == unavailable, what="the deactivation at orders")
    # with the catalog gone, orders are still priced: no RPC per order
    catalog_container.stop()
    assert priced(late["id"])["total_cents"] == 1500


def test_shipping_events_move_orders_and_one_about_no_order_is_dead_lettered(platform, rabbit_config):
    orders, product = platform
    order = orders.create_order(customer_id=3, items=[{"product_id": product["id"], "quantity": 1}])
    wait_status(orders, order["id"], {"CONFIRMED"})
    stray = make_envelope("shipping", "shipment_shipped", {"order_id": 999_999, "customer_id": 3},
                          correlation_id="stray")
    shipped = make_envelope("shipping", "shipment_shipped",
                            {"order_id": order["id"], "customer_id": 3, "tracking_number": "TRK-9"},
                            correlation_id="parcel")
    delivered = make_envelope("shipping", "shipment_delivered", {"order_id": order["id"], "customer_id": 3},
                              correlation_id="parcel")
    for envelope in (stray, shipped):
        publish_event(rabbit_config["AMQP_URI"], envelope)
    wait_status(orders, order["id"], {"SHIPPED"})
    for envelope in (shipped, delivered):  # shipped again: a redelivery, which changes nothing
        publish_event(rabbit_config["AMQP_URI"], envelope)
    final = wait_status(orders, order["id"], {"DELIVERED"})
    assert final["tracking_number"] == "TRK-9"
    assert [h["status"] for h in final["history"]] == ["PENDING", "CONFIRMED", "SHIPPED", "DELIVERED"]
    assert dead_lettered_ids(rabbit_config, expected=1) == {stray["event_id"]}
