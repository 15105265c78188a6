"""The observability files: Prometheus config and alert rules through promtool, the
Grafana dashboards, the Kibana saved objects and their import script.

promtool comes with Debian's prometheus package (scripts/observability.sh install);
these tests need it and fail without it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "prometheus"
DASHBOARDS = sorted((PROMETHEUS / "grafana" / "dashboards").glob("*.json"))
SAVED_OBJECTS = ROOT / "elk" / "kibana" / "saved_objects.ndjson"


def promtool(*args: str) -> subprocess.CompletedProcess:
    assert shutil.which("promtool"), "promtool is missing: run scripts/observability.sh install"
    return subprocess.run(["promtool", *args], capture_output=True, text=True, cwd=PROMETHEUS)


def test_promtool_accepts_the_config() -> None:
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_rules() -> None:
    result = promtool("check", "rules", *map(str, sorted((PROMETHEUS / "rules").glob("*.yml"))))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alert_rule_unit_tests_pass() -> None:
    result = promtool("test", "rules", "tests/alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_the_issue_asks_for_has_a_unit_test() -> None:
    rules = yaml.safe_load((PROMETHEUS / "rules" / "alerts.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert {"ServiceDown", "GatewayHigh5xxRate", "GatewayHighP99Latency", "ServiceHighP99Latency",
            "CircuitBreakerOpen", "DeadLetterQueueNotEmpty", "OutboxBacklogGrowing",
            "KafkaConsumerLag"} <= alerts
    tests = yaml.safe_load((PROMETHEUS / "tests" / "alerts_test.yml").read_text())
    tested = {case["alertname"] for test in tests["tests"] for case in test["alert_rule_test"]
              if case.get("exp_alerts")}
    assert alerts == tested, f"alerts never seen firing in a unit test: {alerts - tested}"


def test_every_job_reads_its_targets_from_a_file_the_compose_run_ships() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    for job in config["scrape_configs"]:
        (files,) = (sd["files"] for sd in job["file_sd_configs"])
        for name in files:
            assert json.loads((PROMETHEUS / name).read_text()), f"{job['job_name']}: {name} is empty"


@pytest.mark.parametrize("path", DASHBOARDS, ids=[path.stem for path in DASHBOARDS])
def test_dashboards_query_the_provisioned_prometheus(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["panels"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    datasource = yaml.safe_load((PROMETHEUS / "grafana/provisioning/datasources/prometheus.yml").read_text())
    uid = datasource["datasources"][0]["uid"]
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid and target["expr"].strip()


def saved_objects() -> list[dict[str, Any]]:
    return [json.loads(line) for line in SAVED_OBJECTS.read_text().splitlines() if line.strip()]


def test_saved_searches_use_the_data_view_and_a_lucene_query() -> None:
    objects = saved_objects()
    views = {obj["id"]: obj for obj in objects if obj["type"] == "index-pattern"}
    assert [view["attributes"]["title"] for view in views.values()] == ["ecommerce-logs-*"]
    searches = {obj["attributes"]["title"]: obj for obj in objects if obj["type"] == "search"}
    assert set(searches) == {"Trace one request by correlation_id", "Errors by service",
                             "Order lifecycle by order_id"}
    for search in searches.values():
        source = json.loads(search["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
        (reference,) = search["references"]
        assert reference["name"] == source["indexRefName"] and reference["id"] in views
        assert source["query"]["language"] == "lucene" and source["query"]["query"]


class FakeKibana(BaseHTTPRequestHandler):
    """Kibana's status and saved-objects import endpoints, recording what they were sent."""

    imports: list[dict[str, Any]] = []

    def do_GET(self) -> None:
        self._answer(200, {"status": {"overall": {"level": "available"}}})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        message = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + body)
        files = {part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
                 for part in message.iter_parts()}
        self.imports.append({"path": self.path, "xsrf": self.headers.get("kbn-xsrf"), "files": files})
        lines = [json.loads(line) for line in files.get("file", b"").decode().splitlines() if line]
        self._answer(200, {"success": bool(lines), "successCount": len(lines)})

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload, separators=(",", ":")).encode()  # compact, as Kibana answers
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_kibana() -> Iterator[str]:
    FakeKibana.imports = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeKibana)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_the_import_script_posts_the_objects_to_the_saved_objects_api(fake_kibana: str) -> None:
    result = subprocess.run(["bash", str(ROOT / "elk/kibana/import_saved_objects.sh")], capture_output=True,
                            text=True, env={"PATH": "/usr/bin:/bin", "KIBANA_URL": fake_kibana}, timeout=60)
    assert result.returncode == 0, result.stderr
    (sent,) = FakeKibana.imports
    assert sent["path"] == "/api/saved_objects/_import?overwrite=true" and sent["xsrf"] == "true"
    assert sent["files"]["file"] == SAVED_OBJECTS.read_bytes()
    assert '"successCount":4' in result.stdout


def test_the_import_script_fails_when_kibana_never_answers() -> None:
    result = subprocess.run(["bash", str(ROOT / "elk/kibana/import_saved_objects.sh")], capture_output=True,
                            text=True, env={"PATH": "/usr/bin:/bin", "KIBANA_URL": "http://127.0.0.1:9",
                                            "KIBANA_WAIT": "1"}, timeout=60)
    assert result.returncode == 1 and "no answer" in result.stderr
