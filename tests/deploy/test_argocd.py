"""The ArgoCD manifests (k8s/argocd/) fit the platform, and their validator can fail.

* scripts/validate_crds.py, which scripts/validate_deploy.sh runs against ArgoCD's vendored CRDs,
  accepts the committed manifests and rejects a misspelt field, a wrong type, a missing required
  field, an unknown kind and a misspelt metadata field;
* each Application uses the project, a source repository and a destination the AppProject allows,
  and a path of this repository that renders (the minikube overlay with the Application's own
  kustomize patches, the chart with the EKS values, whose release file sets the image tags);
* the AppProject's whitelists are exactly the kinds those renderings create.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.test_consistency import CHART, K8S_VERSION, ROOT, run, tool

ARGOCD = ROOT / "k8s" / "argocd"
CRDS = ARGOCD / "crds"
VALIDATOR = ROOT / "scripts" / "validate_crds.py"
#: the Application's value files, which live only on the branch ArgoCD follows (no secret, but
#: per installation); here: the committed example of terraform's output, and a release's tags
EKS_VALUES = "values-eks.yaml"
EKS_RELEASE = "values-eks-release.yaml"
RELEASE_SHA = "0123456789abcdef0123456789abcdef01234567"


def manifest(name: str) -> dict[str, Any]:
    return yaml.safe_load((ARGOCD / name).read_text())


def applications() -> list[dict[str, Any]]:
    return [manifest(p.name) for p in sorted(ARGOCD.glob("application-*.yaml"))]


def validate(*paths: Path) -> subprocess.CompletedProcess[str]:
    command = [tool("validators-python"), VALIDATOR, "--crds", CRDS, *paths]
    return subprocess.run(list(map(str, command)), cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_the_committed_manifests_are_valid() -> None:
    result = validate(*sorted(ARGOCD.glob("*.yaml")))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(": valid") == 3, result.stdout


def broken(tmp_path: Path, edit: Any) -> Path:
    doc = manifest("application-eks.yaml")
    edit(doc)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda d: d["spec"]["source"].update(repoUrl=d["spec"]["source"].pop("repoURL")),
     "'repoUrl' was unexpected"),
    (lambda d: d["spec"]["source"]["helm"].update(valueFile=["values-eks.yaml"]),
     "'valueFile' was unexpected"),
    (lambda d: d["spec"]["syncPolicy"]["automated"].update(selfHeal="yes"), "'yes' is not of type 'boolean'"),
    (lambda d: d["spec"]["syncPolicy"]["retry"].update(limit="five"), "'five' is not of type 'integer'"),
    (lambda d: d["spec"].pop("project"), "'project' is a required property"),
    (lambda d: d.update(kind="Aplication"), "no CRD here defines"),
    (lambda d: d["metadata"].update(namespce="argocd"), "'namespce' was unexpected"),
], ids=["misspelt-field", "misspelt-helm-field", "wrong-type", "wrong-integer", "missing-required",
        "unknown-kind", "misspelt-metadata"])
def test_the_validator_rejects_a_broken_manifest(tmp_path: Path, edit: Any, expected: str) -> None:
    result = validate(broken(tmp_path, edit))
    assert result.returncode == 1, result.stdout + result.stderr
    assert expected in result.stderr


def test_the_validator_reports_bad_yaml_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("spec: [\n")
    result = validate(path)
    assert result.returncode == 2
    assert "not valid YAML" in result.stderr and "Traceback" not in result.stderr


def test_applications_stay_inside_the_project() -> None:
    project = manifest("project.yaml")
    assert project["kind"] == "AppProject"
    spec = project["spec"]
    assert "*" not in spec["sourceRepos"] and len(spec["sourceRepos"]) == 1
    assert all("*" not in str(d.values()) for d in spec["destinations"])
    apps = applications()
    assert {a["metadata"]["name"] for a in apps} == {"ecommerce-minikube", "ecommerce-eks"}
    for app in apps:
        assert app["metadata"]["namespace"] == project["metadata"]["namespace"] == "argocd"
        assert app["spec"]["project"] == project["metadata"]["name"]
        assert app["spec"]["source"]["repoURL"] in spec["sourceRepos"]
        assert app["spec"]["destination"] in spec["destinations"]
        assert (ROOT / app["spec"]["source"]["path"]).is_dir()


def application(name: str) -> dict[str, Any]:
    return next(a for a in applications() if a["metadata"]["name"] == name)


def minikube_rendering(tmp_path: Path) -> list[dict[str, Any]]:
    """kustomize build of the overlay with the Application's kustomize patches, as ArgoCD builds it."""
    source = application("ecommerce-minikube")["spec"]["source"]
    assert source["path"] == "k8s/overlays/minikube"
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        # kustomize refuses an absolute path here
        "resources": [os.path.relpath(ROOT / source["path"], tmp_path)],
        "patches": source["kustomize"]["patches"]}))
    return [d for d in yaml.safe_load_all(run(tool("kustomize"), "build", tmp_path)) if d]


def eks_rendering(tmp_path: Path) -> list[dict[str, Any]]:
    """helm template of the chart with the Application's value files, as ArgoCD renders it."""
    source = application("ecommerce-eks")["spec"]["source"]
    assert ROOT / source["path"] == CHART
    assert source["helm"]["releaseName"] == "ecommerce"
    assert source["helm"]["valueFiles"] == [EKS_VALUES, EKS_RELEASE]
    release = tmp_path / EKS_RELEASE
    tags = {"image": {"tag": RELEASE_SHA}, "bundledImages": {"kafkaTag": RELEASE_SHA}}
    release.write_text(yaml.safe_dump(tags))
    rendered = run(tool("helm"), "template", "ecommerce", CHART, "--namespace", "ecommerce",
                   "--kube-version", K8S_VERSION, "-f", CHART / "values-eks.example.yaml", "-f", release)
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    images = {c["image"] for d in docs if d["kind"] in ("Deployment", "StatefulSet", "Job")
              for c in d["spec"]["template"]["spec"]["containers"]}
    ecr = {i for i in images if ".dkr.ecr." in i}
    assert ecr and all(i.endswith(":" + RELEASE_SHA) for i in ecr), images
    return docs


def test_the_minikube_jobs_are_ordered_post_sync_hooks(tmp_path: Path) -> None:
    jobs = {d["metadata"]["name"]: d["metadata"].get("annotations", {})
            for d in minikube_rendering(tmp_path) if d["kind"] == "Job"}
    assert set(jobs) == {"migrate", "seed"}
    for job in jobs.values():
        assert job["argocd.argoproj.io/hook"] == "PostSync"
        assert job["argocd.argoproj.io/hook-delete-policy"] == "BeforeHookCreation"
    wave = "argocd.argoproj.io/sync-wave"
    assert int(jobs["migrate"][wave]) < int(jobs["seed"][wave]), "the seed needs the migrated tables"


def test_the_project_whitelists_exactly_the_rendered_kinds(tmp_path: Path) -> None:
    spec = manifest("project.yaml")["spec"]
    namespaced = {(w["group"], w["kind"]) for w in spec["namespaceResourceWhitelist"]}
    cluster = {(w["group"], w["kind"]) for w in spec["clusterResourceWhitelist"]}
    seen = set()
    renderings = (("minikube overlay", minikube_rendering(tmp_path)),
                  ("chart, EKS values", eks_rendering(tmp_path)))
    for where, docs in renderings:
        for doc in docs:
            group = doc["apiVersion"].rpartition("/")[0]
            allowed = cluster if doc["kind"] == "Namespace" else namespaced
            seen.add((group, doc["kind"]))
            name = f"{doc['kind']} {doc['metadata']['name']}"
            assert (group, doc["kind"]) in allowed, f"{where}: {name} is not whitelisted"
            assert doc["metadata"].get("namespace", "ecommerce") == "ecommerce" or doc["kind"] == "Namespace"
    assert namespaced | cluster == seen, "whitelisted but never rendered: nothing needs these kinds"
