"""A build that fails leaves no image under the name it was building, and says why."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_failed_build_tags_nothing_and_names_the_failure(tmp_path: Path) -> None:
    # a CA bundle pip cannot use: the build's pip step fails, after the base layers
    bogus = tmp_path / "not-a-ca.pem"
    bogus.write_text("this is not a certificate\n")
    tag = "failed-build-test"
    result = subprocess.run(["bash", "scripts/images.sh", "build", "platform"], cwd=ROOT, capture_output=True,
                            text=True, timeout=1800, env={"PATH": "/usr/local/bin:/usr/bin:/bin",
                                                          "HOME": str(Path.home()), "PIP_CERT": str(bogus),
                                                          "IMAGE_TAG": tag})
    assert result.returncode == 1, result.stderr
    assert f"no image was tagged ecommerce-platform:{tag}" in result.stderr
    assert "Traceback" not in result.stderr
    images = subprocess.run(["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"],
                            capture_output=True, text=True, check=True).stdout.split()
    assert f"ecommerce-platform:{tag}" not in images
    assert not [image for image in images if ":building-" in image]
    assert not (ROOT / "docker" / "pip-ca.pem").exists()  # the CA copy is gone too
