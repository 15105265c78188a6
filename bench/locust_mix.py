"""The realistic mix: every virtual user registers and logs in, then browses and buys.

Task weights: browse products 60, product detail 15, cart 10, place order 10,
check order status 5. Users, ramp (spawn rate) and duration come from locust's
own flags (-u, -r, -t), which bench.run sets from its --users, --spawn-rate and
--duration; think time from BENCH_WAIT_MIN/BENCH_WAIT_MAX seconds.
"""

from __future__ import annotations

import os
import random
import uuid

from locust import between, task
from locust.contrib.fasthttp import FastHttpUser
from locust.exception import StopUser

from bench.locust_common import PASSWORD, RECORDS, place_order, random_product


class MixUser(FastHttpUser):
    wait_time = between(
        float(os.environ.get("BENCH_WAIT_MIN", "0.5")), float(os.environ.get("BENCH_WAIT_MAX", "1.5"))
    )

    def on_start(self) -> None:
        email = f"mix-{uuid.uuid4().hex[:12]}@bench.example.com"
        created = self._sign("register", {"name": "Bench Shopper", "email": email, "password": PASSWORD}, 201)
        self.customer_id = created["id"]
        token = self._sign("login", {"email": email, "password": PASSWORD}, 200)["access_token"]
        self.headers = {"Authorization": f"Bearer {token}"}
        RECORDS["customers"].append(self.customer_id)
        self.orders: list[int] = []
        self.in_cart: int | None = None

    def _sign(self, step: str, body: dict, expected: int) -> dict:
        """POST /auth/<step>; a user who cannot register or log in stops (and is counted)."""
        with self.client.post(f"/auth/{step}", json=body, name=f"POST /auth/{step}",
                              catch_response=True) as response:
            if response.status_code != expected:
                response.failure(f"HTTP {response.status_code}")
                RECORDS["user_errors"].append(f"{step}: HTTP {response.status_code}")
                raise StopUser()
            return response.json()

    @task(60)
    def browse_products(self) -> None:
        query = random.choice(["", "&q=bench", "&category=bench", "&q=coffee"])
        self.client.get(
            f"/api/products?page={random.randint(1, 2)}&per_page=20{query}",
            headers=self.headers,
            name="GET /api/products",
        )

    @task(15)
    def product_detail(self) -> None:
        self.client.get(
            f"/api/products/{random_product()}", headers=self.headers, name="GET /api/products/<id>"
        )

    @task(10)
    def cart(self) -> None:
        # alternately add a line and remove it, so carts stay small; then look at the cart
        if self.in_cart is None:
            self.in_cart = random_product()
            self.client.post(
                "/api/cart/items",
                json={"product_id": self.in_cart, "quantity": 1},
                headers=self.headers,
                name="POST /api/cart/items",
            )
        else:
            self.client.delete(
                f"/api/cart/items/{self.in_cart}", headers=self.headers, name="DELETE /api/cart/items/<id>"
            )
            self.in_cart = None
        self.client.get("/api/cart", headers=self.headers, name="GET /api/cart")

    @task(10)
    def place_order(self) -> None:
        order_id = place_order(self, self.headers, self.customer_id)
        if order_id is not None:
            self.orders.append(order_id)

    @task(5)
    def order_status(self) -> None:
        if self.orders:
            self.client.get(
                f"/api/orders/{random.choice(self.orders[-5:])}",
                headers=self.headers,
                name="GET /api/orders/<id>",
            )
        else:
            self.client.get("/api/orders?per_page=5", headers=self.headers, name="GET /api/orders")
