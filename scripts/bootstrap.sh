#!/usr/bin/env bash
# Create .venv with Python 3.11 and the pinned requirements. Idempotent and
# quick when nothing changed (a stamp records the requirements installed).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
STAMP="$VENV/.requirements.sha256"
# pip keeps downloaded wheels here, so a second install needs no network
export PIP_CACHE_DIR="${PIP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ecommerce-platform/pip}"

log() { echo "[bootstrap] $*" >&2; }

find_python() {
    local candidate
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

if ! PYTHON="$(find_python)"; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        log "installing Python 3.11 from Debian's packages"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3.11 python3.11-venv >&2
        PYTHON="$(find_python)"
    else
        cat >&2 <<'MSG'
[bootstrap] Python 3.11 is required (nameko 2.14 does not support 3.12).
            Install it, e.g. `sudo apt-get install python3.11 python3.11-venv`
            on Debian bookworm, or with pyenv, then run this again.
MSG
        exit 3
    fi
fi

if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV with $PYTHON"
    if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
        if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3.11-venv >&2
            rm -rf "$VENV" && "$PYTHON" -m venv "$VENV"
        else
            log "cannot create a virtualenv: install python3.11-venv"; exit 3
        fi
    fi
fi

want="$(cat "$ROOT/requirements.txt" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
    log "installing pinned requirements (wheel cache: $PIP_CACHE_DIR)"
    "$VENV/bin/pip" install -q --upgrade pip >&2
    "$VENV/bin/pip" install -q -r "$ROOT/requirements.txt" >&2
    "$VENV/bin/pip" install -q --no-deps -e "$ROOT" >&2
    echo "$want" > "$STAMP"
fi
