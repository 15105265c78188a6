"""Search the platform's logs from the terminal, and set up the log indices.

    python -m services.common.logsearch ID              every line of one request or one order
    python -m services.common.logsearch ID --json       the documents, one JSON object per line
    python -m services.common.logsearch --setup         index template + retention (ILM) policy

ID is a correlation id (the X-Request-ID of a request) or an order id. For an
order id the search widens to every request that touched the order, so the
lines of a call that ran before the order had its id (the price lookup of
create_order) show up too.

The engine is Elasticsearch (compose) or the local OpenSearch
(scripts/observability.sh); SEARCH_URL or --url picks it (default
http://127.0.0.1:9200). ``--setup`` installs elk/elasticsearch/index-template.json
and, where the engine has ILM, elk/elasticsearch/ilm-policy.json attached to
it; OpenSearch has no ILM, so there it deletes the daily indices older than
the policy's delete age itself.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from services.common.config import ROOT

INDEX_PATTERN = "ecommerce-logs-*"
TEMPLATE_FILE = ROOT / "elk" / "elasticsearch" / "index-template.json"
POLICY_FILE = ROOT / "elk" / "elasticsearch" / "ilm-policy.json"
POLICY_NAME = "ecommerce-logs"
MAX_HITS = 2000


def search(url: str, query: dict[str, Any], size: int = MAX_HITS) -> list[dict[str, Any]]:
    """The matching documents, oldest first."""
    response = requests.post(
        f"{url}/{INDEX_PATTERN}/_search",
        json={"query": query, "size": size, "sort": [{"@timestamp": "asc"}]},
        params={"ignore_unavailable": "true", "allow_no_indices": "true"},
        timeout=10,
    )
    response.raise_for_status()
    return [hit["_source"] for hit in response.json()["hits"]["hits"]]


def find(url: str, identifier: str) -> list[dict[str, Any]]:
    """Lines of a request (by correlation id) or of an order and every request that touched it."""
    by_order = search(url, {"term": {"order_id": identifier}})
    correlation_ids = sorted({doc["correlation_id"] for doc in by_order if doc.get("correlation_id")})
    should: list[dict[str, Any]] = [{"term": {"correlation_id": identifier}},
                                    {"term": {"order_id": identifier}}]
    if correlation_ids:
        should.append({"terms": {"correlation_id": correlation_ids}})
    return search(url, {"bool": {"should": should, "minimum_should_match": 1}})


def render(doc: dict[str, Any]) -> str:
    what = ".".join(part for part in (doc.get("service"), doc.get("method")) if part)
    ids = " ".join(f"{name}={doc[name]}" for name in ("order_id", "customer_id") if doc.get(name) is not None)
    return (f"{doc.get('@timestamp', '?')} {doc.get('level', '?'):<7} {what or doc.get('service', '?'):<36} "
            f"{doc.get('message', '')} {ids}").rstrip()


def has_ilm(url: str) -> bool:
    return requests.get(f"{url}/_ilm/status", timeout=10).status_code == 200


def delete_age(policy: dict[str, Any]) -> timedelta:
    """The delete phase's min_age ("7d", "36h") as a timedelta."""
    raw = policy["policy"]["phases"]["delete"]["min_age"]
    match = re.fullmatch(r"(\d+)([dhm])", raw)
    if not match:
        raise ValueError(f"unsupported min_age {raw!r} in {POLICY_FILE}")
    unit = {"d": "days", "h": "hours", "m": "minutes"}[match.group(2)]
    return timedelta(**{unit: int(match.group(1))})


def expired_indices(names: list[str], now: datetime, keep: timedelta) -> list[str]:
    """Daily indices whose whole day ended longer than ``keep`` ago."""
    expired = []
    for name in names:
        match = re.fullmatch(r"ecommerce-logs-(\d{4})\.(\d{2})\.(\d{2})", name)
        if match:
            day = datetime(*map(int, match.groups()), tzinfo=UTC)
            if day + timedelta(days=1) + keep <= now:
                expired.append(name)
    return sorted(expired)


def setup(url: str) -> None:
    template = json.loads(TEMPLATE_FILE.read_text())
    policy = json.loads(POLICY_FILE.read_text())
    if has_ilm(url):
        requests.put(f"{url}/_ilm/policy/{POLICY_NAME}", json=policy, timeout=10).raise_for_status()
        template["template"]["settings"]["index.lifecycle.name"] = POLICY_NAME
        print(f"ILM policy {POLICY_NAME} installed", file=sys.stderr)
    else:
        response = requests.get(f"{url}/_cat/indices/{INDEX_PATTERN}", params={"format": "json"}, timeout=10)
        response.raise_for_status()
        names = [row["index"] for row in response.json()]
        for name in expired_indices(names, datetime.now(UTC), delete_age(policy)):
            requests.delete(f"{url}/{name}", timeout=30).raise_for_status()
            print(f"deleted {name} (older than the retention policy)", file=sys.stderr)
    requests.put(f"{url}/_index_template/{POLICY_NAME}", json=template, timeout=10).raise_for_status()
    print(f"index template {POLICY_NAME} installed for {INDEX_PATTERN}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.common.logsearch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("id", nargs="?", help="a correlation id (X-Request-ID) or an order id")
    parser.add_argument("--url", default=os.environ.get("SEARCH_URL", "http://127.0.0.1:9200"))
    parser.add_argument("--json", action="store_true", help="print the documents as JSON lines")
    parser.add_argument("--setup", action="store_true", help="install the index template and retention")
    args = parser.parse_args(argv)
    try:
        if args.setup:
            setup(args.url)
            return 0
        if not args.id:
            parser.error("give an id, or --setup")
        docs = find(args.url, args.id)
    except requests.RequestException as exc:
        print(f"cannot reach the search engine at {args.url}: {exc}\n"
              "(locally it runs with `make run`; scripts/observability.sh status)", file=sys.stderr)
        return 2
    for doc in docs:
        print(json.dumps(doc) if args.json else render(doc))
    if not docs:
        print(f"no log lines for {args.id}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
