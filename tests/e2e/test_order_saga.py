"""The order saga on the real running services, driven over RPC and events."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime

from tests.e2e.conftest import FINAL, query, supervisorctl
from tests.helpers import wait_for


def place(rpc, customer, product, quantity=1):
    return rpc.orders.create_order(customer_id=customer["id"],
                                   items=[{"product_id": product["id"], "quantity": quantity}])


def final_order(rpc, order_id, statuses=FINAL, timeout=40):
    return wait_for(lambda: (o := rpc.orders.get_order(order_id)) and o["status"] in statuses and o,
                    timeout=timeout, what=f"order {order_id} to reach {sorted(statuses)}")


def test_an_order_goes_all_the_way_to_shipped_then_delivered(rpc, customer, new_product):
    product = new_product(stock=5, price_cents=1250)
    order = place(rpc, customer, product, quantity=2)
    assert order["status"] == "PENDING" and order["total_cents"] == 2500 and order["currency"] == "USD"

    shipped = final_order(rpc, order["id"], {"SHIPPED", "DELIVERED"})
    delivered = final_order(rpc, order["id"], {"DELIVERED"})
    history = [change["status"] for change in delivered["history"]]
    assert history == ["PENDING", "CONFIRMED", "SHIPPED", "DELIVERED"], shipped
    assert rpc.payments.get_payment(order["id"])["status"] == "CAPTURED"
    assert rpc.payments.get_payment(order["id"])["amount_cents"] == 2500
    assert rpc.shipping.get_shipment(order["id"])["tracking_number"].startswith("TRK")
    assert rpc.inventory.get_stock(product["id"]) == {"product_id": product["id"], "available": 3,
                                                      "reserved": 0}
    subjects = wait_for(lambda: [n["subject"] for n in
                                 rpc.notifications.list_notifications(customer["id"])["items"]
                                 if str(order["id"]) in n["body"]] or None, what="notifications")
    assert len(subjects) >= 3


def test_a_forced_decline_ends_cancelled_with_stock_restored(rpc, customer, new_product):
    product = new_product(stock=3, price_cents=1013)  # amounts ending in 13 cents are declined
    order = place(rpc, customer, product)
    cancelled = final_order(rpc, order["id"])
    assert cancelled["status"] == "CANCELLED"
    assert "declined" in cancelled["reason"]
    assert rpc.payments.get_payment(order["id"])["status"] == "DECLINED"
    assert rpc.inventory.get_stock(product["id"])["available"] == 3
    assert rpc.inventory.get_stock(product["id"])["reserved"] == 0


def test_out_of_stock_ends_rejected_and_charges_nothing(rpc, customer, new_product):
    product = new_product(stock=1)
    order = place(rpc, customer, product, quantity=2)
    rejected = final_order(rpc, order["id"])
    assert rejected["status"] == "REJECTED" and "stock" in rejected["reason"]
    assert query("payments", "select count(*) from payments where order_id = ?", order["id"]) == [(0,)]
    assert rpc.inventory.get_stock(product["id"])["available"] == 1


def test_a_customer_cancels_before_shipping_and_is_refunded(rpc, customer, new_product):
    product = new_product(stock=2)
    order = place(rpc, customer, product)
    wait_for(lambda: rpc.orders.get_order(order["id"])["status"] == "CONFIRMED", what="confirmation")
    rpc.orders.cancel_order(order["id"], customer_id=customer["id"])
    # the shipping timer may win the race; either outcome must be consistent
    final = final_order(rpc, order["id"], {"CANCELLED", "SHIPPED", "DELIVERED"})
    payment = rpc.payments.get_payment(order["id"])
    if final["status"] == "CANCELLED":
        assert payment["status"] == "REFUNDED"
        assert rpc.inventory.get_stock(product["id"])["available"] == 2
    else:
        assert payment["status"] == "CAPTURED"


def test_kill_9_of_payments_mid_saga_completes_with_exactly_one_charge(rpc, customer, new_product):
    product = new_product(stock=2)
    pid = int(supervisorctl("pid", "services:payments"))
    order = place(rpc, customer, product)
    # the charge is in flight once the stock is reserved (payments simulates 400 ms of latency)
    wait_for(lambda: rpc.inventory.get_stock(product["id"])["reserved"] == 1, interval=0.02,
             what="the reservation")
    time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    killed_at = datetime.now(UTC)
    assert query("payments", "select count(*) from payments where order_id = ?", order["id"]) == [(0,)]

    final = final_order(rpc, order["id"], {"SHIPPED", "DELIVERED"}, timeout=60)
    assert final["status"] in {"SHIPPED", "DELIVERED"}
    rows = query("payments", "select status, created_at from payments where order_id = ?", order["id"])
    assert len(rows) == 1 and rows[0][0] == "CAPTURED"
    # the charge was made by the restarted process, i.e. it really was in flight at the kill
    assert datetime.fromisoformat(rows[0][1]).replace(tzinfo=UTC) > killed_at
    assert int(supervisorctl("pid", "services:payments")) != pid
