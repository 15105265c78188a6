"""The console of the running stack: no Python warning in its processes' output, and the
documented ``make ctl`` working from a shell with nothing exported (issue 15, parts 6 and 7)."""

from __future__ import annotations

import os
import re
import subprocess

import requests

from tests.e2e.conftest import ROOT, STACK_DIR
from tests.helpers import wait_for

#: how Python prints a warning: "path:line: Category: message"
PYTHON_WARNING = re.compile(r"^\S+:\d+: \w*Warning: .*$", re.MULTILINE)
#: a shell of the checkout with nothing of the platform's exported
CLEAN_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": os.environ["HOME"]}


def test_no_process_of_the_stack_printed_a_python_warning() -> None:
    logs = sorted(STACK_DIR.glob("log/*.log"))
    assert {"gateway.log", "orders.log", "customers.log"} <= {log.name for log in logs}
    found = {log.name: PYTHON_WARNING.findall(log.read_text(errors="replace")) for log in logs}
    assert {name: lines for name, lines in found.items() if lines} == {}
    assert not any("Eventlet is deprecated" in log.read_text(errors="replace") for log in logs)


def make_ctl(args: str) -> subprocess.CompletedProcess:
    # exactly what the README shows, from the checkout, plus the stack (the e2e one, not var/)
    return subprocess.run(["make", "--no-print-directory", "ctl", f"ARGS={args}", f"STACK_DIR={STACK_DIR}"],
                          cwd=ROOT, env=CLEAN_ENV, capture_output=True, text=True, timeout=120)


def test_make_ctl_works_in_a_clean_shell_where_bare_supervisorctl_does_not() -> None:
    bare = subprocess.run([str(ROOT / ".venv/bin/supervisorctl"), "-c", "scripts/supervisord.conf", "status"],
                          cwd=ROOT, env=CLEAN_ENV, capture_output=True, text=True, timeout=60)
    assert bare.returncode != 0 and "ENV_STACK_DIR" in bare.stdout + bare.stderr

    status = make_ctl("status gateway")
    assert status.returncode == 0, status.stderr
    assert re.match(r"gateway\s+RUNNING\s+pid \d+", status.stdout), status.stdout

    # the README's replay commands, against the running Flink job
    stopped = make_ctl("stop streaming:flink_kpis")
    assert "flink_kpis: stopped" in stopped.stdout, stopped.stdout + stopped.stderr
    started = make_ctl("start streaming:flink_kpis")
    assert "flink_kpis: started" in started.stdout, started.stdout + started.stderr
    assert "RUNNING" in make_ctl("status streaming:flink_kpis").stdout

    # leave the stack as found: the job running again before the next test
    port = os.environ.get("ANALYTICS_FLINK_REST_PORT", "8081")

    def job_running() -> bool:
        try:
            jobs = requests.get(f"http://127.0.0.1:{port}/jobs/overview", timeout=3).json()["jobs"]
        except (requests.RequestException, ValueError, KeyError):
            return False
        return any(job["state"] == "RUNNING" for job in jobs)

    wait_for(job_running, timeout=180, what="the Flink job running again")


def test_make_ctl_names_a_stack_that_is_not_running(tmp_path) -> None:
    result = subprocess.run(["make", "--no-print-directory", "ctl", "ARGS=status", f"STACK_DIR={tmp_path}"],
                            cwd=ROOT, env=CLEAN_ENV, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert f"the stack in {tmp_path} is not running" in result.stderr
    assert "Traceback" not in result.stderr
