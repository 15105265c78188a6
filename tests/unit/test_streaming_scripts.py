"""Without Java the streaming side says so; scripts/platform.sh then starts the rest without it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_without_java_kafka_check_names_what_to_install_and_exits_3(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "sed", "cut"):  # what the script runs before it looks for java
        (bin_dir / tool).symlink_to(shutil.which(tool))
    result = subprocess.run([str(bin_dir / "bash"), str(ROOT / "scripts/kafka.sh"), "check"],
                            env={"PATH": str(bin_dir), "HOME": str(tmp_path)}, capture_output=True, text=True)
    assert result.returncode == 3, result.stderr
    assert "Java is missing" in result.stderr
    assert "apt-get install openjdk-17-jre-headless" in result.stderr
    assert "The core platform (services, gateway) runs without it" in result.stderr

