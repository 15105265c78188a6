"""What the machine is and how busy it was: description, load average, CPU per process.

The machine is shared (other workloads may run beside the benchmark), so every
figure is stored with the load average and machine CPU use measured while it
was taken; ``Sampler`` records them once a second in a background thread.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
#: the Python packages whose versions shape the figures
PACKAGES = (
    "locust",
    "flask",
    "gunicorn",
    "nameko",
    "kombu",
    "amqp",
    "eventlet",
    "SQLAlchemy",
    "redis",
    "pika",
    "matplotlib",
    "Flask-Limiter",
    "pybreaker",
    "PyJWT",
    "py-spy",
)


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _command(*args: str) -> str:
    try:
        result = subprocess.run(args, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (result.stdout or result.stderr).strip()


def describe_machine(root: Path) -> dict[str, Any]:
    cpuinfo = _read("/proc/cpuinfo")
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    meminfo = _read("/proc/meminfo")
    mem_kib = re.search(r"^MemTotal:\s*(\d+)", meminfo, re.M)
    os_release = dict(re.findall(r'^(\w+)="?([^"\n]*)"?$', _read("/etc/os-release"), re.M))
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    wrk = _command("wrk", "-v").splitlines()
    versions["wrk"] = wrk[0] if wrk else None
    versions["rabbitmq"] = _command("rabbitmqctl", "-q", "version") or None
    redis_info = _command("redis-cli", "INFO", "server")
    redis_version = re.search(r"redis_version:(\S+)", redis_info)
    versions["redis-server"] = redis_version.group(1) if redis_version else None
    commit = _command("git", "-C", str(root), "rev-parse", "HEAD") or None
    dirty = bool(_command("git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"))
    return {
        "cores": os.cpu_count(),
        "cpu_model": model.group(1).strip() if model else platform.processor(),
        "memory_gib": round(int(mem_kib.group(1)) / 1024 / 1024, 1) if mem_kib else None,
        "kernel": platform.release(),
        "os": os_release.get("PRETTY_NAME"),
        "hostname": platform.node(),
        "versions": versions,
        "git": {"commit": commit, "uncommitted_changes": dirty},
    }


def _cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine since boot."""
    fields_ = [float(v) for v in _read("/proc/stat").splitlines()[0].split()[1:]]
    idle = fields_[3] + (fields_[4] if len(fields_) > 4 else 0.0)
    return sum(fields_) - idle, sum(fields_)


def process_cpu_seconds(pid: int, tree: bool = False) -> float | None:
    """User + system CPU seconds of ``pid`` (None once it is gone). With ``tree``, also those of its
    children: the ones that ended (the kernel adds a child's time to its parent's cutime/cstime when
    the parent reaps it; PostgreSQL's postmaster reaps every backend) and, recursively, the live ones."""
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return None
    after_name = stat.rsplit(")", 1)[1].split()
    ticks = int(after_name[11]) + int(after_name[12])
    if not tree:
        return ticks / CLOCK_TICKS
    ticks += int(after_name[13]) + int(after_name[14])
    return ticks / CLOCK_TICKS + sum(process_cpu_seconds(child, tree=True) or 0.0 for child in children(pid))


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


@dataclass
class Sample:
    t: float
    load1: float
    load5: float
    load15: float
    cpu_busy: float  # fraction of all cores, since the previous sample
    processes: dict[str, float] = field(default_factory=dict)  # name -> cores used since the previous sample


#: processes whose children are watched under names of their own: counted without them
SELF_ONLY = frozenset({"gateway-master", "supervisord", "hello-gunicorn-master"})


def cpu_seconds(name: str, pid: int) -> float | None:
    """A watched process's CPU seconds: with its children unless they are watched on their own."""
    return process_cpu_seconds(pid, tree=name not in SELF_ONLY)


class Sampler:
    """Once a second: load average, machine CPU use, CPU used by each watched process."""

    def __init__(self, interval: float = 1.0):
        self.interval = interval
        self.samples: list[Sample] = []
        self._watched: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def watch(self, processes: dict[str, int]) -> None:
        """Add processes (name -> pid) whose CPU use is recorded from now on."""
        with self._lock:
            self._watched.update(processes)

    def snapshot(self) -> dict[str, float]:
        """CPU seconds of every watched process now: two snapshots give a window's CPU exactly."""
        with self._lock:
            watched = dict(self._watched)
        found = {name: cpu_seconds(name, pid) for name, pid in watched.items()}
        return {name: seconds for name, seconds in found.items() if seconds is not None}

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        busy0, total0 = _cpu_times()
        previous: dict[str, float] = {}
        t0 = time.time()
        while not self._stop.wait(self.interval):
            now = time.time()
            busy, total = _cpu_times()
            with self._lock:
                watched = dict(self._watched)
            used: dict[str, float] = {}
            for name, pid in watched.items():
                seconds = cpu_seconds(name, pid)
                if seconds is None:
                    continue
                if name in previous:
                    used[name] = round(max(seconds - previous[name], 0.0) / (now - t0), 3)
                previous[name] = seconds
            load1, load5, load15 = os.getloadavg()
            cpu_busy = (busy - busy0) / (total - total0) if total > total0 else 0.0
            self.samples.append(Sample(now, load1, load5, load15, round(cpu_busy, 3), used))
            busy0, total0, t0 = busy, total, now

    def window(self, start: float, end: float) -> dict[str, Any]:
        """Load and CPU while a figure was measured: what to read it against."""
        inside = [s for s in self.samples if start <= s.t <= end + self.interval]
        load_now = os.getloadavg()
        if not inside:
            return {
                "load1_start": round(load_now[0], 2),
                "load1_end": round(load_now[0], 2),
                "load1_max": round(load_now[0], 2),
                "cpu_busy_mean": None,
                "top_processes": {},
            }
        per_process: dict[str, list[float]] = {}
        for sample in inside:
            for name, cores in sample.processes.items():
                per_process.setdefault(name, []).append(cores)
        top = sorted(((name, sum(v) / len(v)) for name, v in per_process.items()), key=lambda kv: -kv[1])
        cpu_busy = sum(s.cpu_busy for s in inside) / len(inside)
        return {
            "load1_start": round(inside[0].load1, 2),
            "load1_end": round(inside[-1].load1, 2),
            "load1_max": round(max(s.load1 for s in inside), 2),
            "cpu_busy_mean": round(cpu_busy, 3),
            # cores the rest of the machine (other people's work) used meanwhile
            "other_cores": round(max(cpu_busy * (os.cpu_count() or 1) - sum(c for _, c in top), 0.0), 3),
            # mean cores each watched process used in this window (1.0 = one core flat out)
            "top_processes": {name: round(cores, 3) for name, cores in top},
        }
