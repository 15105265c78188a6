import eventlet
import pytest
from nameko.exceptions import IncorrectSignature
from nameko.testing.services import entrypoint_waiter

from services.common.envelope import make_envelope
from services.common.errors import OutOfStock, ValidationFailed
from services.inventory.models import Reservation
from services.inventory.service import InventoryService
from tests.helpers import emitted_correlation_ids, emitted_events, publish_event, row_count


@pytest.fixture
def container(start_service, database_flavour):
    # 50 workers so the concurrency tests really run 50 calls at once
    return start_service(InventoryService, flavour=database_flavour, max_workers=50)


@pytest.fixture
def inventory(container, rpc_client):
    return rpc_client("inventory")


def shortages(error):
    """The product ids an OutOfStock names (nameko's error serialisation turns numbers into strings)."""
    return [int(product_id) for product_id in error.details["product_ids"]]


def run_concurrently(rpc_client, calls):
    """Run each ``call(proxy)`` in its own greenthread with its own proxy; results or errors."""
    proxies = [rpc_client("inventory", timeout=60) for _ in calls]

    def attempt(index):
        try:
            return calls[index](proxies[index])
        except OutOfStock as exc:
            return exc

    return list(eventlet.GreenPool(len(calls)).imap(attempt, range(len(calls))))


def test_get_and_set_stock(container, inventory):
    assert inventory.get_stock(42) == {"product_id": 42, "available": 0, "reserved": 0}
    assert emitted_events(container) == []  # reading an unknown product writes nothing

    assert inventory.set_stock(42, 7) == {"product_id": 42, "available": 7, "reserved": 0}
    assert inventory.set_stock(42, 3) == {"product_id": 42, "available": 3, "reserved": 0}
    assert inventory.get_stock(42) == {"product_id": 42, "available": 3, "reserved": 0}
    assert [payload["available"] for kind, payload in emitted_events(container)] == [7, 3]
    assert {kind for kind, _ in emitted_events(container)} == {"stock_adjusted"}


def test_fifty_concurrent_reserves_never_oversell(container, inventory, rpc_client):
    inventory.set_stock(1, 10)
    calls = [lambda proxy, order_id=order_id: proxy.reserve(order_id, [{"product_id": 1, "quantity": 1}])
             for order_id in range(1, 51)]

    results = run_concurrently(rpc_client, calls)

    succeeded = [result for result in results if isinstance(result, dict)]
    refused = [result for result in results if isinstance(result, OutOfStock)]
    assert len(succeeded) == 10 and len(refused) == 40
    assert all(result["status"] == "RESERVED" for result in succeeded)
    assert all(shortages(error) == [1] for error in refused)
    assert inventory.get_stock(1) == {"product_id": 1, "available": 0, "reserved": 10}
    assert row_count(container, Reservation) == 10
    assert [kind for kind, _ in emitted_events(container)].count("stock_reserved") == 10


def test_concurrent_calls_for_one_order_act_once(container, inventory, rpc_client):
    inventory.set_stock(1, 10)
    line = [{"product_id": 1, "quantity": 3}]
    results = run_concurrently(rpc_client, [lambda proxy: proxy.reserve(9, line)] * 10)
    assert all(result == {"order_id": 9, "status": "RESERVED", "items": line} for result in results)
    assert inventory.get_stock(1) == {"product_id": 1, "available": 7, "reserved": 3}

    releases = run_concurrently(rpc_client, [lambda proxy: proxy.release(9)] * 10)
    assert sorted(result["released"] for result in releases) == [False] * 9 + [True]
    assert inventory.get_stock(1) == {"product_id": 1, "available": 10, "reserved": 0}
    assert [kind for kind, _ in emitted_events(container)].count("stock_released") == 1


def test_reserve_is_all_or_nothing(container, inventory):
    inventory.set_stock(1, 5)
    inventory.set_stock(2, 1)
    with pytest.raises(OutOfStock) as info:
        inventory.reserve(1, [{"product_id": 1, "quantity": 2}, {"product_id": 2, "quantity": 3},
                              {"product_id": 3, "quantity": 1}])
    assert shortages(info.value) == [2, 3]
    assert inventory.get_stock(1) == {"product_id": 1, "available": 5, "reserved": 0}
    assert inventory.get_stock(2) == {"product_id": 2, "available": 1, "reserved": 0}
    assert row_count(container, Reservation) == 0

    # the order can still be reserved once the stock is there
    inventory.set_stock(2, 3)
    retried = inventory.reserve(1, [{"product_id": 1, "quantity": 2}, {"product_id": 2, "quantity": 3}])
    assert retried["status"] == "RESERVED"


def test_reserve_merges_lines_and_is_idempotent(container, inventory):
    inventory.set_stock(1, 10)
    inventory.set_stock(2, 10)
    first = inventory.reserve(5, [{"product_id": 2, "quantity": 1}, {"product_id": 1, "quantity": 2},
                                  {"product_id": 1, "quantity": 3}])
    expected = {"order_id": 5, "status": "RESERVED",
                "items": [{"product_id": 1, "quantity": 5}, {"product_id": 2, "quantity": 1}]}
    assert first == expected
    # a retry, even with other lines, returns the existing hold and takes nothing more
    assert inventory.reserve(5, [{"product_id": 1, "quantity": 9}]) == expected
    assert inventory.get_stock(1) == {"product_id": 1, "available": 5, "reserved": 5}
    assert inventory.get_stock(2) == {"product_id": 2, "available": 9, "reserved": 1}
    reserved = [payload for kind, payload in emitted_events(container) if kind == "stock_reserved"]
    assert reserved == [{"order_id": 5, "items": expected["items"]}]


def test_commit_then_release_restocks_once(container, inventory):
    inventory.set_stock(1, 5)
    inventory.reserve(3, [{"product_id": 1, "quantity": 2}])
    assert inventory.commit(3) == {"order_id": 3, "committed": True}
    assert inventory.get_stock(1) == {"product_id": 1, "available": 3, "reserved": 0}
    assert inventory.commit(3) == {"order_id": 3, "committed": False}
    assert inventory.reserve(3, [{"product_id": 1, "quantity": 2}])["status"] == "COMMITTED"

    assert inventory.release(3) == {"order_id": 3, "released": True}
    assert inventory.get_stock(1) == {"product_id": 1, "available": 5, "reserved": 0}
    assert inventory.release(3) == {"order_id": 3, "released": False}
    assert inventory.commit(3) == {"order_id": 3, "committed": False}
    assert inventory.get_stock(1) == {"product_id": 1, "available": 5, "reserved": 0}

    kinds = [kind for kind, _ in emitted_events(container)]
    assert kinds == ["stock_adjusted", "stock_reserved", "stock_committed", "stock_released"]
    assert emitted_events(container)[-1][1] == {"order_id": 3, "items": [{"product_id": 1, "quantity": 2}]}


def test_release_of_a_hold_and_of_an_unknown_order(container, inventory):
    inventory.set_stock(1, 4)
    inventory.reserve(8, [{"product_id": 1, "quantity": 4}])
    assert inventory.get_stock(1) == {"product_id": 1, "available": 0, "reserved": 4}
    assert inventory.release(8) == {"order_id": 8, "released": True}
    assert inventory.get_stock(1) == {"product_id": 1, "available": 4, "reserved": 0}
    assert inventory.release(404) == {"order_id": 404, "released": False}
    assert inventory.commit(404) == {"order_id": 404, "committed": False}
    assert [kind for kind, _ in emitted_events(container)].count("stock_released") == 1


BAD_CALLS = [
    ("set_stock", (1, -1)),
    ("set_stock", (1, 1_000_001)),
    ("set_stock", (1, "5")),
    ("set_stock", (1, 2.5)),
    ("set_stock", ("1 OR 1=1", 5)),
    ("set_stock", (0, 5)),
    ("reserve", (1, [{"product_id": 1, "quantity": -1}])),
    ("reserve", (1, [{"product_id": 1, "quantity": 0}])),
    ("reserve", (1, [{"product_id": 1, "quantity": 10_001}])),
    ("reserve", (1, [{"product_id": 1, "quantity": "1"}])),
    ("reserve", (1, [{"product_id": 1, "quantity": 1, "price_cents": 0}])),
    ("reserve", (1, [{"product_id": "'; DROP TABLE stock; --", "quantity": 1}])),
    ("reserve", (1, [{"product_id": "x" * 100_000, "quantity": 1}])),
    ("reserve", (1, [])),
    ("reserve", (1, [{"product_id": 1, "quantity": 1}] * 101)),
    ("reserve", (1, "1,1")),
    ("reserve", ("1; DELETE FROM reservations", [{"product_id": 1, "quantity": 1}])),
    ("reserve", (True, [{"product_id": 1, "quantity": 1}])),
    ("release", ("1",)),
    ("release", (-1,)),
    ("commit", (None,)),
    ("commit", ("x" * 100_000,)),
    ("get_stock", (True,)),
    ("get_stock", ("1 OR 1=1",)),
]


def test_bad_input_is_refused_and_writes_nothing(container, inventory):
    inventory.set_stock(1, 5)
    for method, args in BAD_CALLS:
        with pytest.raises(ValidationFailed):
            getattr(inventory, method)(*args)
    with pytest.raises(IncorrectSignature):  # an unknown argument
        inventory.reserve(1, [{"product_id": 1, "quantity": 1}], priority="high")
    assert inventory.get_stock(1) == {"product_id": 1, "available": 5, "reserved": 0}
    assert row_count(container, Reservation) == 0
    assert [kind for kind, _ in emitted_events(container)] == ["stock_adjusted"]


def confirmed(order_id: int) -> dict:
    return make_envelope("orders", "order_confirmed",
                         {"order_id": order_id, "customer_id": 7, "status": "CONFIRMED", "total_cents": 100,
                          "currency": "USD", "reason": None},
                         correlation_id=f"confirm-{order_id}", aggregate_id=order_id)


def test_a_confirmed_order_turns_its_hold_into_a_sale_once(container, inventory, rabbit_config):
    inventory.set_stock(1, 5)
    inventory.reserve(4, [{"product_id": 1, "quantity": 2}])
    event = confirmed(4)
    for _ in range(2):  # a redelivery changes nothing
        with entrypoint_waiter(container, "on_orders_confirmed"):
            publish_event(rabbit_config["AMQP_URI"], event)
    assert inventory.get_stock(1) == {"product_id": 1, "available": 3, "reserved": 0}
    assert [kind for kind, _ in emitted_events(container)].count("stock_committed") == 1


def test_a_release_that_overtakes_the_confirmation_is_not_undone_by_it(container, inventory, rabbit_config):
    inventory.set_stock(1, 5)
    inventory.reserve(5, [{"product_id": 1, "quantity": 2}])
    assert inventory.release(5) == {"order_id": 5, "released": True}
    with entrypoint_waiter(container, "on_orders_confirmed"):
        publish_event(rabbit_config["AMQP_URI"], confirmed(5))
    assert inventory.get_stock(1) == {"product_id": 1, "available": 5, "reserved": 0}
    assert "stock_committed" not in [kind for kind, _ in emitted_events(container)]


def order(order_id: int, *lines: tuple[int, int]) -> dict:
    """A reserve_many entry: ``lines`` are (product_id, quantity)."""
    return {"order_id": order_id, "items": [{"product_id": product, "quantity": quantity}
                                            for product, quantity in lines]}


def reserved(order_id: int, *lines: tuple[int, int]) -> dict:
    """reserve_many's entry for an order it holds."""
    return {"order_id": order_id, "reservation": {"order_id": order_id, "status": "RESERVED",
                                                  "items": order(order_id, *lines)["items"]}}


def test_reserve_many_holds_each_order_on_its_own(container, inventory):
    inventory.set_stock(1, 5)
    inventory.set_stock(2, 2)
    batch = [order(1, (1, 2)), order(2, (1, 1), (2, 3)), order(3, (2, 2), (1, 1))]

    answers = inventory.reserve_many(batch)

    assert answers == [
        reserved(1, (1, 2)),
        {"order_id": 2, "error": {"code": "out_of_stock", "message": "insufficient stock",
                                  "details": {"product_ids": [2]}}},
        reserved(3, (1, 1), (2, 2)),
    ]
    # order 2's take of product 1 went back with its savepoint
    assert inventory.get_stock(1) == {"product_id": 1, "available": 2, "reserved": 3}
    assert inventory.get_stock(2) == {"product_id": 2, "available": 0, "reserved": 2}
    assert row_count(container, Reservation) == 3
    assert [payload for kind, payload in emitted_events(container) if kind == "stock_reserved"] == [
        {"order_id": 1, "items": answers[0]["reservation"]["items"]},
        {"order_id": 3, "items": answers[2]["reservation"]["items"]},
    ]
    # the short order's error is the one reserve raises
    with pytest.raises(OutOfStock) as info:
        inventory.reserve(2, batch[1]["items"])
    assert shortages(info.value) == [2]

    # a retry returns the same holds and takes nothing more; reserve sees the same holds
    assert inventory.reserve_many(batch) == answers
    assert inventory.reserve(3, [{"product_id": 1, "quantity": 5}]) == answers[2]["reservation"]
    assert inventory.get_stock(1) == {"product_id": 1, "available": 2, "reserved": 3}
    assert inventory.get_stock(2) == {"product_id": 2, "available": 0, "reserved": 2}
    assert row_count(container, Reservation) == 3
    assert [kind for kind, _ in emitted_events(container)].count("stock_reserved") == 2


def test_each_order_of_a_batch_keeps_its_own_correlation_id(container, inventory):
    inventory.set_stock(1, 5)
    inventory.reserve_many([order(1, (1, 1)) | {"correlation_id": "req-1"},
                            order(2, (1, 1)) | {"correlation_id": "req-2"}])
    assert emitted_correlation_ids(container)[1:] == [
        ("stock_reserved", "req-1"), ("stock_reserved", "req-2")]


def test_reserve_many_holds_an_order_given_twice_once(container, inventory):
    inventory.set_stock(1, 5)
    assert inventory.reserve_many([order(4, (1, 2)), order(4, (1, 3))]) == [reserved(4, (1, 2))] * 2
    assert inventory.get_stock(1) == {"product_id": 1, "available": 3, "reserved": 2}
    assert [kind for kind, _ in emitted_events(container)].count("stock_reserved") == 1


def test_reserve_many_refuses_a_malformed_entry_alone(container, inventory):
    inventory.set_stock(1, 5)
    answers = inventory.reserve_many([
        order(1, (1, 1)),
        order(2, (1, 0)),
        {"order_id": "3; DELETE FROM stock", "items": [{"product_id": 1, "quantity": 1}]},
        {"items": [{"product_id": 1, "quantity": 1}]},
        order(5, (1, 1)) | {"priority": "high"},
        order(6, (1, 2)),
    ])

    assert [answer["order_id"] for answer in answers] == [1, 2, "3; DELETE FROM stock", None, 5, 6]
    assert answers[0] == reserved(1, (1, 1)) and answers[5] == reserved(6, (1, 2))
    for answer in answers[1:5]:
        assert set(answer) == {"order_id", "error"}
        assert answer["error"]["code"] == "validation_failed"
        assert answer["error"]["details"]["fields"]
    assert inventory.get_stock(1) == {"product_id": 1, "available": 2, "reserved": 3}
    assert row_count(container, Reservation) == 2


BAD_BATCHES = [[], "1,1", None, {"order_id": 1}, [1], [[order(1, (1, 1))]], [order(1, (1, 1))] * 501]


def test_a_malformed_batch_is_refused_and_writes_nothing(container, inventory):
    inventory.set_stock(1, 5)
    for reservations in BAD_BATCHES:
        with pytest.raises(ValidationFailed):
            inventory.reserve_many(reservations)
    assert inventory.get_stock(1) == {"product_id": 1, "available": 5, "reserved": 0}
    assert row_count(container, Reservation) == 0
    assert [kind for kind, _ in emitted_events(container)] == ["stock_adjusted"]


def test_concurrent_batches_never_oversell(container, inventory, rpc_client):
    inventory.set_stock(1, 10)
    inventory.set_stock(2, 10)
    # ten batches of five orders, 25 orders for each product; consecutive orders alternate products
    # and the batches start on either, so two batches take the same rows in opposite orders
    batches = [[order(5 * call + index + 1, ((call + index) % 2 + 1, 1)) for index in range(5)]
               for call in range(10)]
    calls = [lambda proxy, batch=batch: proxy.reserve_many(batch) for batch in batches]

    answers = [answer for batch in run_concurrently(rpc_client, calls) for answer in batch]

    held = [answer for answer in answers if "reservation" in answer]
    refused = [answer for answer in answers if "error" in answer]
    assert len(held) == 20 and len(refused) == 30
    assert all(answer["error"]["code"] == "out_of_stock" for answer in refused)
    assert inventory.get_stock(1) == {"product_id": 1, "available": 0, "reserved": 10}
    assert inventory.get_stock(2) == {"product_id": 2, "available": 0, "reserved": 10}
    assert row_count(container, Reservation) == 20
    reserved_orders = [payload["order_id"] for kind, payload in emitted_events(container)
                       if kind == "stock_reserved"]
    assert sorted(reserved_orders) == sorted(answer["order_id"] for answer in held)


def test_concurrent_batches_for_the_same_orders_hold_each_once(container, inventory, rpc_client):
    inventory.set_stock(1, 100)
    inventory.set_stock(2, 100)
    orders = [order(order_id, (1, 3), (2, 1)) for order_id in range(1, 6)]
    # every batch holds the same five orders, in an order of its own
    calls = [lambda proxy, shift=call % 5: proxy.reserve_many(orders[shift:] + orders[:shift])
             for call in range(10)]

    answers = [answer for batch in run_concurrently(rpc_client, calls) for answer in batch]

    assert len(answers) == 50
    assert all(answer == reserved(answer["order_id"], (1, 3), (2, 1)) for answer in answers)
    assert inventory.get_stock(1) == {"product_id": 1, "available": 85, "reserved": 15}
    assert inventory.get_stock(2) == {"product_id": 2, "available": 95, "reserved": 5}
    assert row_count(container, Reservation) == 10
    assert [kind for kind, _ in emitted_events(container)].count("stock_reserved") == 5
