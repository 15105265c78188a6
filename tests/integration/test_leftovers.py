"""Nothing left behind: the stop path make test and make bench run at exit
(``scripts/platform.sh down --started``) against a small stack of real servers started with a run's
settings (its own STACK_DIR, ports and STACK_STARTED_FILE): the log shipper and Prometheus of the
stack, which scripts/observability.sh installs (``scripts/observability.sh install``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv/bin/python")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def nothing_listens(port: int) -> bool:
    """Binding succeeds only if no socket listens there (SO_REUSEADDR passes TIME_WAIT, not LISTEN)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.fixture
def run_env(tmp_path: Path) -> dict[str, str]:
    for tool in ("rsyslogd", "prometheus", "promtool"):
        assert shutil.which(tool, path=os.environ["PATH"] + ":/usr/sbin:/sbin"), (
            f"{tool} is missing: run scripts/observability.sh install")
    started = tmp_path / "started"
    started.touch()
    return {k: v for k, v in os.environ.items() if k != "STACK_STARTED_FILE"} | {
        "STACK_DIR": str(tmp_path / "stack"),
        "STACK_STARTED_FILE": str(started),
        "LOGSTASH_PORT": str(free_port()),
        "PROMETHEUS_PORT": str(free_port()),
        "SEARCH_PORT": str(free_port()),  # nothing there: the shipper retries, it needs no search to listen
        "METRICS_PORT_BASE": str(free_port()),
        "PYTHONPATH": str(ROOT),
    }


def sh(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)


def leftovers(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "scripts/leftovers.py", env["STACK_STARTED_FILE"], *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)


def test_down_started_stops_what_the_run_started_and_frees_its_ports(run_env: dict[str, str]) -> None:
    shipper, prometheus = int(run_env["LOGSTASH_PORT"]), int(run_env["PROMETHEUS_PORT"])
    try:
        started = sh(run_env, "scripts/observability.sh", "start", "shipper", "prometheus")
        assert started.returncode == 0, started.stderr
        records = Path(run_env["STACK_STARTED_FILE"]).read_text().splitlines()
        assert records == ["started shipper", "started prometheus"]
        assert not nothing_listens(shipper) and not nothing_listens(prometheus)

        # while they run, the check names both: make test's last step can fail
        running = leftovers(run_env)
        assert running.returncode == 1
        assert f"listening on {shipper} " in running.stdout and "rsyslogd" in running.stdout
        assert f"listening on {prometheus} " in running.stdout and "prometheus" in running.stdout

        # a client of another stack (this test process has no STACK_STARTED_FILE of the run)
        with socket.create_connection(("127.0.0.1", shipper)):
            in_use = leftovers(run_env, "--in-use", str(shipper))
            assert in_use.returncode == 0 and f"pid {os.getpid()} " in in_use.stdout, in_use.stdout
            assert "kept: " in leftovers(run_env).stdout
        assert leftovers(run_env, "--in-use", str(prometheus)).returncode == 1

        down = sh(run_env, "scripts/platform.sh", "down", "--started")
        assert down.returncode == 0, down.stderr
        assert "nothing this run started still listens" in down.stderr
    finally:
        sh(run_env, "scripts/observability.sh", "stop", "shipper", "prometheus")
    assert nothing_listens(shipper) and nothing_listens(prometheus)
    assert leftovers(run_env).returncode == 0


def listener(env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    """A stand-in server: python's http.server on a free port, with the environment given."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        if not nothing_listens(port):
            return server, port
        time.sleep(0.1)
    server.kill()
    raise AssertionError("http.server did not listen")


def test_down_started_fails_when_a_process_of_the_run_still_listens(run_env: dict[str, str]) -> None:
    """A listener the stop path does not know (a stray child of the run) fails make test, by name."""
    stray, port = listener(run_env)
    try:
        down = sh(run_env, "scripts/platform.sh", "down", "--started")
        assert down.returncode == 1
        assert f"LEFT BEHIND: pid {stray.pid} listening on {port} " in down.stderr, down.stderr
    finally:
        stray.terminate()
        stray.wait(timeout=30)
    assert sh(run_env, "scripts/platform.sh", "down", "--started").returncode == 0


def test_servers_found_running_stay_and_stopped_ports_must_be_free(run_env: dict[str, str]) -> None:
    """--found-port: a server running before the run, restarted by a test (so it carries the run's
    variable), is kept; --port: a server without the variable (PostgreSQL's pg_ctlcluster cleans the
    environment) still listening on a port the stop path freed is left behind."""
    restarted, found_port = listener(run_env)
    other_env = {k: v for k, v in run_env.items() if k != "STACK_STARTED_FILE"}
    unmarked, stopped_port = listener(other_env)
    try:
        assert leftovers(run_env).returncode == 1
        kept = leftovers(run_env, "--found-port", str(found_port))
        assert kept.returncode == 0, kept.stdout
        assert f"kept: pid {restarted.pid} listening on {found_port}, running before this run" in kept.stdout
        assert str(unmarked.pid) not in kept.stdout  # not this run's, and no port of its servers
        left = leftovers(run_env, "--found-port", str(found_port), "--port", str(stopped_port))
        assert left.returncode == 1
        assert f"LEFT BEHIND: pid {unmarked.pid} listening on {stopped_port} " in left.stdout
    finally:
        for server in (restarted, unmarked):
            server.terminate()
            server.wait(timeout=30)
