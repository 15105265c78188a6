"""eventlet's deprecation banner stays out of the console, and only it (services/common/warnings_filter.py).

Real processes: ``nameko shell`` and ``nameko run`` (against the local RabbitMQ) started the way the
docs and scripts/supervisord.conf start them, each also raising a warning of its own from another
module, which must still show: the filter is that narrow.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv/bin/python")
BANNER = "Eventlet is deprecated"
#: what the stack's processes inherit from scripts/platform.sh: no PYTHONWARNINGS of their own
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"} | {"PYTHONPATH": str(ROOT)}
SHELL_INPUT = 'import warnings\nwarnings.warn("probe from the shell", UserWarning)\nprint("shell ran")\n'


def shell(command: list[str], amqp_uri: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*command, "shell", "--config", str(ROOT / "config.yml")],
        input=SHELL_INPUT, capture_output=True, text=True, timeout=60, cwd=ROOT,
        env=ENV | {"AMQP_URI": amqp_uri},
    )


def test_nameko_shell_as_documented_prints_no_banner_but_other_warnings(rabbit_config: dict) -> None:
    quiet = shell([PYTHON, "-m", "services.common.nameko_cli"], rabbit_config["AMQP_URI"])
    assert quiet.returncode == 0, quiet.stderr
    assert "shell ran" in quiet.stdout
    assert BANNER not in quiet.stderr, quiet.stderr
    assert "UserWarning: probe from the shell" in quiet.stderr, quiet.stderr
    # the same shell through nameko's own script prints the banner: the check above can fail
    plain = shell([str(ROOT / ".venv/bin/nameko")], rabbit_config["AMQP_URI"])
    assert plain.returncode == 0, plain.stderr
    assert BANNER in plain.stderr


def test_nameko_run_as_supervisord_starts_it_prints_no_banner(rabbit_config: dict, tmp_path: Path) -> None:
    (tmp_path / "probe_service.py").write_text(
        "import warnings\n"
        "from nameko.rpc import rpc\n"
        'warnings.warn("probe from the service module", UserWarning)\n'
        "class Probe:\n"
        '    name = "console_probe"\n'
        "    @rpc\n"
        "    def ping(self):\n"
        '        return "pong"\n'
    )
    # the command line of every nameko program in scripts/supervisord.conf
    command = [PYTHON, "-m", "services.common.nameko_cli", "run", "--config", str(ROOT / "config.yml"),
               "probe_service"]
    env = ENV | {"AMQP_URI": rabbit_config["AMQP_URI"], "PYTHONPATH": f"{tmp_path}:{ROOT}",
                 "LOGSTASH_HOST": ""}
    log_path = tmp_path / "run.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while "console_probe" not in log_path.read_text():
            assert process.poll() is None, f"nameko run exited: {log_path.read_text()}"
            assert time.monotonic() < deadline, f"nameko run did not start: {log_path.read_text()}"
            time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(timeout=30)
    output = log_path.read_text()
    assert "UserWarning: probe from the service module" in output, output
    assert BANNER not in output, output


def test_filter_is_for_eventlets_banner_only() -> None:
    """Another warning with the same category and text, from another module, still shows."""
    program = (
        "from services.common.warnings_filter import silence_eventlet_banner\n"
        "silence_eventlet_banner()\n"
        "import warnings\n"
        "warnings.warn('\\nEventlet is deprecated. It is currently being maintained in bugfix mode, from us',"
        " UserWarning)\n"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60,
                            cwd=ROOT, env=ENV)
    assert result.returncode == 0, result.stderr
    assert "from us" in result.stderr
    assert result.stderr.count(BANNER) == 1, result.stderr
