"""The Bruno collection (bruno/), run by Bruno's own CLI against the live gateway.

`bru run` sends every request of the collection in order (Internal APIs, then External APIs)
and checks each one's assertions and tests; a failed one makes it exit non-zero. Its JSON
report is read as well, so a failure names the request and the assertion here, and a run that
silently executed fewer requests than the collection holds fails too.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.e2e.test_gateway import GATEWAY, admin_password, gateway_up  # noqa: F401  (gateway_up: autouse)

ROOT = Path(__file__).resolve().parents[2]
COLLECTION = ROOT / "bruno"
BRUNO = ROOT / "scripts" / "bruno.sh"


def _failures(result: dict[str, Any]) -> list[str]:
    name = result.get("test", {}).get("filename") or result.get("name")
    problems = []
    if result.get("error"):
        problems.append(f"{name}: {result['error']}")
    for kind in ("assertionResults", "testResults", "preRequestTestResults", "postResponseTestResults"):
        for check in result.get(kind) or []:
            if check.get("status") != "pass":
                what = check.get("lhsExpr", "") + " " + check.get("rhsExpr", "") if "lhsExpr" in check \
                    else check.get("description", "")
                problems.append(f"{name}: {what.strip()}: {check.get('error')}")
    return problems


def test_the_bruno_collection_passes_against_the_gateway(tmp_path: Path) -> None:
    report = tmp_path / "bruno-report.json"
    command = ["bash", str(BRUNO), "run", "-r", "--env", "local",
               "--env-var", f"baseUrl={GATEWAY}",
               "--env-var", f"adminEmail={os.environ.get('ADMIN_EMAIL', 'admin@example.com')}",
               "--env-var", f"adminPassword={admin_password()}",
               "--reporter-json", str(report), "--reporter-skip-all-headers"]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=600)
    output = finished.stdout[-6000:] + finished.stderr[-3000:]
    assert finished.returncode != 3, f"Bruno's CLI is missing (scripts/bruno.sh install):\n{output}"
    assert report.exists(), f"bru run wrote no report (exit {finished.returncode}):\n{output}"

    runs = json.loads(report.read_text())
    runs = runs if isinstance(runs, list) else [runs]
    results = [result for run in runs for result in run["results"]]
    failures = [problem for result in results for problem in _failures(result)]
    assert not failures, "Bruno assertions failed:\n" + "\n".join(failures) + "\n\n" + output
    assert finished.returncode == 0, output

    requests_in_collection = {
        str(path.relative_to(COLLECTION)) for path in COLLECTION.rglob("*.bru")
        if path.name != "folder.bru" and path.parent.name != "environments"
    }
    ran = {result["test"]["filename"] for result in results}
    assert ran == requests_in_collection, f"not run: {sorted(requests_in_collection - ran)}"
    unchecked = {result["test"]["filename"] for result in results
                 if not any(check.get("lhsExpr") == "res.status" for check in result["assertionResults"])}
    assert not unchecked, f"requests that assert no status: {sorted(unchecked)}"
    polls = [r for r in results if r["test"]["filename"].endswith("Poll the order until DELIVERED.bru")]
    assert polls, "the polling request did not run"
