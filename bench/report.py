"""The run's outputs: <timestamp>.json (every figure), a short markdown summary, a PNG chart,
and the summary block of docs/performance.md."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

from bench import analysis

GET_DETAIL = "GET /api/products/<id>"
POST_ORDER = "POST /api/orders"
DOCS_START = "<!-- bench:summary:start -->"
DOCS_END = "<!-- bench:summary:end -->"


def _get(data: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def _load(entry: dict[str, Any] | None) -> str:
    load = (entry or {}).get("load")
    if not load:
        return "-"
    return f"{load['load1_start']:.1f}→{load['load1_end']:.1f}"


#: the targets of issue 12: each measured by one `make bench` run
CPU_STACK_MS, CPU_WITH_LOGS_MS = 25, 35
SAGA_RATE, SAGA_SECONDS, SAGA_ACCEPTED, SAGA_P99_MS = 50, 60, 0.98, 1000
POST_KNEE_RPS, POST_P99_MS = 50, 100
READ_P99_MS = 100
GET_RPS, GET_P99_MS = 800, 50


def order_failures(result: dict[str, Any]) -> list[str]:
    """What makes the run fail whatever its speed: an order lost, stuck or charged wrongly, a
    duplicate order, an event that never reached Kafka."""
    orders = result.get("orders") or {}
    payments = orders.get("payments") or {}
    failures = []
    if orders.get("lost"):
        failures.append(f"{orders['lost']} orders lost")
    if orders.get("stuck"):
        failures.append(f"{orders['stuck']} orders stuck")
    if orders.get("more_orders_than_requests"):
        failures.append(f"{orders['more_orders_than_requests']} more orders than requests")
    if payments.get("double_charged") is None:
        failures.append("payments not checked: the payments service's database was not found")
    elif payments["double_charged"]:
        failures.append(f"{payments['double_charged']} orders charged more than once")
    for key, what in (
        ("delivered_not_captured", "delivered without a captured payment"),
        ("captured_not_delivered", "charged without a delivery"),
        ("wrong_amount", "charged another amount than the order's total"),
    ):
        if payments.get(key):
            failures.append(f"{len(payments[key])} orders {what}")
    if _get(result, "analytics", "error"):
        failures.append(result["analytics"]["error"])
    missing = _get(result, "analytics", "missing")
    if missing:
        failures.append(f"{missing} events emitted but not in Kafka")
    return failures


def _target(target: str, measured: str, met: bool | None, load: str) -> dict[str, Any]:
    return {"target": target, "measured": measured, "met": met, "load": load}


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The five targets, each with what this run measured and met / not met (None: not run)."""
    saga = result.get("saga_phase")
    knee = result.get("knee")
    orders = result.get("orders") or {}
    out = []
    cpu = (saga or {}).get("cpu_per_completed_order") or {}
    stack_ms, logs_ms = cpu.get("stack_ms"), cpu.get("with_log_pipeline_ms")
    pipeline = ", ".join(cpu.get("per_process_ms", {}).get("log_pipeline", {})) or "none found"
    out.append(
        _target(
            f"stack CPU per completed order (saga phase) ≤ {CPU_STACK_MS} ms; ≤ {CPU_WITH_LOGS_MS} ms with "
            "the log pipeline",
            f"{stack_ms} ms; {logs_ms} ms with the log pipeline ({pipeline}); "
            f"{cpu.get('completed_orders')} orders completed"
            if saga
            else "not run",
            (
                stack_ms is not None
                and logs_ms is not None
                and stack_ms <= CPU_STACK_MS
                and logs_ms <= CPU_WITH_LOGS_MS
            )
            if saga
            else None,
            _load(saga),
        )
    )
    latency = _get(orders, "saga_latency_by_phase", "saga", "to_final_state") or {}
    accepted = (saga or {}).get("accepted") or {}
    payments = orders.get("payments") or {}
    clean = not order_failures({"orders": orders})
    out.append(
        _target(
            f"saga phase at a steady {SAGA_RATE} orders/s for {SAGA_SECONDS} s: "
            f"≥ {SAGA_ACCEPTED:.0%} accepted "
            f"in the phase, p99 202 → final < {SAGA_P99_MS / 1000:g} s, 0 lost, stuck or charged twice",
            f"offered {saga['offered_rps']}/s for {saga['seconds']} s; accepted in the phase "
            f"{accepted.get('accepted_in_phase')} of {accepted.get('offered')} "
            f"({_pct(accepted.get('fraction'))}); "
            f"p99 to final {latency.get('p99_ms')} ms; lost {orders.get('lost')}, "
            f"stuck {orders.get('stuck')}, "
            f"charged twice {payments.get('double_charged')}"
            if saga
            else "not run",
            (
                saga["offered_rps"] >= SAGA_RATE
                and saga["seconds"] >= SAGA_SECONDS
                and (accepted.get("fraction") or 0) >= SAGA_ACCEPTED
                and latency.get("p99_ms") is not None
                and latency["p99_ms"] < SAGA_P99_MS
                and clean
            )
            if saga
            else None,
            _load(saga),
        )
    )
    post = _get(knee or {}, POST_ORDER, "knee_p99_under_100ms")
    out.append(
        _target(
            f"POST /api/orders knee ≥ {POST_KNEE_RPS} accepted/s at p99 < {POST_P99_MS} ms",
            (
                f"{post['achieved_rps']} accepted/s (offered {post['offered_rps']}) "
                f"at p99 {post['p99_ms']} ms"
                if post
                else "no step held p99 under 100 ms"
            )
            if knee
            else "not run",
            bool(post) and post["offered_rps"] >= POST_KNEE_RPS if knee else None,
            _load(_get(knee or {}, POST_ORDER)),
        )
    )
    reads = (saga or {}).get("reads")
    out.append(
        _target(
            f"GET /api/orders/<id> while the saga phase runs: p99 < {READ_P99_MS} ms",
            f"{reads['achieved_rps']}/s served of {reads['offered_rps']}/s offered, p99 {reads['p99_ms']} ms"
            if reads
            else "not run",
            analysis.holds(reads, READ_P99_MS) if reads else None,
            _load(saga) if reads else "-",
        )
    )
    get = _get(knee or {}, GET_DETAIL, "knee_p99_under_50ms")
    get_step = next(
        (
            s
            for s in _get(knee or {}, GET_DETAIL, "steps") or []
            if get and s["offered_rps"] == get["offered_rps"]
        ),
        None,
    )
    out.append(
        _target(
            f"GET /api/products/<id> ≥ {GET_RPS} req/s at p99 < {GET_P99_MS} ms (vegeta, constant rate)",
            (
                f"{get['achieved_rps']} req/s (offered {get['offered_rps']}) "
                f"at p99 {get['p99_ms']} ms; vegeta "
                f"{_get(get_step or {}, 'generator', 'cpu_ms_per_request')} ms CPU per request"
                if get
                else "no step held p99 under 50 ms"
            )
            if knee
            else "not run",
            bool(get) and get["offered_rps"] >= GET_RPS if knee else None,
            _load(_get(knee or {}, GET_DETAIL)),
        )
    )
    return out


def _pct(fraction: float | None) -> str:
    return "-" if fraction is None else f"{fraction:.1%}"


def headline(result: dict[str, Any]) -> dict[str, Any]:
    floors = result.get("floors", {})
    hello = _get(floors, "flask_hello", "rps")
    amqp_p50 = _get(floors, "amqp_round_trip", "p50_ms")
    knee_get = _get(result, "knee", GET_DETAIL, "knee_p99_under_100ms") or {}
    knee_post = _get(result, "knee", POST_ORDER, "knee_p99_under_100ms") or {}
    ratios = {
        "gateway GET /api/products/<id> / bare Flask hello (req/s, same wrk command)": _ratio(
            _get(floors, "gateway_product_detail", "rps"), hello
        ),
        "gateway /health (no RPC) / bare Flask hello (req/s, same wrk command)": _ratio(
            _get(floors, "gateway_health", "rps"), hello
        ),
        "knee GET /api/products/<id> (p99 < 100 ms) / bare Flask hello": _ratio(
            knee_get.get("achieved_rps"), hello
        ),
        "knee POST /api/orders (p99 < 100 ms) / bare Flask hello": _ratio(
            knee_post.get("achieved_rps"), hello
        ),
        "Nameko RPC hop via gateway pool / raw AMQP round trip (p50)": _ratio(
            _get(floors, "nameko_round_trip", "echo", "p50_ms"), amqp_p50
        ),
        "Nameko RPC hop via gateway pool / raw AMQP round trip (mean)": _ratio(
            _get(floors, "nameko_round_trip", "echo", "mean_ms"), _get(floors, "amqp_round_trip", "mean_ms")
        ),
        "catalog.get_product via gateway pool / raw AMQP round trip (p50)": _ratio(
            _get(floors, "nameko_round_trip", "catalog_get_product", "p50_ms"), amqp_p50
        ),
    }
    orders = result.get("orders", {})
    return {
        "ratios": ratios,
        "targets": targets(result),
        "failures": order_failures(result),
        "orders": {
            "accepted": orders.get("accepted"),
            "lost": orders.get("lost"),
            "stuck": orders.get("stuck"),
            "double_charged": _get(orders, "payments", "double_charged"),
        },
    }


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _cpu(per_request: dict[str, float] | None, top: int = 3) -> str:
    """'total (process a, process b, ...)' of a step's CPU ms per request."""
    if not per_request:
        return "-"
    processes = sorted(((n, v) for n, v in per_request.items() if n != "stack"), key=lambda kv: -kv[1])
    return f"{per_request['stack']:.1f} (" + ", ".join(f"{n} {v:.1f}" for n, v in processes[:top]) + ")"


def _load_wait(wait: dict[str, Any] | None) -> list[str]:
    if not wait:
        return []
    if wait["reached"]:
        return [
            "",
            f"Measuring started once the 1-minute load was below {wait['threshold']} "
            f"({wait['load1']}, after waiting {wait['waited_s']:.0f} s).",
        ]
    return [
        "",
        f"**The 1-minute load never fell below {wait['threshold']}** in {wait['waited_s']:.0f} s of "
        f"waiting ({wait['load1']} when measuring started anyway).",
    ]


def _payments(p: dict[str, Any]) -> str:
    if not p.get("checked"):
        return "Payments: **not checked** (the payments service's database was not found)."
    return (
        "Payments (the payments service's rows for each final order): "
        + ", ".join(f"{k} {v}" for k, v in sorted(p["payments_by_status"].items()))
        + f"; **charged more than once {p['double_charged']}**, delivered without a capture "
        f"{len(p['delivered_not_captured'])}, charged without a delivery {len(p['captured_not_delivered'])}, "
        f"wrong amount {len(p['wrong_amount'])}."
    )


def _cpu_per_order(result: dict[str, Any]) -> list[str]:
    """The saga phase's CPU per completed order, process by process."""
    cpu = _get(result, "saga_phase", "cpu_per_completed_order")
    if not cpu:
        return []
    groups = cpu["per_process_ms"]
    lines = [
        "",
        "## CPU per completed order (saga phase)",
        "",
        f"From the phase's first request until every order it placed was final ({cpu['window_s']} s), "
        f"CPU time of each process (/proc) over the {cpu['completed_orders']} orders that reached a final "
        f"state: **stack {_fmt(cpu['stack_ms'], 2)} ms**, **with the log pipeline "
        f"{_fmt(cpu['with_log_pipeline_ms'], 2)} ms**. The idle stack (timers, scrapes) used "
        f"{_fmt(cpu['background_stack_cores'], 3)} cores just before the phase, "
        f"{_fmt(cpu['background_stack_ms_per_order'], 2)} ms per order over this window (included above).",
        "",
        "| process | counted in | ms per completed order |",
        "| --- | --- | --- |",
    ]
    label = {"stack": "stack", "log_pipeline": "with the log pipeline", "not_counted": "neither"}
    for group in ("stack", "log_pipeline", "not_counted"):
        lines += [f"| {name} | {label[group]} | {_fmt(ms, 2)} |" for name, ms in groups[group].items()]
    sources = result["stack"].get("cpu_sources") or {}
    if sources:
        lines += ["", "; ".join(f"{name}: {note}" for name, note in sources.items()) + "."]
    return lines


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    h = result["headline"]
    loads = [s["load1"] for s in result.get("load_series", [])] or [0.0]
    lines = [
        f"# Benchmark {result['run_id']}",
        "",
        f"{m['cores']} cores ({m['cpu_model']}), {m['memory_gib']} GiB, {m['os']}, Python "
        f"{m['versions']['python']}, commit {(m['git']['commit'] or '?')[:10]}"
        f"{' + uncommitted changes' if m['git']['uncommitted_changes'] else ''}; "
        f"stack {result['stack']['gateway_url']} (vhost {result['stack']['amqp_vhost']}). "
        f"Run took {result['duration_s']} s. **Shared machine**: 1-minute load average "
        f"{min(loads):.1f} to {max(loads):.1f} during the run (2.0 = both cores busy); "
        "each figure below carries the load while it was measured (start→end).",
        *_load_wait(result.get("load_wait")),
        "",
        "## Targets",
        "",
        "| target | measured | load | met |",
        "| --- | --- | --- | --- |",
    ]
    for t in h["targets"]:
        verdict = {True: "yes", False: "**no**", None: "not run"}[t["met"]]
        lines.append(f"| {t['target']} | {t['measured']} | {t['load']} | {verdict} |")
    if h["failures"]:
        lines += ["", "**The run fails**: " + "; ".join(h["failures"]) + "."]
    lines += _cpu_per_order(result)
    lines += ["", "## Headline ratios (same run, same machine)", "", "| ratio | value |", "| --- | --- |"]
    lines += [f"| {name} | {_fmt(value, 3)} |" for name, value in h["ratios"].items()]
    floors = result.get("floors")
    if floors:
        lines += [
            "",
            "## Floors and single-endpoint figures",
            "",
            "| what | req/s | p50 ms | p99 ms | errors | load | how |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for key in ("flask_hello", "gateway_product_detail", "gateway_health"):
            f = floors[key]
            lines.append(
                f"| {key} | {_fmt(f['rps'])} | {_fmt(f['p50_ms'], 2)} | {_fmt(f['p99_ms'], 2)} | "
                f"{f['errors']} | {_load(f)} | `{f['command']}` |"
            )
        for key, f in (
            ("raw AMQP round trip", floors["amqp_round_trip"]),
            ("Nameko RPC hop (echo) via gateway pool", floors["nameko_round_trip"]["echo"]),
            ("catalog.get_product via gateway pool", floors["nameko_round_trip"].get("catalog_get_product")),
        ):
            if f:
                lines.append(
                    f"| {key} | - | {_fmt(f['p50_ms'], 3)} | {_fmt(f['p99_ms'], 3)} | 0 | "
                    f"{_load(floors['amqp_round_trip'] if 'AMQP' in key else floors['nameko_round_trip'])}"
                    f" | {f['count']} sequential calls |"
                )
    mix = result.get("mix")
    if mix:
        lines += [
            "",
            f"## Realistic mix: {mix['users']} users, ramp +{mix['spawn_rate']}/s, {mix['duration_s']} s "
            f"(load {_load(mix)}, max {mix['load']['load1_max']})",
            "",
            "| endpoint | requests | req/s | p50 ms | p95 ms | p99 ms | error rate |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for name, e in mix["endpoints"].items():
            lines.append(
                f"| {name} | {e['requests']} | {_fmt(e['rps'])} | {_fmt(e['p50_ms'])} | "
                f"{_fmt(e['p95_ms'])} | {_fmt(e['p99_ms'])} | {e['error_rate']:.2%} |"
            )
    for endpoint, k in (result.get("knee") or {}).items():
        lines += [
            "",
            f"## Knee: {endpoint}",
            "",
            f"Knee (p99 < 100 ms): **{_fmt((k['knee_p99_under_100ms'] or {}).get('achieved_rps'))} req/s**; "
            f"p99 < 50 ms: {_fmt((k['knee_p99_under_50ms'] or {}).get('achieved_rps'))} req/s.",
            "",
            "| offered req/s | achieved | p50 ms | p95 ms | p99 ms | errors | load | other work, cores "
            "| stack CPU ms/request (top 3) | vegeta CPU ms/request | passed |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        cost = k.get("cpu_cost")
        if cost:
            busiest = cost["ceiling_rps_busiest_single_process"] or {}
            lines[-2:-2] = [
                f"CPU per request, fitted over the steps: **{cost['ms_per_request']} ms** ("
                + ", ".join(f"{n} {f['ms_per_request']}" for n, f in list(cost["per_process"].items())[:5])
                + f"). With every core given to the stack that CPU runs out at about "
                f"**{_fmt(cost['ceiling_rps_all_cores'])} req/s**; the busiest one-process part, "
                f"{busiest.get('process')}, at about {_fmt(busiest.get('rps'))} req/s.",
                "",
            ]
        for s in k["steps"]:
            lines.append(
                f"| {_fmt(s['offered_rps'], 0)} | {_fmt(s['achieved_rps'])} | {_fmt(s['p50_ms'])} | "
                f"{_fmt(s['p95_ms'])} | {_fmt(s['p99_ms'])} | {s['errors']} | {_load(s)} | "
                f"{_fmt(s['load'].get('other_cores'), 2)} | {_cpu(s.get('cpu_ms_per_request'))} | "
                f"{_fmt(s['generator']['cpu_ms_per_request'], 3)} | {'yes' if s['passed'] else 'no'} |"
            )
        lines += ["", "vegeta, per step (files in the run's `vegeta/` directory):", ""]
        lines += [f"- `{s['generator']['command']}`" for s in k["steps"]]
    orders = result.get("orders")
    if orders:
        lines += [
            "",
            "## Orders and saga completion (202 → status history)",
            "",
            f"Accepted {orders['accepted']}, **lost {orders['lost']}, stuck {orders['stuck']}** "
            f"(created without a 202 reaching the client: {orders['unacknowledged']}; orders beyond the "
            f"{orders['order_requests']} requests: {orders['more_orders_than_requests']}).",
            "",
            _payments(orders["payments"]),
            "",
            "| phase | accepted | to saga decision p50 / p95 / p99 ms "
            "| to final state p50 / p95 / p99 / max ms | outcomes |",
            "| --- | --- | --- | --- | --- |",
        ]
        for phase, p in orders["saga_latency_by_phase"].items():
            d, f = p["to_saga_decision"], p["to_final_state"]
            lines.append(
                f"| {phase} | {p['accepted']} | {_fmt(d['p50_ms'], 0)} / {_fmt(d['p95_ms'], 0)} / "
                f"{_fmt(d['p99_ms'], 0)} | {_fmt(f['p50_ms'], 0)} / {_fmt(f['p95_ms'], 0)} / "
                f"{_fmt(f['p99_ms'], 0)} / {_fmt(f['max_ms'], 0)} | "
                f"{', '.join(f'{k} {v}' for k, v in sorted(p['outcomes'].items()))} |"
            )
        saga = result.get("saga_phase")
        if saga:
            step, accepted, reads = saga["steps"][0], saga["accepted"], saga.get("reads")
            lines += [
                "",
                f"Saga phase: offered {saga['offered_rps']} orders/s for {saga['seconds']} s; accepted in "
                f"the phase {accepted['accepted_in_phase']} of {accepted['offered']} "
                f"({_pct(accepted['fraction'])}; "
                f"{accepted['accepted_late']} later; vegeta sent {accepted['sent']}), "
                f"p50 / p99 of the POST {_fmt(step['p50_ms'])} / "
                f"{_fmt(step['p99_ms'])} ms, load {_load(saga)}, other work "
                f"{_fmt(saga['load'].get('other_cores'), 2)} cores. vegeta "
                f"({step['generator']['cpu_ms_per_request']} ms CPU per request): "
                f"`{step['generator']['command']}`",
            ]
            if reads:
                lines += [
                    "",
                    f"Reads beside it: GET /api/orders/<id> of {reads['orders_read_from']} earlier orders, "
                    f"{reads['achieved_rps']}/s served of {reads['offered_rps']}/s offered, p50 / p99 "
                    f"{_fmt(reads['p50_ms'])} / {_fmt(reads['p99_ms'])} ms, {reads['errors']} errors: "
                    f"`{reads['generator']['command']}`",
                ]
    analytics_check = result.get("analytics")
    if analytics_check and "error" not in analytics_check:
        lines += [
            "",
            "## Analytics: every event emitted, in Kafka?",
            "",
            "Since the run's first order the services' outboxes emitted "
            f"{analytics_check['emitted']} events; "
            f"**{analytics_check['missing']} of them not found in Kafka** by event id (after waiting "
            f"{analytics_check['waited_s']} s): "
            + ", ".join(
                f"{source} {f['emitted']} emitted, {f['missing']} missing"
                for source, f in analytics_check["sources"].items()
            )
            + ".",
        ]
    restarts = result.get("restarts")
    if restarts:
        lines += [
            "",
            "**Processes restarted during the run** (figures measured across a restart are not comparable): "
            + "; ".join(f"{', '.join(r['processes'])} before {r['at_s']} s" for r in restarts)
            + ".",
        ]
    settings = result["stack"]["settings"]
    lines += [
        "",
        "Stack settings read from its processes: "
        + ", ".join(f"`{k}={v}`" for k, v in sorted(settings.items()))
        + ".",
    ]
    profile = result.get("profile")
    if profile:
        lines += ["", "## Profile (py-spy, after the measured phases)"]
        for endpoint, entry in profile.items():
            busiest = sorted(entry["profiles"].items(), key=lambda kv: -kv[1].get("samples", 0))[:4]
            lines += [
                "",
                f"{endpoint} at {entry['offered_rps']}/s (achieved "
                f"{_fmt(entry['steps'][0]['achieved_rps'])}/s, p99 {_fmt(entry['steps'][0]['p99_ms'])} ms, "
                f"load {_load(entry)}, other work {_fmt(entry['load'].get('other_cores'), 2)} cores); "
                "cores used: "
                + ", ".join(f"{n} {c}" for n, c in list(entry["load"]["top_processes"].items())[:6])
                + f"; CPU ms per request: {_cpu(entry['steps'][0].get('cpu_ms_per_request'), 6)}",
                "",
            ]
            for name, prof in busiest:
                top = "; ".join(f"{frame} {share:.0%}" for frame, share in prof.get("top_self", [])[:4])
                lines.append(
                    f"- {name} ({prof.get('active_seconds')} thread-s active), most self time: {top}"
                )
    lines += ["", f"Raw figures: `{result['run_id']}.json`; requests and logs: `{result['raw_records']}/`."]
    return "\n".join(lines) + "\n"


def chart(result: dict[str, Any], path: Path) -> None:
    series = result.get("timeseries", [])
    fig = plt.figure(figsize=(13, 12))
    grid = fig.add_gridspec(4, 2, height_ratios=[3, 2, 1.5, 2.5])
    latency = fig.add_subplot(grid[0, :])
    throughput = fig.add_subplot(grid[1, :], sharex=latency)
    load = fig.add_subplot(grid[2, :], sharex=latency)
    segments: dict[str, list[dict[str, Any]]] = {}
    for s in series:
        segments.setdefault(s["phase"], []).append(s)
    # one line per phase, so nothing is drawn across the gaps between phases
    for key, style, color in (("p50_ms", "-", "C0"), ("p95_ms", "--", "C1"), ("p99_ms", ":", "C3")):
        for index, rows in enumerate(segments.values()):
            latency.plot(
                [r["t"] for r in rows],
                [r[key] for r in rows],
                style,
                color=color,
                linewidth=1,
                label=key.split("_")[0] if index == 0 else None,
            )
    latency.set_yscale("log")
    latency.set_ylabel("latency, ms (log)")
    latency.set_title(f"Benchmark {result['run_id']}: every request the load generator made, per second")
    latency.legend(loc="upper left")
    for rows in segments.values():
        throughput.plot([r["t"] for r in rows], [r["rps"] for r in rows], linewidth=1, color="tab:green")
    throughput.set_ylabel("responses/s")
    samples = result.get("load_series", [])
    load.plot(
        [s["t"] for s in samples], [s["load1"] for s in samples], color="tab:red", label="load average 1m"
    )
    load.plot(
        [s["t"] for s in samples],
        [2 * s["cpu_busy"] for s in samples],
        color="tab:gray",
        linewidth=0.8,
        label="cores busy",
    )
    load.set_ylabel("load")
    load.set_xlabel("seconds since the run started")
    load.legend(loc="upper left")
    for index, (phase, rows) in enumerate(segments.items()):
        times = [r["t"] for r in rows]
        for axis in (latency, throughput, load):
            axis.axvspan(min(times), max(times), alpha=0.08, color=f"C{index}")
        latency.text(min(times), latency.get_ylim()[1], phase, va="top", fontsize=8)
    for column, endpoint in enumerate((GET_DETAIL, POST_ORDER)):
        axis = fig.add_subplot(grid[3, column])
        steps = _get(result, "knee", endpoint, "steps") or []
        axis.plot([s["achieved_rps"] for s in steps], [s["p99_ms"] for s in steps], "o-", label="p99")
        axis.plot([s["achieved_rps"] for s in steps], [s["p50_ms"] for s in steps], "s-", label="p50")
        axis.axhline(100, color="tab:red", linewidth=0.8, linestyle="--")
        axis.set_title(f"knee: {endpoint}", fontsize=10)
        axis.set_xlabel("achieved req/s")
        axis.set_ylabel("ms")
        axis.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write(result: dict[str, Any], results_dir: Path, docs: str | None) -> list[Path]:
    results_dir.mkdir(parents=True, exist_ok=True)
    stem = results_dir / result["run_id"]
    json_path, md_path, png_path = (
        stem.with_suffix(".json"),
        stem.with_suffix(".md"),
        stem.with_suffix(".png"),
    )
    json_path.write_text(json.dumps(result, indent=1) + "\n")
    summary = markdown(result)
    md_path.write_text(summary)
    chart(result, png_path)
    written = [json_path, md_path, png_path]
    if docs:
        doc = Path(docs)
        text = doc.read_text()
        start, end = text.index(DOCS_START) + len(DOCS_START), text.index(DOCS_END)
        block = summary.replace(f"# Benchmark {result['run_id']}", f"### Latest run: {result['run_id']}", 1)
        block = block.replace("\n## ", "\n#### ").replace(
            f"Raw figures: `{result['run_id']}.json`",
            f"Raw figures: `bench/results/{result['run_id']}.json`, "
            f"chart `bench/results/{result['run_id']}.png`",
        )
        # bench/results/ is not committed: the doc keeps its own copy of the latest chart
        chart_copy = doc.with_suffix(".png")
        shutil.copyfile(png_path, chart_copy)
        block += f"\n![latency percentiles and throughput over time]({chart_copy.name})\n"
        doc.write_text(text[:start] + "\n" + block + text[end:])
        written += [doc, chart_copy]
    return written
