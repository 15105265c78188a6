"""terraform/gcp is really checked by the validation's tflint and checkov, and its skips are justified.

scripts/validate_deploy.sh runs tflint and checkov over terraform/ (the AWS tree and terraform/gcp).
Here both run on a copy of terraform/gcp with a planted fault, and must report it; every checkov
skip in the tree gives its reason inline.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from tests.deploy.test_consistency import ROOT, tool

GCP = ROOT / "terraform" / "gcp"
SKIP = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?")


def planted(tmp_path: Path, file: str, old: str, new: str) -> Path:
    """A copy of terraform/gcp with OLD replaced by NEW in FILE."""
    copy = tmp_path / "gcp"
    shutil.copytree(GCP, copy)
    text = (copy / file).read_text()
    assert old in text, f"{old!r} is no longer in terraform/gcp/{file}: update this test"
    (copy / file).write_text(text.replace(old, new, 1))
    return copy


def test_every_checkov_skip_says_why() -> None:
    skips = [(path, m) for path in GCP.glob("*.tf") for m in SKIP.finditer(path.read_text())]
    assert skips, "no skip at all: drop this test's premise or keep one"
    for path, match in skips:
        reason = (match.group(2) or "").strip()
        assert len(reason.split()) >= 5, f"{path.name}: checkov skip {match.group(1)} gives no reason"


def test_checkov_fails_a_public_bucket(tmp_path: Path) -> None:
    copy = planted(tmp_path, "storage.tf", '  public_access_prevention    = "enforced"\n', "")
    result = subprocess.run([str(tool("checkov")), "--directory", str(copy), "--framework", "terraform",
                             "--skip-download", "--quiet", "--compact", "--output", "cli"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "CKV_GCP_114" in result.stdout  # public access prevention


def test_tflint_reads_terraform_gcp(tmp_path: Path) -> None:
    """tflint as validate_deploy.sh runs it: --recursive from terraform/, which must reach gcp/."""
    tree = tmp_path / "terraform"
    shutil.copytree(ROOT / "terraform", tree)
    with (tree / "gcp" / "variables.tf").open("a") as variables:
        variables.write('\nvariable "planted" {\n  description = "never used"\n  type        = string\n}\n')
    result = subprocess.run([str(tool("tflint")), "--recursive", "--config", str(tree / ".tflint.hcl"),
                             "--format", "compact"], cwd=tree, capture_output=True, text=True, timeout=300,
                            env={"TFLINT_PLUGIN_DIR": str(tmp_path / "plugins"), "PATH": "/usr/bin:/bin"})
    assert result.returncode != 0, result.stdout + result.stderr
    assert re.search(r"gcp/variables\.tf:\d+:\d+: Warning - variable \"planted\" is declared but not used",
                     result.stdout), result.stdout
