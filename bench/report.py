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


def headline(result: dict[str, Any]) -> dict[str, Any]:
    floors = result.get("floors", {})
    hello = _get(floors, "flask_hello", "rps")
    amqp_p50 = _get(floors, "amqp_round_trip", "p50_ms")
    hop_p50 = _get(floors, "nameko_round_trip", "echo", "p50_ms")
    knee_get = _get(result, "knee", GET_DETAIL, "knee_p99_under_100ms") or {}
    knee_get_50 = _get(result, "knee", GET_DETAIL, "knee_p99_under_50ms") or {}
    knee_post = _get(result, "knee", POST_ORDER, "knee_p99_under_100ms") or {}
    knee_measured = "knee" in result
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
        "Nameko RPC hop via gateway pool / raw AMQP round trip (p50)": _ratio(hop_p50, amqp_p50),
        "Nameko RPC hop via gateway pool / raw AMQP round trip (mean)": _ratio(
            _get(floors, "nameko_round_trip", "echo", "mean_ms"), _get(floors, "amqp_round_trip", "mean_ms")
        ),
        "catalog.get_product via gateway pool / raw AMQP round trip (p50)": _ratio(
            _get(floors, "nameko_round_trip", "catalog_get_product", "p50_ms"), amqp_p50
        ),
    }
    saga_phase = result.get("saga_phase")
    saga_latency = _get(result, "orders", "saga_latency_by_phase", "saga", "to_final_state") or {}
    orders = result.get("orders", {})
    saga_achieved = (
        _get(saga_phase or {}, "steps", 0, "achieved_rps") if saga_phase and saga_phase.get("steps") else None
    )
    if saga_phase and saga_phase.get("steps"):
        saga_achieved = saga_phase["steps"][0]["achieved_rps"]
    get_rps = knee_get_50.get("achieved_rps")
    targets = [
        {
            "target": "GET /api/products/<id>: ≥ 1,000 req/s, or ≥ 25% of bare Flask, at p99 < 50 ms",
            "measured": (
                f"{get_rps} req/s at p99 < 50 ms ({_ratio(get_rps, hello)} of Flask's {hello})"
                if get_rps
                else "no step kept p99 under 50 ms"
            )
            if knee_measured
            else "not run",
            "met": (bool(get_rps) and (get_rps >= 1000 or (hello is not None and get_rps >= 0.25 * hello)))
            if knee_measured
            else None,
            "load": _load(_get(result, "knee", GET_DETAIL)),
        },
        {
            "target": "POST /api/orders: ≥ 300 accepted/s at p99 < 100 ms",
            "measured": (
                f"{knee_post.get('achieved_rps')} accepted/s at p99 {knee_post.get('p99_ms')} ms"
                if knee_post
                else "no step kept p99 under 100 ms"
            )
            if knee_measured
            else "not run",
            "met": bool(knee_post) and knee_post["achieved_rps"] >= 300 if knee_measured else None,
            "load": _load(_get(result, "knee", POST_ORDER)),
        },
        {
            "target": "saga completion: p99 < 1 s at a steady 100 orders/s, zero lost or stuck",
            "measured": (
                f"offered {saga_phase['offered_rps']}/s, accepted {saga_achieved}/s; p99 to final "
                f"{saga_latency.get('p99_ms')} ms; lost {orders.get('lost')}, stuck {orders.get('stuck')}"
            )
            if saga_phase
            else "not run",
            "met": (
                saga_phase["offered_rps"] >= 100
                and saga_achieved is not None
                and saga_achieved >= 95
                and (saga_latency.get("p99_ms") or 1e9) < 1000
                and not orders.get("lost")
                and not orders.get("stuck")
            )
            if saga_phase
            else None,
            "load": _load(saga_phase),
        },
        {
            "target": "gateway's Nameko RPC hop within 3x the raw AMQP round trip (p50)",
            "measured": f"{hop_p50} ms vs {amqp_p50} ms" if hop_p50 else "not run",
            "met": (ratios["Nameko RPC hop via gateway pool / raw AMQP round trip (p50)"] or 99) <= 3
            if hop_p50
            else None,
            "load": _load(_get(floors, "nameko_round_trip")),
        },
    ]
    return {
        "ratios": ratios,
        "targets": targets,
        "orders": {
            "accepted": orders.get("accepted"),
            "lost": orders.get("lost"),
            "stuck": orders.get("stuck"),
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
            "| stack CPU ms/request (top 3) | passed |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
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
                f"{'yes' if s['passed'] else 'no'} |"
            )
    orders = result.get("orders")
    if orders:
        lines += [
            "",
            "## Orders and saga completion (202 → status history)",
            "",
            f"Accepted {orders['accepted']}, **lost {orders['lost']}, stuck {orders['stuck']}** "
            f"(created without a 202 reaching the client: {orders['unacknowledged']}).",
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
            lines += [
                "",
                f"Saga phase: offered {saga['offered_rps']} orders/s for {saga['seconds']} s, accepted "
                f"{_fmt(saga['steps'][0]['achieved_rps'])}/s "
                f"(p99 of the POST {_fmt(saga['steps'][0]['p99_ms'])} ms, load {_load(saga)}, other work "
                f"{_fmt(saga['load'].get('other_cores'), 2)} cores); stack CPU per accepted order "
                "while it ran: "
                f"{_cpu(saga['steps'][0].get('cpu_ms_per_request'), 6)} ms.",
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
