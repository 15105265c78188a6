"""The three pipeline definitions run the same stages, and each scans its images before pushing them.

Jenkinsfile, .github/workflows/ci.yml and .gitlab-ci.yml: lint, test, build, scan, push, deploy, in
that order. The scan is Trivy at one pinned version in all three, on every image the pipeline
builds, failing (exit code 1) on CRITICAL findings unless .trivyignore lists them; every entry
there has a reason and an expiry date. The offline checks of scripts/validate_deploy.sh that
could pass silently are tried on broken files here: GitLab's CI schema (check-jsonschema) and the
Jenkinsfile's lint (npm-groovy-lint) must reject them.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.test_consistency import ROOT, tool

JENKINSFILE = ROOT / "Jenkinsfile"
GITHUB = ROOT / ".github" / "workflows" / "ci.yml"
GITLAB = ROOT / ".gitlab-ci.yml"
TRIVYIGNORE = ROOT / ".trivyignore"
STAGES = ["lint", "test", "build", "scan", "push", "deploy"]
IMAGES = {"ecommerce-platform": "Dockerfile", "ecommerce-kafka": "docker/kafka/Dockerfile",
          "ecommerce-flink": "docker/flink/Dockerfile"}
ID = r"(CVE-\d{4}-\d{4,}|GHSA(-[23456789cfghjmpqrvwx]{4}){3}|AVD-[A-Z]+-\d+)"


def gitlab() -> dict[str, Any]:
    return yaml.safe_load(GITLAB.read_text())


def github() -> dict[str, Any]:
    return yaml.safe_load(GITHUB.read_text())


def jenkins_stages() -> list[str]:
    return re.findall(r"^\s*stage\('([^']+)'\)", JENKINSFILE.read_text(), re.MULTILINE)


def github_sequence() -> list[str]:
    """The workflow's stages: its jobs in `needs` order, the images job by its build/scan/push steps."""
    jobs = github()["jobs"]
    # `needs:` is one job's name or a list of them
    needs = {name: set([job["needs"]] if isinstance(job.get("needs"), str) else job.get("needs", []))
             for name, job in jobs.items()}
    order: list[str] = []
    while len(order) < len(jobs):
        ready = [n for n in jobs if n not in order and needs[n] <= set(order)]
        assert len(ready) == 1, f"the workflow's jobs are not one chain: {ready}"
        order += ready
    sequence = []
    for name in order:
        steps = [s.get("name", "").split()[0] for s in jobs[name]["steps"] if s.get("name")]
        sequence += [s for s in steps if s in ("build", "scan", "push")] if name == "images" else [name]
    return sequence


def test_the_three_pipelines_run_the_same_stages() -> None:
    assert [s.split()[0].lower() for s in jenkins_stages()] == STAGES
    assert github_sequence() == STAGES
    assert gitlab()["stages"] == STAGES


def test_gitlab_jobs_use_declared_stages_and_templates() -> None:
    config = gitlab()
    jobs = {name: job for name, job in config.items() if isinstance(job, dict) and "stage" in job}
    assert sorted(job["stage"] for job in jobs.values()) == sorted(STAGES), "one job per stage"
    for name, job in jobs.items():
        for template in job.get("extends", []):
            assert template.startswith(".") and template in config, f"{name} extends undefined {template}"
        if job["stage"] in ("build", "scan", "push", "deploy"):
            assert ".main-only" in job["extends"], f"{name} must run on main only"
    matrix = config[".images"]["parallel"]["matrix"]
    assert {m["IMAGE"]: m["DOCKERFILE"] for m in matrix} == IMAGES


def trivy_version() -> str:
    version = gitlab()["variables"]["TRIVY_VERSION"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    return version


def test_gitlab_scans_with_trivy_before_pushing() -> None:
    config = gitlab()
    scan = config["scan"]
    assert scan["image"]["name"] == "aquasec/trivy:$TRIVY_VERSION"
    assert scan_flags(" ".join(scan["script"]))
    assert "$CI_REGISTRY_IMAGE/$IMAGE:$IMAGE_TAG" in " ".join(scan["script"])
    assert config["variables"]["IMAGE_TAG"] == "$CI_COMMIT_SHA"
    assert '"$ECR_REGISTRY/$IMAGE:$IMAGE_TAG"' in " ".join(config["push"]["script"])


def scan_flags(command: str) -> bool:
    return all(flag in command for flag in ("--exit-code 1", "--severity CRITICAL", "--ignorefile"))


def test_github_scans_every_image_with_trivy_before_pushing() -> None:
    job = github()["jobs"]["images"]
    assert {m["name"]: m["file"] for m in job["strategy"]["matrix"]["include"]} == IMAGES
    build, scan, push = (next(s for s in job["steps"] if s.get("name", "").startswith(word))
                         for word in ("build", "scan", "push"))
    assert build["with"]["load"] is True and "push" not in build["with"], "pushed before the scan"
    action, _, commit = scan["uses"].partition("@")
    assert action == "aquasecurity/trivy-action" and re.fullmatch(r"[0-9a-f]{40}", commit), "pin it by commit"
    inputs = scan["with"]
    assert inputs["version"] == f"v{trivy_version()}"
    assert inputs["severity"] == "CRITICAL" and inputs["exit-code"] == "1"
    assert inputs["trivyignores"] == ".trivyignore"
    assert inputs["image-ref"] == build["with"]["tags"]
    assert push["run"] == f'docker push "{build["with"]["tags"]}"'


def test_jenkins_scans_every_image_with_trivy_before_pushing() -> None:
    text = JENKINSFILE.read_text()
    assert f"TRIVY_VERSION = '{trivy_version()}'" in text
    stages = dict(re.findall(r"stage\('(\w+) images'\) \{(.*?)\n        \}\n", text, re.DOTALL))
    assert set(stages) == {"Build", "Scan", "Push"}
    for image in IMAGES:
        assert image in stages["Build"] and image in stages["Push"]
    assert "for image in " + " ".join(IMAGES) + "; do" in stages["Scan"]
    assert '"aquasec/trivy:$TRIVY_VERSION" image' in stages["Scan"] and scan_flags(stages["Scan"])
    assert '"$ECR_REGISTRY/$image:$IMAGE_TAG"' in stages["Scan"]


def trivyignore_problems(text: str) -> list[str]:
    """Entries of a .trivyignore without a reason (a comment right above) or an expiry date."""
    problems, reason = [], False
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("#"):
            reason = reason or len(stripped.lstrip("# ")) > 0
        elif not stripped:
            reason = False
        else:
            if not re.fullmatch(ID + r" exp:\d{4}-\d{2}-\d{2}", stripped):
                problems.append(f"line {number}: {stripped!r} is not '<ID> exp:YYYY-MM-DD'")
            if not reason:
                problems.append(f"line {number}: {stripped!r} has no reason in a comment above it")
    return problems


def test_every_trivyignore_entry_has_a_reason_and_an_expiry() -> None:
    assert trivyignore_problems(TRIVYIGNORE.read_text()) == []


@pytest.mark.parametrize(("text", "expected"), [
    ("CVE-2024-0001 exp:2027-01-01\n", "no reason"),
    ("# fixed upstream in 1.2, waiting for the base image\n\nCVE-2024-0001 exp:2027-01-01\n", "no reason"),
    ("# not reachable: the tool is removed from the image\nCVE-2024-0001\n", "is not '<ID> exp:"),
    ("# reason\nCVE-2024-0001 exp:2027-01-01\n", None),
], ids=["no-reason", "reason-not-adjacent", "no-expiry", "good"])
def test_the_trivyignore_rule_can_fail(text: str, expected: str | None) -> None:
    problems = trivyignore_problems(text)
    assert any(expected in p for p in problems) if expected else problems == []


def test_gitlab_schema_rejects_a_misspelt_keyword(tmp_path: Path) -> None:
    broken = tmp_path / ".gitlab-ci.yml"
    broken.write_text(GITLAB.read_text().replace("  timeout: 90m", "  timout: 90m"))
    command = [tool("check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci", broken]
    result = subprocess.run(list(map(str, command)), capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout
    assert "'timout' was unexpected" in result.stdout + result.stderr


def test_the_jenkinsfile_lint_rejects_broken_groovy(tmp_path: Path) -> None:
    broken = tmp_path / "Jenkinsfile"
    text = JENKINSFILE.read_text()
    broken.write_text(text[:text.index("stage('Deploy")])  # unclosed braces
    result = subprocess.run([str(tool("npm-groovy-lint")), "--noserver", "--failon", "warning", "--config",
                             "recommended-jenkinsfile", "--output", "txt", str(broken)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "NglParseError" in result.stdout + result.stderr
