"""vegeta, the open-model load generator of the constant-rate phases (knees, saga phase, profile).

vegeta sends requests on a fixed schedule whatever the responses take (a slow server gets the same
rate, not fewer requests), and costs far less CPU than locust, which matters with the stack on the
same two cores. ``scripts/bench.sh`` installs it (``go install
github.com/tsenart/vegeta/v12@v12.13.0``) and exports ``VEGETA``.

One attack: a file of JSON targets, one per request (each POST its own Idempotency-Key, so no
target is sent twice: vegeta cycles through the file), ``vegeta attack`` writing its binary
results, then ``vegeta encode --to csv`` (every request: start, status, latency, body) and
``vegeta report --type json`` (vegeta's own summary). The attack's CPU time comes from the kernel's
accounting of the child (``os.wait4``).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VERSION = "v12.13.0"
INSTALL = f"go install github.com/tsenart/vegeta/v12@{VERSION}"
#: vegeta's CSV results: one row per request, 12 fields (lib/results.go, NewCSVEncoder)
CSV_FIELDS = 12


class VegetaMissing(RuntimeError):
    pass


def binary() -> str:
    """The vegeta executable: $VEGETA (scripts/bench.sh sets it), else the one on PATH."""
    found = shutil.which(os.environ.get("VEGETA", "vegeta"))
    if not found:
        raise VegetaMissing(
            f"vegeta is missing: scripts/bench.sh installs it into ~/.cache/ecommerce-platform ({INSTALL}); "
            "or set VEGETA to its path"
        )
    return found


def target(method: str, url: str, headers: dict[str, str] | None = None, body: Any = None) -> dict[str, Any]:
    """One request in vegeta's JSON target format (headers as lists, the body base64)."""
    entry: dict[str, Any] = {
        "method": method,
        "url": url,
        "header": {k: [v] for k, v in (headers or {}).items()},
    }
    if body is not None:
        entry["body"] = base64.b64encode(json.dumps(body).encode()).decode()
        entry["header"]["Content-Type"] = ["application/json"]
    return entry


@dataclass
class Result:
    """One request as vegeta recorded it."""

    start: float  # epoch seconds the request was sent
    code: int  # HTTP status, 0 when no response came
    latency_ms: float
    error: str
    body: bytes
    method: str
    url: str

    @property
    def end(self) -> float:
        return self.start + self.latency_ms / 1000


def parse_csv(text: str) -> list[Result]:
    """``vegeta encode --to csv`` output: timestamp (ns), code, latency (ns), bytes out, bytes in,
    error, body (base64), attack, seq, method, url, headers (base64)."""
    results = []
    for row in csv.reader(io.StringIO(text)):
        if not row:
            continue
        if len(row) != CSV_FIELDS:
            raise ValueError(f"a vegeta CSV result has {CSV_FIELDS} fields, not {len(row)}: {row[:3]}")
        results.append(
            Result(
                start=int(row[0]) / 1e9,
                code=int(row[1]),
                latency_ms=int(row[2]) / 1e6,
                error=row[5],
                body=base64.b64decode(row[6]),
                method=row[9],
                url=row[10],
            )
        )
    return sorted(results, key=lambda r: r.start)


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """vegeta's own figures (``report --type json``) in the units the rest of the results use."""
    latencies = report.get("latencies") or {}
    ms = {
        key: round(latencies[key] / 1e6, 3)
        for key in ("mean", "50th", "90th", "95th", "99th", "max")
        if key in latencies
    }
    return {
        "requests": report.get("requests"),
        "rate": round(report.get("rate") or 0.0, 2),
        "throughput": round(report.get("throughput") or 0.0, 2),
        "success": report.get("success"),
        "status_codes": report.get("status_codes") or {},
        "errors": (report.get("errors") or [])[:10],
        "duration_s": round((report.get("duration") or 0) / 1e9, 3),
        "wait_s": round((report.get("wait") or 0) / 1e9, 3),
        "latency_ms": ms,
    }


@dataclass
class Attack:
    """One ``vegeta attack`` at a constant rate; start() then finish(), so two can run at once."""

    name: str
    targets: list[dict[str, Any]]
    rate: float
    seconds: float
    out_dir: Path
    max_body: int = -1  # bytes of each response body kept (-1 all: the 202's order id is in it)
    timeout_s: float = 30
    proc: subprocess.Popen | None = field(default=None, repr=False)
    command: list[str] = field(default_factory=list)
    started: float = 0.0

    def start(self) -> Attack:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        targets_file = self.out_dir / f"{self.name}.targets.jsonl"
        targets_file.write_text("".join(json.dumps(t) + "\n" for t in self.targets))
        # the rate per minute when it is not a whole number per second (vegeta takes N/unit)
        rate = f"{int(self.rate)}/1s" if float(self.rate).is_integer() else f"{round(self.rate * 60)}/1m"
        self.command = [
            binary(),
            "attack",
            "-format=json",
            f"-targets={targets_file}",
            f"-rate={rate}",
            f"-duration={self.seconds:g}s",
            f"-timeout={self.timeout_s:g}s",
            f"-max-body={self.max_body}",
            f"-name={self.name}",
            f"-output={self.results_file}",
        ]
        self.log = open(self.out_dir / f"{self.name}.log", "w")  # noqa: SIM115 (closed in finish())
        self.started = time.time()
        self.proc = subprocess.Popen(self.command, stdout=self.log, stderr=subprocess.STDOUT)
        return self

    @property
    def results_file(self) -> Path:
        return self.out_dir / f"{self.name}.bin"

    def finish(self) -> dict[str, Any]:
        """Wait for the attack; its results, vegeta's report, its CPU time and the command line."""
        assert self.proc is not None, "start() first"
        # wait4 rather than Popen.wait: it also returns the child's CPU time
        _, status, usage = os.wait4(self.proc.pid, 0)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self.log.close()
        if self.proc.returncode != 0:
            log = (self.out_dir / f"{self.name}.log").read_text()[-1000:]
            raise RuntimeError(f"vegeta attack {self.name} exited {self.proc.returncode}: {log}")
        vegeta = self.command[0]

        def results_as(*args: str) -> str:
            command = [vegeta, *args, str(self.results_file)]
            return subprocess.run(command, capture_output=True, text=True, check=True).stdout

        report = results_as("report", "--type", "json")
        cpu = usage.ru_utime + usage.ru_stime
        results = parse_csv(results_as("encode", "--to", "csv"))
        return {
            "results": results,
            "vegeta": {
                # the paths of this run's files, relative to the run directory, so the line can be rerun there
                "command": " ".join(self.command)
                .replace(str(self.out_dir) + "/", "")
                .replace(vegeta, "vegeta"),
                "report": summary(json.loads(report)),
                "cpu_seconds": round(cpu, 3),
                "cpu_ms_per_request": round(cpu * 1000 / len(results), 3) if results else None,
            },
        }
