"""Observability of the running stack against the real servers scripts/observability.sh runs:
logs in the local search engine (OpenSearch, fed by the rsyslog shipper), Prometheus scraping
the stack, the Kibana saved searches executed as their equivalent queries.

The stack must run with LOGSTASH_HOST set and its Prometheus started (scripts/test.sh does
both); SEARCH_URL, PROMETHEUS_PORT and GATEWAY_URL (else GATEWAY_PORT) say where the servers are.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from nameko.standalone.rpc import ClusterRpcProxy

from services.common.envelope import make_envelope
from services.common.logsearch import INDEX_PATTERN
from tests.e2e.conftest import AMQP_URI, FINAL
from tests.helpers import publish_event, wait_for

ROOT = Path(__file__).resolve().parents[2]
SEARCH_URL = os.environ.get("SEARCH_URL", "http://127.0.0.1:9200")
PROMETHEUS_URL = f"http://127.0.0.1:{os.environ.get('PROMETHEUS_PORT', '9090')}"
GATEWAY_URL = os.environ.get("GATEWAY_URL", f"http://127.0.0.1:{os.environ.get('GATEWAY_PORT', '8080')}"
                             ).rstrip("/")
#: everything an order placed through the gateway passes through until it is shipped
#: the services an order passes through (orders prices it from its own read model of the catalog)
SAGA_PATH = {"gateway", "orders", "inventory", "payments", "shipping", "notifications"}
PASSWORD = "correct-horse-9"


def search(query: dict[str, Any], sort: list[Any] | None = None) -> list[dict[str, Any]]:
    response = requests.post(f"{SEARCH_URL}/{INDEX_PATTERN}/_search", timeout=10, json={
        "query": query, "size": 1000, "sort": sort or [{"@timestamp": "asc"}]})
    response.raise_for_status()
    return [hit["_source"] for hit in response.json()["hits"]["hits"]]


def place_order(correlation_id: str, product: dict, quantity: int = 1) -> dict:
    with ClusterRpcProxy({"AMQP_URI": AMQP_URI}, context_data={"correlation_id": correlation_id},
                         timeout=30) as rpc:
        customer = rpc.customers.register({"name": "Obs", "email": f"obs-{uuid.uuid4().hex}@example.com",
                                           "password": "correct-horse-9"})
        return rpc.orders.create_order(customer_id=customer["id"],
                                       items=[{"product_id": product["id"], "quantity": quantity}])


def gateway(method: str, path: str, **kwargs: Any) -> requests.Response:
    """One call to the gateway; waits out a 429 (the end-to-end modules share the stack's limits)."""
    for _ in range(10):
        response = requests.request(method, GATEWAY_URL + path, timeout=30, **kwargs)
        if response.status_code != 429:
            break
        time.sleep(int(response.headers.get("Retry-After", "1")))
    return response


@pytest.fixture(scope="module")
def traced_order(rpc: Any) -> dict[str, Any]:
    """One order placed through the gateway with a known X-Request-ID, and when the 202 came back."""
    product = rpc.catalog.create_product({"sku": f"OBS-{time.time_ns()}", "name": "Traced", "category": "e2e",
                                          "price_cents": 700, "currency": "EUR"})
    rpc.inventory.set_stock(product["id"], 5)
    email = f"obs-{uuid.uuid4().hex}@example.com"
    customer = rpc.customers.register({"name": "Obs", "email": email, "password": PASSWORD})
    login = gateway("POST", "/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    correlation_id = f"obs-{uuid.uuid4().hex}"
    placed = gateway("POST", "/api/orders", json={"product_id": product["id"], "quantity": 1},
                     headers={"Authorization": f"Bearer {login.json()['access_token']}",
                              "X-Request-ID": correlation_id})
    placed_at = time.monotonic()
    assert placed.status_code == 202, placed.text
    assert placed.headers["X-Request-ID"] == correlation_id
    return {"correlation_id": correlation_id, "order": placed.json(), "customer": customer,
            "placed_at": placed_at}


def test_every_service_on_the_saga_path_logs_the_request_within_10s(traced_order: dict[str, Any]) -> None:
    correlation_id = traced_order["correlation_id"]

    def services_seen() -> set[str]:
        return {doc.get("service") for doc in search({"term": {"correlation_id": correlation_id}})}

    deadline = traced_order["placed_at"] + 10
    while (seen := services_seen()) < SAGA_PATH and time.monotonic() < deadline:
        time.sleep(0.5)
    assert seen >= SAGA_PATH, f"after 10 s only {sorted(seen)} had logged {correlation_id}"
    docs = search({"term": {"correlation_id": correlation_id}})
    calls = {(doc["service"], doc["method"]) for doc in docs if doc.get("duration_ms") is not None}
    assert {("gateway", "POST /api/orders"), ("orders", "create_order")} <= calls
    # the saga's batch calls and the events consumed in batches: each order's own line carries its
    # request's correlation id
    handled = {(doc["service"], doc.get("method")) for doc in docs}
    assert {("orders", "on_order_created"), ("inventory", "reserve_many"), ("payments", "charge_many"),
            ("shipping", "on_orders_confirmed"), ("notifications", "on_order_confirmed")} <= handled
    for doc in docs:
        assert doc["level"] and doc["message"] and doc["@timestamp"]
    # the gateway's one access line for the request: its outcome and who asked
    [access] = [doc for doc in docs if doc["service"] == "gateway" and doc.get("status") is not None]
    assert (access["kind"], access["method"], access["status"]) == ("http", "POST /api/orders", 202)
    assert access["customer_id"] == traced_order["customer"]["id"] and access["duration_ms"] > 0


def saved_searches() -> dict[str, dict[str, Any]]:
    lines = (ROOT / "elk/kibana/saved_objects.ndjson").read_text().splitlines()
    objects = [json.loads(line) for line in lines if line.strip()]
    return {obj["id"]: obj["attributes"] for obj in objects if obj["type"] == "search"}


def query_of(search_id: str) -> str:
    attributes = saved_searches()[search_id]
    return json.loads(attributes["kibanaSavedObjectMeta"]["searchSourceJSON"])["query"]["query"]


def count(query: dict[str, Any]) -> int:
    response = requests.post(f"{SEARCH_URL}/{INDEX_PATTERN}/_count", json={"query": query}, timeout=10)
    response.raise_for_status()
    return response.json()["count"]


def run_saved_search(search_id: str, **placeholders: str) -> list[dict[str, Any]]:
    """The saved search as Kibana's Discover runs it: its Lucene query and its sort."""
    attributes = saved_searches()[search_id]
    query = query_of(search_id)
    for placeholder, value in placeholders.items():
        query = query.replace(placeholder, value)
    sort = [{field: direction} for field, direction in attributes["sort"]]
    return search({"query_string": {"query": query}}, sort)


def test_saved_search_trace_one_request(traced_order: dict[str, Any]) -> None:
    correlation_id = traced_order["correlation_id"]
    wait_for(lambda: {doc["service"] for doc in search({"term": {"correlation_id": correlation_id}})}
             >= SAGA_PATH, timeout=20, what="the request's logs")
    found = run_saved_search("trace-request", **{"PASTE-X-REQUEST-ID": correlation_id})
    expected = search({"term": {"correlation_id": correlation_id}})
    assert sorted(map(json.dumps, found)) == sorted(map(json.dumps, expected))
    assert len(found) >= len(SAGA_PATH)
    assert [doc["@timestamp"] for doc in found] == sorted(doc["@timestamp"] for doc in found)


def test_saved_search_order_lifecycle(rpc: Any, traced_order: dict[str, Any]) -> None:
    order_id = traced_order["order"]["id"]
    wait_for(lambda: rpc.orders.get_order(order_id)["status"] in FINAL, timeout=60, what="a final status")

    def lifecycle() -> list[dict[str, Any]]:
        return run_saved_search("order-lifecycle", **{"PASTE-ORDER-ID": str(order_id)})

    wanted = {("orders", "on_order_created"), ("notifications", "on_order_delivered"),
              ("payments", "charge_many"), ("shipping", "on_orders_confirmed"), ("inventory", "reserve_many")}
    docs = wait_for(lambda: (docs := lifecycle())
                    and wanted <= {(doc["service"], doc.get("method")) for doc in docs} and docs,
                    timeout=20, what="the order's delivery in the logs")
    assert {str(doc["order_id"]) for doc in docs} == {str(order_id)}
    assert [doc["@timestamp"] for doc in docs] == sorted(doc["@timestamp"] for doc in docs)
    # the shipping timer's events carry no correlation id, but the order's lines in every service of
    # its saga carry its request's
    assert {doc["service"] for doc in docs if doc.get("correlation_id") == traced_order["correlation_id"]
            } >= SAGA_PATH - {"gateway"}


def test_saved_search_errors_by_service() -> None:
    correlation_id = f"obs-poison-{uuid.uuid4().hex}"
    # a payload that breaks its schema: notifications fails it and parks it, logging ERROR
    poison = make_envelope("orders", "order_confirmed", {"order_id": 1, "no_customer": True},
                           correlation_id=correlation_id, aggregate_id=1)
    publish_event(AMQP_URI, poison)
    wait_for(lambda: search({"bool": {"filter": [{"term": {"correlation_id": correlation_id}},
                                                 {"term": {"level": "ERROR"}}]}}),
             timeout=20, what="the handler's ERROR line")
    found = run_saved_search("errors-by-service")
    assert found and {doc["level"] for doc in found} <= {"ERROR", "CRITICAL"}
    # Discover shows the first page only; other services' errors may fill it, so ours is looked up
    # with the saved query narrowed to its correlation id
    ours = search({"bool": {"must": [{"query_string": {"query": query_of("errors-by-service")}},
                                     {"term": {"correlation_id": correlation_id}}]}})
    assert ours and {doc["service"] for doc in ours} == {"notifications"}
    assert {doc.get("error") for doc in ours} >= {"ValidationFailed"}
    services = [doc["service"] for doc in found]
    assert services == sorted(services)
    # the query matches every ERROR line of the index, and nothing else
    assert count({"query_string": {"query": query_of("errors-by-service")}}) == \
        count({"terms": {"level": ["ERROR", "CRITICAL"]}})


def prometheus(path: str, **params: str) -> Any:
    response = requests.get(f"{PROMETHEUS_URL}/api/v1/{path}", params=params, timeout=10)
    response.raise_for_status()
    body = response.json()
    assert body["status"] == "success", body
    return body["data"]


def test_all_targets_are_up() -> None:
    def down() -> list[str]:
        targets = prometheus("targets")["activeTargets"]
        assert {target["labels"]["job"] for target in targets} >= {"services", "gateway", "rabbitmq",
                                                                   "rabbitmq-queues"}
        return [f"{t['scrapeUrl']}: {t['health']} {t['lastError']}" for t in targets if t["health"] != "up"]

    problems = down()
    deadline = time.monotonic() + 30
    while problems and time.monotonic() < deadline:
        time.sleep(1)
        problems = down()
    assert not problems


def grafana_expressions() -> list[tuple[str, str]]:
    found = []
    for path in sorted((ROOT / "prometheus/grafana/dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            found.extend((f"{path.stem}: {panel['title']}", target["expr"]) for target in panel["targets"])
    return found


def rule_expressions() -> list[tuple[str, str]]:
    groups = yaml.safe_load((ROOT / "prometheus/rules/alerts.yml").read_text())["groups"]
    return [(f"alert {rule['alert']}", rule["expr"]) for group in groups for rule in group["rules"]]


#: the Grafana variables, as a dashboard over the last hour fills them in
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__range": "1h", "$service": ".*"}
THRESHOLD = re.compile(r"\s*(==|!=|>=|<=|>|<)\s*-?[0-9.]+(?=\s|\)|$)")


def with_variables(expr: str) -> str:
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


@pytest.fixture(scope="module")
def traffic(traced_order: dict[str, Any], rpc: Any) -> None:
    """Orders that confirm and one that is declined, a typed error, gateway requests; then two scrapes."""
    declined = rpc.catalog.create_product({"sku": f"OBS-D-{time.time_ns()}", "name": "Declined",
                                           "category": "e2e", "price_cents": 1013, "currency": "EUR"})
    rpc.inventory.set_stock(declined["id"], 5)
    place_order(f"obs-decline-{uuid.uuid4().hex}", declined)
    with pytest.raises(Exception, match="not found"):
        rpc.orders.get_order(2**31 - 1)
    for _ in range(3):
        requests.get(f"{GATEWAY_URL}/health", timeout=5)
    wait_for(lambda: prometheus("query", query="sum(payments_declined_total)")["result"], timeout=60,
             what="the decline in Prometheus")
    time.sleep(12)  # two more scrapes, so every rate() has two samples of the new counters


@pytest.mark.parametrize(("where", "expr"), grafana_expressions() + rule_expressions(),
                         ids=[where for where, _ in grafana_expressions() + rule_expressions()])
def test_every_expression_is_valid_and_returns_data(traffic: None, where: str, expr: str) -> None:
    expr = with_variables(expr)
    prometheus("query", query=expr)  # valid: Prometheus evaluates it without an error
    # an alert's expression is empty while nothing is wrong; its series without the threshold must exist
    data_expr = THRESHOLD.sub("", expr) if where.startswith("alert ") else expr
    result = prometheus("query", query=data_expr)["result"]
    targets = prometheus("targets")["activeTargets"]
    kafka_scraped = any(target["labels"]["job"] == "kafka" for target in targets)
    if "kafka_" in expr and not kafka_scraped:
        # no Kafka in this stack until the analytics issue lands: valid is all we can check
        assert result == [], f"{where}: data without a Kafka target? {result}"
        return
    assert result, f"{where}: no data for {data_expr}"


def test_every_rule_evaluates_without_error() -> None:
    groups = prometheus("rules")["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    names = {where.removeprefix("alert ") for where, _ in rule_expressions()}
    assert {rule["name"] for rule in rules} == names
    assert all(rule["health"] == "ok" for rule in rules), [(r["name"], r.get("lastError")) for r in rules]
