"""Seed the demo catalog and its stock; safe to run again (existing SKUs are kept).

On an empty catalog the first product gets id 1, which the README's curl
walkthrough orders. The last product is priced 10.13: amounts ending in 13
cents are declined by the simulated payment processor, for demos and tests.
"""

from __future__ import annotations

from services.common.warnings_filter import silence_eventlet_banner

silence_eventlet_banner()  # before nameko imports eventlet (services/common/warnings_filter.py)

from nameko.standalone.rpc import ClusterRpcProxy  # noqa: E402

from services.common.config import load_config  # noqa: E402
from services.common.errors import Conflict  # noqa: E402

DEMO_PRODUCTS = [
    ("COFFEE-1KG", "Coffee Beans", "1kg bag of medium roast arabica", "grocery", 1899, "USD", 1000),
    ("TEA-GREEN", "Green Tea", "100 sachets of sencha", "grocery", 899, "USD", 1000),
    ("MUG-STEEL", "Travel Mug", "Insulated steel mug, 450 ml", "kitchen", 2450, "USD", 500),
    ("GRINDER-BURR", "Burr Grinder", "Conical burr coffee grinder", "kitchen", 8900, "USD", 100),
    ("KETTLE-GOOSE", "Gooseneck Kettle", "1 l pour-over kettle", "kitchen", 5400, "EUR", 100),
    ("CHOC-DARK", "Dark Chocolate", "70% cocoa, 100 g", "grocery", 350, "EUR", 1000),
    ("TEST-DECLINE", "Declined-payment test item", "Its price makes the simulated processor decline",
     "test", 1013, "USD", 1000),
]


def main() -> None:
    with ClusterRpcProxy(load_config(), timeout=30) as rpc:
        for sku, name, description, category, price_cents, currency, stock in DEMO_PRODUCTS:
            try:
                product = rpc.catalog.create_product({
                    "sku": sku, "name": name, "description": description, "category": category,
                    "price_cents": price_cents, "currency": currency,
                })
            except Conflict:
                continue  # seeded before: leave its price and stock as they are now
            rpc.inventory.set_stock(product["id"], stock)
    print("[platform] demo catalog seeded")


if __name__ == "__main__":
    main()
