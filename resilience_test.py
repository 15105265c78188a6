#!/usr/bin/env python3
"""Resilience checks against a live gateway; prints a report, exits non-zero on any failure.

    .venv/bin/python resilience_test.py [--base-url http://localhost:8080] [--service catalog]

What it demonstrates and asserts:
  * correlation   an X-Request-ID comes back on the response (sent or generated)
  * idempotency   an order retried with the same Idempotency-Key (also concurrently) is created once;
                  the same key with another body is refused with 422
  * rate limits   the per-user API limit and the per-IP /auth limit answer 429 problem+json with
                  X-RateLimit-* and a Retry-After after which requests succeed again
  * breaker       a downstream service is stopped through supervisord: requests time out, the
                  breaker opens and answers 503 in well under 50 ms; a trial call while the service
                  is still down opens it again (half-open seen in /ready); once the service is back
                  the trial succeeds, the breaker closes and requests succeed

The gateway must run under the stack's supervisord (scripts/supervisord.conf; STACK_DIR and VENV
as scripts/platform.sh sets them) with Redis (REDIS_URL), so every worker shares breaker state and
limits. Keep the limits small enough for a quick test (e.g. RATE_LIMIT_API="100 per 5 seconds",
RATE_LIMIT_AUTH="10 per 5 seconds": a login costs an argon2 verification).
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

ROOT = Path(__file__).resolve().parent
PROBLEM = "application/problem+json"
#: the most requests a limit may need before it trips; more means the limit is not set for testing
MAX_BURST = 3000


class CheckFailed(AssertionError):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


@dataclass
class Report:
    results: list[tuple[str, bool, str]] = field(default_factory=list)
    section: str = ""

    def note(self, text: str) -> None:
        print(f"      {text}", flush=True)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        except CheckFailed as exc:
            self._record(name, False, str(exc), started)
        except Exception as exc:  # a broken step is a failed step, and the next ones still run
            self._record(name, False, f"{type(exc).__name__}: {exc}", started)
        else:
            self._record(name, True, "", started)

    def _record(self, name: str, ok: bool, why: str, started: float) -> None:
        took = time.monotonic() - started
        self.results.append((f"{self.section}: {name}", ok, why))
        mark = "PASS" if ok else "FAIL"
        print(f"  [{mark}] {name} ({took:.1f}s){'' if ok else ' -- ' + why}", flush=True)

    def heading(self, title: str) -> None:
        self.section = title
        print(f"\n== {title}", flush=True)

    def summary(self) -> int:
        failed = [r for r in self.results if not r[1]]
        print("\n== summary")
        for name, _ok, why in failed:
            print(f"  FAILED {name}: {why}")
        print(f"resilience: {len(self.results) - len(failed)} passed, {len(failed)} failed")
        return 1 if failed or not self.results else 0


class Gateway:
    def __init__(self, base_url: str):
        self.base = base_url.rstrip("/")
        self.session = requests.Session()
        # the bursts send from 20 threads: a pool that keeps 20 connections, and a GET sent again
        # when the gateway closed the kept-alive connection it went out on (a client-side race any
        # HTTP client retries; the answers counted are the ones that arrived)
        retry = Retry(total=2, connect=2, read=2, status=0, other=0, allowed_methods=frozenset({"GET"}),
                      raise_on_status=False)
        self.session.mount("http://", HTTPAdapter(pool_maxsize=20, max_retries=retry))

    def request(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        timeout = kwargs.pop("timeout", 30)
        return self.session.request(method, self.base + path, headers=headers, timeout=timeout, **kwargs)

    def patiently(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        """Like request, but waits out a 429 (other traffic may share the limits)."""
        for _ in range(20):
            response = self.request(method, path, token, **kwargs)
            if response.status_code != 429:
                return response
            time.sleep(int(response.headers.get("Retry-After", "1")))
        return response


def is_problem(response: requests.Response, status: int, slug: str) -> bool:
    return (response.status_code == status and response.headers.get("Content-Type", "").startswith(PROBLEM)
            and response.json().get("type", "").endswith("/" + slug))


def supervisorctl(stack_dir: str, *args: str) -> str:
    env = {**os.environ, "STACK_DIR": stack_dir, "VENV": str(ROOT / ".venv")}
    command = [str(ROOT / ".venv/bin/supervisorctl"), "-c", str(ROOT / "scripts/supervisord.conf"), *args]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    return (result.stdout + result.stderr).strip()


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None


# ---------------------------------------------------------------- the checks

def correlation(gw: Gateway, report: Report) -> None:
    report.heading("correlation")
    with report.step("a sent X-Request-ID comes back on the response"):
        request_id = f"resilience-{uuid.uuid4().hex}"
        response = gw.patiently("GET", "/api/products", headers={"X-Request-ID": request_id})
        check(response.headers.get("X-Request-ID") == request_id,
              f"sent {request_id}, got {response.headers.get('X-Request-ID')}")
        report.note(f"X-Request-ID: {request_id} -> {response.status_code}, echoed")
    with report.step("a request without one gets a generated id"):
        generated = gw.request("GET", "/health").headers.get("X-Request-ID", "")
        check(len(generated) >= 16, f"generated id {generated!r}")
        report.note(f"generated X-Request-ID: {generated}")
    with report.step("errors carry the id too, in the header and the problem body"):
        request_id = f"resilience-{uuid.uuid4().hex}"
        response = gw.request("GET", "/api/no-such-route", headers={"X-Request-ID": request_id})
        check(is_problem(response, 404, "not-found"), f"expected a 404 problem, got {response.status_code}")
        check(response.json().get("request_id") == request_id, "request_id missing from the problem body")


def sign_up(gw: Gateway) -> dict[str, Any]:
    email = f"resilience-{uuid.uuid4().hex[:12]}@example.com"
    password = f"pw-{uuid.uuid4().hex}"
    registered = gw.patiently("POST", "/auth/register", json={"name": "Resilience", "email": email,
                                                                "password": password, "role": "admin"})
    check(registered.status_code == 201, f"register answered {registered.status_code}: {registered.text}")
    check(registered.json()["role"] == "customer", "self-registration granted a role other than customer")
    login = gw.patiently("POST", "/auth/login", json={"email": email, "password": password})
    check(login.status_code == 200, f"login answered {login.status_code}: {login.text}")
    return {**registered.json(), "token": login.json()["access_token"]}


def some_product(gw: Gateway) -> dict[str, Any]:
    page = gw.patiently("GET", "/api/products", params={"per_page": 1})
    check(page.status_code == 200 and page.json()["items"], "no active product to order")
    return page.json()["items"][0]


def idempotency(gw: Gateway, report: Report, user: dict[str, Any], product: dict[str, Any]) -> None:
    report.heading("idempotency")
    body = {"product_id": product["id"], "quantity": 1}
    key = {"Idempotency-Key": f"resilience-{uuid.uuid4().hex}"}
    with report.step("a retried order (5 at once, then once more) is created once"):
        with ThreadPoolExecutor(max_workers=5) as pool:
            answers = list(pool.map(lambda _: gw.patiently("POST", "/api/orders", user["token"], json=body,
                                                           headers=key), range(5)))
        answers.append(gw.patiently("POST", "/api/orders", user["token"], json=body, headers=key))
        statuses = [a.status_code for a in answers]
        check(statuses == [202] * 6, f"statuses {statuses}")
        ids = {a.json()["order_id"] for a in answers}
        check(len(ids) == 1, f"several orders were created: {sorted(ids)}")
        replayed = sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers)
        orders = gw.patiently("GET", "/api/orders", user["token"], params={"per_page": 100}).json()
        check(orders["total"] == 1, f"the customer has {orders['total']} orders, expected 1")
        report.note(f"6 POSTs -> order {ids.pop()}, {replayed} replayed; the customer has 1 order")
    with report.step("the same key with another body is refused (422)"):
        clash = gw.patiently("POST", "/api/orders", user["token"], json={**body, "quantity": 2}, headers=key)
        check(is_problem(clash, 422, "idempotency-key-reused"), f"got {clash.status_code}: {clash.text}")


def _burst(send: Callable[[], requests.Response], remaining: int) -> list[requests.Response]:
    """Send requests, 20 at a time, until one answers 429.

    Gives up after ``3 * (remaining + 1)`` requests (a window may roll over mid-burst once).
    """
    answers: list[requests.Response] = []
    budget = 3 * (remaining + 1)
    with ThreadPoolExecutor(max_workers=20) as pool:
        while len(answers) < budget and not any(a.status_code == 429 for a in answers):
            batch = max(1, min(20, remaining + 1 - len(answers))) if len(answers) <= remaining else 20
            answers.extend(pool.map(lambda _: send(), range(batch)))
    return answers


def _unexpected(answers: list[requests.Response], expected: set[int]) -> str:
    """The answers outside ``expected``, counted by status and problem detail, with a request id
    of each (for ``make logs ID=...``)."""
    seen: dict[tuple[int, str], list[str]] = {}
    for answer in answers:
        if answer.status_code not in expected:
            try:
                detail = str(answer.json().get("detail", ""))
            except ValueError:
                detail = answer.text[:120]
            seen.setdefault((answer.status_code, detail), []).append(answer.headers.get("X-Request-ID", "?"))
    return "; ".join(f"{len(ids)} x {status} {detail!r} (e.g. X-Request-ID {ids[0]})"
                     for (status, detail), ids in seen.items())


def _assert_429(report: Report, limited: requests.Response) -> int:
    check(is_problem(limited, 429, "rate-limited"), f"the 429 is not a rate-limited problem: {limited.text}")
    for header in ("Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
        check(header in limited.headers, f"the 429 lacks {header}")
    retry_after = int(limited.headers["Retry-After"])
    # seconds from when the server answered (its Date header) to the window's reset
    answered = parsedate_to_datetime(limited.headers["Date"]).timestamp()
    until_reset = float(limited.headers["X-RateLimit-Reset"]) - answered
    check(retry_after >= 1, f"Retry-After {retry_after} < 1")
    check(abs(retry_after - math.ceil(until_reset)) <= 1,
          f"Retry-After {retry_after}s does not match X-RateLimit-Reset ({until_reset:.1f}s after answering)")
    check(limited.headers["X-RateLimit-Remaining"] == "0", "X-RateLimit-Remaining is not 0 on a 429")
    report.note(f"429 problem+json, Retry-After: {retry_after}, X-RateLimit-Limit: "
                f"{limited.headers['X-RateLimit-Limit']}, X-RateLimit-Remaining: 0")
    return retry_after


def rate_limits(gw: Gateway, report: Report, user: dict[str, Any], product: dict[str, Any]) -> None:
    report.heading("rate limiting")
    path = f"/api/products/{product['id']}"
    retry_after = 0
    with report.step("the per-user API limit answers 429 once used up"):
        first = gw.request("GET", path, user["token"])
        check("X-RateLimit-Limit" in first.headers, "API responses carry no X-RateLimit-Limit")
        limit = int(first.headers["X-RateLimit-Limit"])
        check(limit <= MAX_BURST, f"RATE_LIMIT_API allows {limit} requests: too many for a quick test")
        remaining = int(first.headers["X-RateLimit-Remaining"])
        answers = _burst(lambda: gw.request("GET", path, user["token"]), remaining)
        limited = [a for a in answers if a.status_code == 429]
        check(bool(limited), f"no 429 after {len(answers) + 1} requests (limit {limit})")
        ok = [a.status_code for a in answers if a.status_code != 429]
        check(set(ok) <= {200}, f"unexpected answers before the limit: {_unexpected(answers, {200, 429})}")
        report.note(f"limit {limit}: {len(ok) + 1} requests answered 200, then 429")
        retry_after = _assert_429(report, limited[0])
    with report.step("another user is not affected"):
        other = sign_up(gw)
        check(gw.request("GET", path, other["token"]).status_code == 200, "another user was limited too")
    with report.step("requests succeed again after Retry-After"):
        check(retry_after > 0, "no Retry-After to wait for")
        time.sleep(retry_after)
        again = gw.request("GET", path, user["token"])
        check(again.status_code == 200, f"still {again.status_code} after waiting {retry_after}s")
        report.note(f"after {retry_after}s: 200 again")

    retry_after = 0
    with report.step("the per-IP /auth limit answers 429 against brute force"):
        attempt = {"email": "nobody@example.com", "password": "guess"}
        first = gw.request("POST", "/auth/login", json=attempt)
        check("X-RateLimit-Limit" in first.headers, "/auth responses carry no X-RateLimit-Limit")
        remaining = int(first.headers["X-RateLimit-Remaining"])
        answers = _burst(lambda: gw.request("POST", "/auth/login", json=attempt), remaining)
        limited = [a for a in answers if a.status_code == 429]
        check(bool(limited), f"no 429 after {len(answers) + 1} login attempts")
        wrong = {a.status_code for a in answers if a.status_code != 429}
        check(wrong <= {401}, f"wrong credentials answered {_unexpected(answers, {401, 429})}")
        report.note(f"limit {first.headers['X-RateLimit-Limit']}: wrong passwords got 401, then 429")
        retry_after = _assert_429(report, limited[0])
    with report.step("logins work again after Retry-After"):
        check(retry_after > 0, "no Retry-After to wait for")
        time.sleep(retry_after)
        again = gw.request("POST", "/auth/login", json=attempt)
        check(again.status_code == 401, f"still {again.status_code} after waiting {retry_after}s")


def _breaker_state(gw: Gateway, service: str) -> str:
    try:
        return gw.request("GET", "/ready", timeout=5).json()["services"][service]["breaker"]
    except (requests.RequestException, ValueError, KeyError):
        return "?"


def _gauge(gw: Gateway, service: str) -> str:
    for line in gw.request("GET", "/metrics").text.splitlines():
        if line.startswith(f'gateway_circuit_breaker_state{{service="{service}"}}'):
            return line.split()[-1]
    return "?"


def _timed(gw: Gateway, path: str, token: str) -> tuple[requests.Response, float]:
    started = time.perf_counter()
    response = gw.request("GET", path, token)
    return response, (time.perf_counter() - started) * 1000


def circuit_breaker(gw: Gateway, report: Report, user: dict[str, Any], product: dict[str, Any],
                    stack_dir: str, service: str, wave: int) -> None:
    report.heading(f"circuit breaker ({service})")
    path = f"/api/products/{product['id']}" if service == "catalog" else f"/api/inventory/{product['id']}"
    program = f"services:{service}"
    with report.step("the breaker is closed and the service answers"):
        response = gw.patiently("GET", path, user["token"])
        check(response.status_code == 200, f"GET {path} answered {response.status_code}")
        check(_breaker_state(gw, service) == "closed", f"breaker is {_breaker_state(gw, service)}")
    try:
        with report.step(f"stop {service} through supervisord"):
            output = supervisorctl(stack_dir, "stop", program)
            check("stopped" in output or "not running" in output.lower(), f"supervisorctl said: {output}")
            report.note(f"supervisorctl stop {program}: {output}")
            if service == "catalog":
                # the gateway serves a product it read less than PRODUCT_CACHE_SECONDS ago from its cache
                time.sleep(float(os.environ.get("PRODUCT_CACHE_SECONDS", "1")) + 0.2)

        retry_after = 0
        with report.step("calls time out, then the breaker opens"):
            failures: list[requests.Response] = []
            opened = False
            for _ in range(6):
                with ThreadPoolExecutor(max_workers=wave) as pool:
                    failures.extend(pool.map(lambda _: gw.request("GET", path, user["token"]), range(wave)))
                if _breaker_state(gw, service) == "open":
                    opened = True
                    break
            statuses = {r.status_code for r in failures}
            check(statuses == {503}, f"while {service} is down the gateway answered {statuses}")
            check(all(is_problem(r, 503, "service-unavailable") for r in failures), "503s are not problems")
            check(opened, f"the breaker did not open after {len(failures)} failed calls")
            report.note(f"{len(failures)} calls answered 503 service-unavailable (timeouts); breaker open; "
                        f"gauge = {_gauge(gw, service)}")
        with report.step("an open breaker answers 503 in well under 50 ms (median), with Retry-After"):
            timings = []
            for _ in range(10):
                response, ms = _timed(gw, path, user["token"])
                check(is_problem(response, 503, "service-unavailable"), f"got {response.status_code}")
                check("Retry-After" in response.headers, "no Retry-After on the fast 503")
                timings.append(ms)
                retry_after = int(response.headers["Retry-After"])
            timings.sort()
            # the median, judged against 50 ms: one call delayed by a busy machine's scheduler says
            # nothing about the breaker; any call near the RPC timeout would (it never waits for one)
            check(timings[5] < 50, f"the median fast-fail took {timings[5]:.1f} ms")
            check(timings[-1] < 1000, f"the slowest fast-fail took {timings[-1]:.1f} ms: it waited")
            report.note(f"10 calls: median {timings[5]:.1f} ms, max {timings[-1]:.1f} ms; "
                        f"Retry-After {retry_after}s")
        with report.step("a trial call while the service is still down half-opens, fails and re-opens"):
            check(retry_after > 0, "no Retry-After")
            time.sleep(retry_after + 0.5)
            seen: set[str] = set()
            result: list[requests.Response] = []
            trial = threading.Thread(target=lambda: result.append(gw.request("GET", path, user["token"])))
            trial.start()
            while trial.is_alive():
                seen.add(_breaker_state(gw, service))
                time.sleep(0.1)
            check(result and result[0].status_code == 503, "the trial call did not fail")
            check("half-open" in seen, f"/ready never showed half-open during the trial (saw {seen})")
            check(_breaker_state(gw, service) == "open", "the failed trial did not re-open the breaker")
            response, ms = _timed(gw, path, user["token"])
            check(response.status_code == 503 and ms < 50,
                  f"not failing fast again ({response.status_code}, {ms:.0f} ms)")
            retry_after = int(response.headers["Retry-After"])
            report.note(f"states seen during the trial: {sorted(seen)}; open again, fails fast ({ms:.1f} ms)")
    finally:
        with report.step(f"start {service} again through supervisord"):
            output = supervisorctl(stack_dir, "start", program)
            check("started" in output or "already started" in output, f"supervisorctl said: {output}")
            report.note(f"supervisorctl start {program}: {output}")
    with report.step("after the reset timeout the trial call succeeds and the breaker closes"):
        time.sleep(max(retry_after, 1) + 0.5)

        def recovered() -> bool:
            return gw.request("GET", path, user["token"]).status_code == 200

        check(wait_until(recovered, timeout=60, interval=0.5), "requests did not succeed again within 60s")
        check(_breaker_state(gw, service) == "closed", f"breaker is {_breaker_state(gw, service)}")
        check(_gauge(gw, service) == "0.0", f"gauge is {_gauge(gw, service)}")
        statuses = [gw.request("GET", path, user["token"]).status_code for _ in range(10)]
        check(statuses == [200] * 10, f"after recovery: {statuses}")
        report.note("trial call succeeded; breaker closed (gauge 0); 10 more calls answered 200")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", default=os.environ.get("GATEWAY_URL", "http://localhost:8080"))
    parser.add_argument("--stack-dir", default=os.environ.get("STACK_DIR", str(ROOT / "var")),
                        help="the stack's STACK_DIR, for supervisorctl (default: $STACK_DIR or var/)")
    parser.add_argument("--service", default="catalog", choices=["catalog", "inventory"],
                        help="the service to stop for the breaker check")
    parser.add_argument("--wave", type=int, default=int(os.environ.get("BREAKER_FAIL_MAX", "5")) + 1,
                        help="concurrent calls per wave while the service is down"
                             " (default BREAKER_FAIL_MAX+1)")
    args = parser.parse_args(argv)

    gw = Gateway(args.base_url)
    report = Report()
    print(f"resilience test against {gw.base} (stack {args.stack_dir})")
    ready = wait_until(lambda: _ready(gw), timeout=60, interval=1)
    if not ready:
        print(f"the gateway at {gw.base} is not ready", file=sys.stderr)
        print("resilience: 0 passed, 1 failed")
        return 1

    correlation(gw, report)
    report.heading("setup")
    user: dict[str, Any] = {}
    product: dict[str, Any] = {}
    with report.step("register a customer (asking for admin) and log in; find a product"):
        user = sign_up(gw)
        product = some_product(gw)
        report.note(f"customer {user['id']} (role {user['role']}), product {product['id']}")
    if not user or not product:
        return report.summary()
    idempotency(gw, report, user, product)
    rate_limits(gw, report, user, product)
    circuit_breaker(gw, report, user, product, args.stack_dir, args.service, args.wave)
    return report.summary()


def _ready(gw: Gateway) -> bool:
    try:
        return gw.request("GET", "/ready", timeout=5).status_code == 200
    except requests.RequestException:
        return False


if __name__ == "__main__":
    sys.exit(main())
