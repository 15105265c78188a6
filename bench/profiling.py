"""py-spy attached to the stack's processes while a load runs: where their CPU time goes.

``py-spy record --format raw`` writes collapsed stacks ("frame;frame;... count");
each process's profile is reduced to the functions with the most samples on
top of the stack (self) and anywhere on it (inclusive), as shares of that
process's samples. A thread is sampled while it runs or waits for a CPU (py-spy
leaves out threads asleep in I/O; checked: an idle gateway worker gives 0 samples), 100 times a
second, by function; --nonblocking never pauses the target. On a busy machine "waiting for a CPU"
is a large part, so ``active_seconds`` exceeds the CPU time; the shares still say where it goes.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PY_SPY = ROOT / ".venv" / "bin" / "py-spy"
RATE = 100


Recording = tuple[str, Path, subprocess.Popen, Any]


def start(processes: dict[str, int], seconds: float, out_dir: Path) -> list[Recording]:
    """Begin recording every Python process of the stack for ``seconds``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    running = []
    for name, pid in processes.items():
        if name in ("rabbitmq", "redis", "gateway-master"):
            continue  # not Python, or idle (the gunicorn master only supervises its workers)
        output = out_dir / f"{name}.txt"
        command = [
            str(PY_SPY),
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(RATE),
            "--duration",
            str(int(seconds)),
            "--format",
            "raw",
            "--function",
            "--nonblocking",
            "--output",
            str(output),
        ]
        log = open(out_dir / f"{name}.log", "w")  # noqa: SIM115 (closed in finish())
        running.append((name, output, subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT), log))
    return running


def finish(running: list[Recording], top: int = 12) -> dict[str, Any]:
    profiles: dict[str, Any] = {}
    for name, output, proc, log in running:
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        if output.is_file():
            profiles[name] = summarize(output.read_text(), top)
            profiles[name]["file"] = (
                str(output.relative_to(ROOT)) if output.is_relative_to(ROOT) else str(output)
            )
        else:
            profiles[name] = {"error": (output.with_suffix(".log")).read_text()[-500:]}
    return profiles


_LINE = re.compile(r"^(.*) (\d+)$")


def _short(frame: str) -> str:
    """'handle (venv/lib/.../site-packages/kombu/x.py:12)' -> 'handle (kombu/x.py:12)'."""
    return re.sub(r"\((?:[^()]*/site-packages/|[^()]*/work/[^/()]+/|[^()]*/lib/python3\.\d+/)", "(", frame)


def summarize(collapsed: str, top: int) -> dict[str, Any]:
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        frames = [_short(f) for f in match.group(1).split(";") if f]
        count = int(match.group(2))
        total += count
        if frames:
            self_counts[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    share = (lambda n: round(n / total, 4)) if total else (lambda n: 0.0)
    return {
        "samples": total,
        "active_seconds": round(total / RATE, 1),
        "top_self": [[frame, share(n)] for frame, n in self_counts.most_common(top)],
        "top_inclusive": [
            [frame, share(n)]
            for frame, n in inclusive.most_common(top * 3)
            if not frame.startswith(("<module>", "run (", "_bootstrap"))
        ][:top],
    }
