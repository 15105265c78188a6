"""``python -m bench [flags]``; scripts/bench.sh (``make bench``) starts a stack first if none answers."""

from __future__ import annotations

import argparse
import sys

from services.common.warnings_filter import silence_eventlet_banner

silence_eventlet_banner()  # before nameko imports eventlet (services/common/warnings_filter.py)

from bench.run import PHASES, main  # noqa: E402


def rates(text: str) -> list[float]:
    values = [float(v) for v in text.split(",") if v.strip()]
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError("a comma-separated list of positive rates")
    return values


def non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError("0 or more")
    return value


def positive(text: str) -> float:
    value = non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError("more than 0")
    return value


def phases(text: str) -> list[str]:
    chosen = [p.strip() for p in text.split(",") if p.strip()]
    unknown = set(chosen) - set(PHASES)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown phase(s) {sorted(unknown)}; choose from {PHASES}")
    return [p for p in PHASES if p in chosen]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument(
        "--phases", type=phases, default=list(PHASES), help="comma-separated subset of " + ",".join(PHASES)
    )
    mix = p.add_argument_group("the realistic mix (locust)")
    mix.add_argument("--users", type=int, default=30, help="virtual users")
    mix.add_argument("--spawn-rate", type=float, default=1, help="users started per second (the ramp)")
    mix.add_argument("--duration", type=int, default=60, help="seconds, ramp included")
    mix.add_argument(
        "--wait-min", type=float, default=0.5, help="think time between a user's tasks, lower bound (s)"
    )
    mix.add_argument("--wait-max", type=float, default=1.5, help="think time, upper bound (s)")
    knee = p.add_argument_group("knee search (vegeta, constant rates, stepped)")
    knee.add_argument(
        "--knee-get-rates",
        type=rates,
        default=rates("200,400,600,800,1000,1200"),
        help="GET /api/products/<id> rates to step through (req/s)",
    )
    knee.add_argument(
        "--knee-post-rates",
        type=rates,
        default=rates("10,25,50,75,100"),
        help="POST /api/orders rates to step through (req/s)",
    )
    knee.add_argument("--knee-step-seconds", type=positive, default=8, help="measured seconds per step")
    knee.add_argument(
        "--knee-warmup-seconds",
        type=non_negative,
        default=2,
        help="unmeasured seconds at the start of a step",
    )
    saga = p.add_argument_group("the saga phase (vegeta): steady orders, reads beside them, CPU per order")
    saga.add_argument("--saga-rate", type=positive, default=50, help="orders/s offered")
    saga.add_argument("--saga-seconds", type=positive, default=60, help="seconds at that rate")
    saga.add_argument(
        "--saga-read-rate",
        type=non_negative,
        default=10,
        help="GET /api/orders/<id> per second of orders placed earlier, during the phase (0: none)",
    )
    saga.add_argument(
        "--saga-read-orders",
        type=int,
        default=20,
        help="orders placed for those reads when no earlier phase placed any",
    )
    saga.add_argument(
        "--background-seconds",
        type=non_negative,
        default=5,
        help="seconds of the idle stack's CPU measured before the phase (reported beside the CPU per order)",
    )
    fl = p.add_argument_group("floors")
    fl.add_argument("--floor-seconds", type=float, default=10, help="seconds per wrk run")
    fl.add_argument(
        "--floor-connections", type=int, default=16, help="wrk connections (same for Flask and gateway)"
    )
    fl.add_argument("--rtt-calls", type=int, default=2000, help="sequential round trips per RPC floor")
    other = p.add_argument_group("other")
    other.add_argument(
        "--customers", type=int, default=20, help="pre-registered customers for the rate phases"
    )
    other.add_argument(
        "--drain-timeout",
        type=float,
        default=300,
        help="seconds to wait for the run's orders to reach a final state before counting them stuck",
    )
    other.add_argument(
        "--wait-for-load",
        type=float,
        default=0,
        metavar="LOAD",
        help="before measuring, wait until the 1-minute load average is below LOAD (0: do not wait); "
        "the machine may be shared",
    )
    other.add_argument(
        "--wait-for-load-timeout",
        type=float,
        default=1200,
        help="seconds to wait for --wait-for-load before measuring anyway (the report says so)",
    )
    other.add_argument(
        "--profile", action="store_true", help="also run py-spy on every stack process under load"
    )
    other.add_argument("--profile-seconds", type=float, default=15)
    other.add_argument("--results-dir", default="bench/results", help="where <timestamp>.json/.md/.png go")
    other.add_argument(
        "--docs",
        default="docs/performance.md",
        help="the doc whose summary block is replaced with this run's ('' leaves docs alone)",
    )
    return p


if __name__ == "__main__":
    sys.exit(main(parser().parse_args()))
