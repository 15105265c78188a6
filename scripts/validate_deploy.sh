#!/usr/bin/env bash
# Offline validation of every deployment file (make validate-deploy; scripts/test.sh calls it).
# Runs every check, then fails if any found an error. The tools are pinned and cached by
# scripts/deploy_tools.sh (installed on first use, reused afterwards).
#
#   Kubernetes  kustomize build k8s/base and k8s/overlays/minikube, then kubernetes-validate --strict
#               against the schemas of Kubernetes $K8S_VERSION
#   Helm        helm lint --strict, then helm template with the default values, values-minikube.yaml
#               and values-eks.example.yaml (terraform's output), through the same validator
#   ArgoCD      k8s/argocd/*.yaml against ArgoCD's own CRDs (vendored in k8s/argocd/crds), strict
#               (scripts/validate_crds.py)
#   Dockerfiles hadolint (Dockerfile, docker/kafka/Dockerfile, docker/flink/Dockerfile)
#   Compose     docker-compose.yml against the vendored compose-spec JSON schema (docker/compose-spec.json)
#   CI          actionlint .github/workflows/*.yml (with shellcheck for the run: scripts);
#               .gitlab-ci.yml against GitLab's CI schema (check-jsonschema's vendor.gitlab-ci);
#               the Jenkinsfile with npm-groovy-lint (Groovy parse and CodeNarc's Jenkinsfile rules)
#   Scripts     shellcheck of the deployment's shell scripts (docker/, deploy_tools.sh, this one)
#   Terraform   terraform fmt -check, tflint --recursive, checkov (every failed check fixed or
#               skipped inline with its reason), over the AWS tree and terraform/gcp. tflint's
#               built-in terraform ruleset only: the AWS and Google rulesets are plugins, and the
#               Go module proxy refuses github.com/terraform-linters/tflint-ruleset-google and
#               -aws (403 "not available"), so they cannot be built here either
#
# The consistency of compose, kustomize and Helm with the local run (names, ports, environment)
# is tests/deploy/test_consistency.py, in the project's pytest run.
# Environment: K8S_VERSION (1.31.0), ECOMMERCE_TOOLS_DIR (the tools cache).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
K8S_VERSION="${K8S_VERSION:-1.31.0}"

bash "$ROOT/scripts/deploy_tools.sh"
BIN="$(bash "$ROOT/scripts/deploy_tools.sh" --print)/bin"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

FAILED=0
step() {
    local name=$1 start=$SECONDS
    shift
    echo "[validate-deploy] $name" >&2
    if "$@"; then
        echo "[validate-deploy] ok: $name ($((SECONDS - start)) s)" >&2
    else
        echo "[validate-deploy] FAILED: $name" >&2
        FAILED=1
    fi
}

k8s_validate() {
    "$BIN/kubernetes-validate" --quiet --strict -k "$K8S_VERSION" "$@"
}

kustomize_overlays() {
    local dir out
    for dir in k8s/base k8s/overlays/minikube; do
        out="$WORK/kustomize-$(basename "$dir").yaml"
        "$BIN/kustomize" build "$dir" >"$out" || return 1
        k8s_validate "$out" || return 1
    done
}

helm_chart() {
    local chart=helm/ecommerce
    "$BIN/helm" lint --strict --kube-version "$K8S_VERSION" "$chart" >/dev/null || return 1
    "$BIN/helm" lint --strict --kube-version "$K8S_VERSION" "$chart" -f "$chart/values-minikube.yaml" >/dev/null \
        || return 1
    "$BIN/helm" template ecommerce "$chart" --namespace ecommerce --kube-version "$K8S_VERSION" \
        >"$WORK/helm-default.yaml" || return 1
    "$BIN/helm" template ecommerce "$chart" --namespace ecommerce --kube-version "$K8S_VERSION" \
        -f "$chart/values-minikube.yaml" >"$WORK/helm-minikube.yaml" || return 1
    # the managed-endpoints path: what terraform's helm_values output looks like
    "$BIN/helm" lint --strict --kube-version "$K8S_VERSION" "$chart" -f "$chart/values-eks.example.yaml" >/dev/null \
        || return 1
    "$BIN/helm" template ecommerce "$chart" --namespace ecommerce --kube-version "$K8S_VERSION" \
        -f "$chart/values-eks.example.yaml" >"$WORK/helm-eks.yaml" || return 1
    k8s_validate "$WORK/helm-default.yaml" "$WORK/helm-minikube.yaml" "$WORK/helm-eks.yaml"
}

argocd() {
    "$BIN/validators-python" scripts/validate_crds.py --crds k8s/argocd/crds k8s/argocd/*.yaml >/dev/null
}

dockerfiles() {
    "$BIN/hadolint" --failure-threshold warning Dockerfile docker/kafka/Dockerfile docker/flink/Dockerfile
}

compose() {
    "$BIN/check-jsonschema" --schemafile docker/compose-spec.json docker-compose.yml
}

workflows() {
    # with shellcheck, actionlint also checks every `run:` script
    "$BIN/actionlint" -no-color -shellcheck "$BIN/shellcheck" .github/workflows/*.yml
}

gitlab_ci() {
    "$BIN/check-jsonschema" --builtin-schema vendor.gitlab-ci .gitlab-ci.yml
}

jenkinsfile() {
    # without a Java, npm-groovy-lint would try to download one
    command -v java >/dev/null 2>&1 || {
        echo "Java 17 is missing (Debian: apt-get install openjdk-17-jre-headless)" >&2
        return 1
    }
    "$BIN/npm-groovy-lint" --noserver --failon warning --config recommended-jenkinsfile --output txt Jenkinsfile
}

shell_scripts() {
    "$BIN/shellcheck" scripts/deploy_tools.sh scripts/validate_deploy.sh docker/postgres/init-databases.sh \
        docker/flink/entrypoint.sh
}

terraform_checks() {
    # no ~/.terraformrc, no plugin downloads: fmt and tflint read the files only
    : >"$WORK/terraformrc"
    TF_CLI_CONFIG_FILE="$WORK/terraformrc" "$BIN/terraform" fmt -check -recursive -diff terraform || return 1
    (cd terraform && TFLINT_PLUGIN_DIR="$WORK/tflint-plugins" \
        "$BIN/tflint" --recursive --config "$ROOT/terraform/.tflint.hcl" --format compact) || return 1
    "$BIN/checkov" --directory terraform --framework terraform --skip-download --quiet --compact \
        --output cli
}

step "kubernetes manifests (kustomize build + kubernetes-validate $K8S_VERSION)" kustomize_overlays
step "helm chart (lint, template default, minikube and EKS example values, kubernetes-validate $K8S_VERSION)" helm_chart
step "argocd manifests (ArgoCD v3.5.1 CRDs, strict)" argocd
step "dockerfiles (hadolint)" dockerfiles
step "docker-compose.yml (compose-spec schema)" compose
step "github actions (actionlint with shellcheck)" workflows
step "gitlab ci (GitLab's CI schema)" gitlab_ci
step "jenkinsfile (npm-groovy-lint, recommended-jenkinsfile rules)" jenkinsfile
step "deployment shell scripts (shellcheck)" shell_scripts
step "terraform (fmt, tflint, checkov)" terraform_checks

if [ "$FAILED" -ne 0 ]; then
    echo "[validate-deploy] some checks failed (above)" >&2
    exit 1
fi
echo "[validate-deploy] all deployment checks passed" >&2
