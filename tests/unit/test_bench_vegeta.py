"""bench.vegeta: reading vegeta's results and report, and writing its targets.

The CSV rows are real ones (``vegeta encode --to csv`` of v12.13.0's results: a 202 with an order
body, and a refused connection).
"""

from __future__ import annotations

import base64
import json

import pytest

from bench import analysis, vegeta

ACCEPTED = (
    "1796186794157594197,202,7048575,32,48,,eyJpZCI6IDcsICJjdXN0b21lcl9pZCI6IDMsICJzdGF0dXMiOiAiUEVORElORyJ9,"
    "t,0,POST,http://127.0.0.1:18999/api/orders,Q29udGVudC1MZW5ndGg6IDQ4DQoNCg=="
)
REFUSED = (
    '1796186800632947440,0,735493,0,0,"Get ""http://127.0.0.1:18999/x"": dial tcp '
    '0.0.0.0:0->127.0.0.1:18999: connect: connection refused",,,0,GET,http://127.0.0.1:18999/x,'
)
REPORT = {
    "latencies": {
        "total": 1120014,
        "mean": 560007,
        "50th": 560007,
        "90th": 735493,
        "95th": 735493,
        "99th": 12_500_000,
        "max": 20_000_000,
        "min": 384521,
    },
    "duration": 487302790,
    "wait": 384521,
    "requests": 2,
    "rate": 4.10422439814063,
    "throughput": 0,
    "success": 0,
    "status_codes": {"0": 2},
    "errors": ["connection refused"],
}


def test_csv_results_are_read_in_seconds_and_milliseconds_oldest_first() -> None:
    # the refused request was sent later: it comes second whatever the order of the rows
    accepted, refused = vegeta.parse_csv(REFUSED + "\n" + ACCEPTED + "\n")
    assert accepted.start == pytest.approx(1796186794.157594197)
    assert accepted.code == 202 and accepted.latency_ms == pytest.approx(7.048575)
    assert json.loads(accepted.body) == {"id": 7, "customer_id": 3, "status": "PENDING"}
    assert accepted.method == "POST" and accepted.url.endswith("/api/orders")
    assert accepted.end == pytest.approx(accepted.start + 0.007048575)
    assert refused.code == 0 and "connection refused" in refused.error and refused.body == b""
    assert [r.code for r in vegeta.parse_csv(ACCEPTED + "\n" + REFUSED)] == [202, 0]


def test_a_row_of_another_shape_is_an_error_not_a_wrong_figure() -> None:
    with pytest.raises(ValueError, match="12 fields"):
        vegeta.parse_csv("1796186794157594197,202,7048575\n")


def test_results_become_samples_and_accepted_orders() -> None:
    results = vegeta.parse_csv(ACCEPTED + "\n" + REFUSED)
    samples = analysis.samples_of(results, "POST /api/orders", 202)
    assert [s[3] for s in samples] == [True, False] and [s[4] for s in samples] == [202, 0]
    assert samples[0][2] == pytest.approx(7.05)
    ((order_id, accepted_at, customer_id),) = analysis.accepted_orders(results)
    assert (order_id, customer_id) == (7, 3)
    assert accepted_at == pytest.approx(results[0].end, abs=1e-3)


def test_report_is_kept_in_milliseconds() -> None:
    summary = vegeta.summary(REPORT)
    assert summary["latency_ms"]["99th"] == 12.5 and summary["latency_ms"]["max"] == 20.0
    assert summary["requests"] == 2 and summary["rate"] == 4.1 and summary["status_codes"] == {"0": 2}
    assert summary["duration_s"] == pytest.approx(0.487, abs=1e-3)


def test_targets_carry_their_headers_and_a_base64_json_body() -> None:
    t = vegeta.target(
        "POST", "http://h/api/orders", {"Idempotency-Key": "k1"}, {"product_id": 4, "quantity": 1}
    )
    assert t["header"] == {"Idempotency-Key": ["k1"], "Content-Type": ["application/json"]}
    assert json.loads(base64.b64decode(t["body"])) == {"product_id": 4, "quantity": 1}
    assert "body" not in vegeta.target("GET", "http://h/api/products/1")


def test_a_missing_vegeta_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEGETA", "/nonexistent/vegeta")
    with pytest.raises(vegeta.VegetaMissing, match=r"go install github\.com/tsenart/vegeta/v12@v12\.13\.0"):
        vegeta.binary()
