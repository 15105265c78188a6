#!/usr/bin/env bash
# Build the project's images (make images; tests/containers uses it too):
#
#   scripts/images.sh [build] [platform|kafka|flink ...]   build them (default: all three)
#   scripts/images.sh engine     install and start the Docker engine (and Compose) when missing
#   scripts/images.sh names      print "IMAGE DOCKERFILE" per image, no engine needed
#   scripts/images.sh compose    print the Compose command that works here ("docker compose" or
#                                "docker-compose")
#
# The engine: Debian's docker.io, with dockerd started by this script (as scripts/infra.sh starts
# the other servers) when nothing answers on /var/run/docker.sock. Compose: Debian bookworm ships
# only docker-compose 1.29 (the `docker compose` plugin is not packaged there), so this installs
# that one when neither is present.
#
# Bases: each Dockerfile takes its base images as build arguments, defaulting to the pinned
# official images. When one of those can't be pulled (Docker Hub is unreachable on some
# machines), the build uses stand-ins made here from Debian's packages instead:
#   ecommerce-standin/python:3.11-bookworm   debootstrap bookworm + python3.11
#   ecommerce-standin/jre:17-bookworm        debootstrap bookworm + OpenJDK 17, copied
#                                            self-contained to /opt/java/openjdk
#   ecommerce-standin/kafka:4.1.1            that JRE + the jars scripts/kafka.sh resolves,
#                                            laid out like apache/kafka (docker/kafka/standin/)
# Their root filesystems are cached in ~/.cache/ecommerce-platform/images/, so a new engine
# imports them again in seconds.
#
# pip inside a build trusts the machine's CA bundle (what pip's configuration names as `cert`, or
# PIP_CERT): it is copied to docker/pip-ca.pem for the build's first stage only and removed
# afterwards; no final image contains it. Classic builder (DOCKER_BUILDKIT=0), --network host.
# A failed build leaves no tag behind: each image is built under a temporary tag and renamed
# only once the build succeeded.
#
# Environment: IMAGE_TAG (dev), IMAGES_PULL_TIMEOUT (seconds per `docker pull`, default 60).
# Exit codes: 0 ok, 1 build failed, 2 usage, 3 missing prerequisite (root, engine).
set -euo pipefail

export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TAG="${IMAGE_TAG:-dev}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/ecommerce-platform"
IMAGES_CACHE="$CACHE/images"
PULL_TIMEOUT="${IMAGES_PULL_TIMEOUT:-60}"
SUITE=bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DOCKERD_LOG=/var/log/ecommerce-dockerd.log
KAFKA_VERSION=4.1.1
STANDIN_PYTHON=ecommerce-standin/python:3.11-bookworm
STANDIN_JRE=ecommerce-standin/jre:17-bookworm
STANDIN_KAFKA="ecommerce-standin/kafka:$KAFKA_VERSION"
CA_COPY="$ROOT/docker/pip-ca.pem"

log() { echo "[images] $*" >&2; }
die() { echo "[images] ERROR: $*" >&2; exit 1; }
missing() { echo "[images] $*" >&2; exit 3; }
is_root() { [ "$(id -u)" -eq 0 ]; }

usage() {
    echo "usage: scripts/images.sh [build] [platform|kafka|flink ...] | engine | names | compose" >&2
    exit 2
}

# ---------------------------------------------------------------- the images: name, Dockerfile

# The one list of what this builds; compose, k8s and helm name the same (tests/deploy checks it).
names() {
    cat <<EOF
ecommerce-platform:$TAG Dockerfile
ecommerce-kafka:$TAG docker/kafka/Dockerfile
ecommerce-flink:$TAG docker/flink/Dockerfile
EOF
}

# ---------------------------------------------------------------- the engine

APT_UPDATED=0
apt_install() {
    if ! is_root || ! command -v apt-get >/dev/null 2>&1; then
        missing "Missing: $1. Install it (Debian: sudo apt-get install $2) or run this as root on a" \
            "Debian machine, where it installs it itself."
    fi
    if [ "$APT_UPDATED" = 0 ]; then
        log "apt-get update"
        apt-get update -qq >&2 || die "apt-get update failed"
        APT_UPDATED=1
    fi
    log "installing $2 (apt-get)"
    # shellcheck disable=SC2086  # $2 is a list of package names
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $2 >&2 \
        || die "apt-get install $2 failed"
}

engine_up() { timeout 10 docker info >/dev/null 2>&1; }

compose_command() {
    if docker compose version >/dev/null 2>&1; then
        echo "docker compose"
    elif command -v docker-compose >/dev/null 2>&1; then
        echo "docker-compose"
    else
        return 1
    fi
}

engine() {
    if ! command -v docker >/dev/null 2>&1 || ! command -v dockerd >/dev/null 2>&1; then
        if ! engine_up; then apt_install "the Docker engine (dockerd and the docker client)" docker.io; fi
    fi
    if ! engine_up; then
        if [ -S /var/run/docker.sock ] && ! is_root; then
            missing "The Docker engine runs, but this user may not use it (/var/run/docker.sock)." \
                "Run as root, or add the user to the docker group: sudo usermod -aG docker $(id -un)."
        fi
        is_root || missing "The Docker engine is not running, and starting dockerd needs root." \
            "Run: sudo bash scripts/images.sh engine"
        log "starting dockerd (log $DOCKERD_LOG)"
        # setsid: the daemon outlives this script; it serves every checkout on the machine
        setsid dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
        local start=$SECONDS
        until engine_up; do
            if [ $((SECONDS - start)) -ge 60 ]; then
                tail -n 20 "$DOCKERD_LOG" >&2 || true
                missing "dockerd did not start within 60 s (its last lines are above)." \
                    "Common causes: no overlay2/cgroup support in this kernel or container, or" \
                    "another dockerd holding /var/run/docker.pid. Fix that and run scripts/images.sh engine again."
            fi
            sleep 1
        done
        log "dockerd ready after $((SECONDS - start)) s"
    fi
    if ! compose_command >/dev/null; then
        # Debian bookworm packages Compose 1.29 only (docker-compose); no compose plugin
        apt_install "Docker Compose" docker-compose
    fi
}

# ---------------------------------------------------------------- bases and stand-ins

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# pullable IMAGE: present, or pulled now
pullable() {
    have_image "$1" && return 0
    log "pulling $1"
    timeout "$PULL_TIMEOUT" docker pull -q "$1" >/dev/null 2>&1
}

# rootfs NAME PACKAGES [FIXUP]: ROOTFS, a cached tarball of a debootstrapped bookworm with PACKAGES
rootfs() {
    local name=$1 packages=$2 fixup=${3:-}
    ROOTFS="$IMAGES_CACHE/$name.tar"
    [ -s "$ROOTFS" ] && return 0
    is_root || missing "Building the stand-in base $name needs root (debootstrap). Run as root."
    command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap debootstrap
    local dir
    dir="$(mktemp -d "${TMPDIR:-/tmp}/standin-$name.XXXXXX")"
    log "debootstrap $SUITE with $packages (about a minute; cached as $ROOTFS)"
    mkdir -p "$IMAGES_CACHE/debs"
    # the .debs stay in the cache: a second stand-in, or a retry, downloads nothing again
    if ! debootstrap --variant=minbase --cache-dir="$IMAGES_CACHE/debs" --include="$packages" \
            "$SUITE" "$dir" "$MIRROR" >"$dir.log" 2>&1; then
        grep -B3 -A3 -i 'error' "$dir/debootstrap/debootstrap.log" 2>/dev/null | tail -n 20 >&2 || tail -n 20 "$dir.log" >&2
        rm -rf "$dir" "$dir.log"
        die "debootstrap of $name failed (log above)"
    fi
    if [ -n "$fixup" ]; then "$fixup" "$dir"; fi
    # no package lists or downloaded .debs in the image
    rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/archives/*.deb
    mkdir -p "$IMAGES_CACHE"
    tar -C "$dir" -cf "$ROOTFS.tmp" . && mv -f "$ROOTFS.tmp" "$ROOTFS"
    rm -rf "$dir" "$dir.log"
}

# Debian's JRE keeps its configuration as links into /etc: copied with the links resolved, the
# tree is self-contained, as the Dockerfiles expect Temurin's /opt/java/openjdk to be.
jre_fixup() {
    mkdir -p "$1/opt/java"
    cp -rL "$1/usr/lib/jvm/java-17-openjdk-amd64" "$1/opt/java/openjdk"
}

# import_standin IMAGE NAME PACKAGES [FIXUP]: the image from the cached root filesystem
import_standin() {
    local image=$1
    have_image "$image" && return 0
    shift
    rootfs "$@"
    log "importing $image from $ROOTFS"
    docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["/bin/bash"]' "$ROOTFS" "$image" >/dev/null || die "docker import of $image failed"
}

standin_python() {
    # python3-distutils: python3.11-venv's dependency, named through a virtual package debootstrap
    # doesn't resolve; libstdc++6: Java's libjvm needs it where the Flink image copies a JRE here
    import_standin "$STANDIN_PYTHON" "python-3.11-$SUITE" \
        python3.11,python3.11-venv,python3-distutils,ca-certificates,libstdc++6
}

standin_jre() {
    import_standin "$STANDIN_JRE" "jre-17-$SUITE" openjdk-17-jre-headless,ca-certificates jre_fixup
}

standin_kafka() {
    have_image "$STANDIN_KAFKA" && return 0
    standin_jre
    # the jars a local run uses (scripts/kafka.sh fetch: Maven Central, cached), and the tools jar
    # for the health check's kafka-broker-api-versions.sh
    bash "$ROOT/scripts/kafka.sh" fetch
    local context tools="$CACHE/kafka/kafka-tools-$KAFKA_VERSION.jar"
    if [ ! -s "$tools" ]; then
        log "resolving org.apache.kafka:kafka-tools:$KAFKA_VERSION from Maven Central"
        mvn -q -B -Dstyle.color=never -Dmaven.repo.local="$CACHE/m2" dependency:copy \
            -Dartifact="org.apache.kafka:kafka-tools:$KAFKA_VERSION" -DoutputDirectory="$CACHE/kafka" >&2 \
            || die "mvn could not resolve org.apache.kafka:kafka-tools:$KAFKA_VERSION"
    fi
    mkdir -p "$IMAGES_CACHE"
    context="$(mktemp -d "$IMAGES_CACHE/kafka-context.XXXXXX")"
    cp -a "$CACHE/kafka/$KAFKA_VERSION/lib" "$context/libs"
    cp -a "$tools" "$context/libs/"
    cp -a "$ROOT/docker/kafka/standin/." "$context/"
    build_image "$STANDIN_KAFKA" "$context" "$context/Dockerfile" --build-arg "JRE_IMAGE=$STANDIN_JRE"
    rm -rf "$context"
}

# ---------------------------------------------------------------- building

# The machine's CA bundle for pip in the build stage (see the header), if pip names one.
provide_ca() {
    local cert="${PIP_CERT:-}"
    if [ -z "$cert" ] && command -v pip3 >/dev/null 2>&1; then
        cert="$(pip3 config get global.cert 2>/dev/null || true)"
    fi
    if [ -n "$cert" ] && [ -r "$cert" ]; then
        cp "$cert" "$CA_COPY"
    fi
}
cleanup() { rm -f "$CA_COPY"; }
trap cleanup EXIT

# build_image IMAGE CONTEXT DOCKERFILE [ARGS...]: build under a temporary tag, then tag IMAGE
build_image() {
    local image=$1 context=$2 dockerfile=$3 scratch buildlog
    shift 3
    scratch="${image%%:*}:building-$$"
    buildlog="$ROOT/var/images/${image//[:\/]/_}.log"
    mkdir -p "$ROOT/var/images"
    local start=$SECONDS
    log "building $image ($dockerfile; log ${buildlog#"$ROOT"/})"
    if ! DOCKER_BUILDKIT=0 docker build --network host --rm --force-rm -f "$dockerfile" \
            -t "$scratch" "$@" "$context" >"$buildlog" 2>&1; then
        tail -n 30 "$buildlog" >&2
        docker image rm "$scratch" >/dev/null 2>&1 || true
        die "building $image failed (the build's last lines above); no image was tagged $image"
    fi
    docker tag "$scratch" "$image" && docker image rm "$scratch" >/dev/null
    local size
    size="$(docker image inspect -f '{{.Size}}' "$image")"
    log "built $image in $((SECONDS - start)) s, $((size / 1000000)) MB"
}

# bases KIND: the --build-arg list for an image family, official or stand-in
python_bases() {
    if pullable python:3.11.13-bookworm && pullable python:3.11.13-slim-bookworm; then
        return 0
    fi
    log "the official python images can't be pulled: using $STANDIN_PYTHON"
    standin_python
    BUILD_ARGS+=(--build-arg "PYTHON_BUILD_IMAGE=$STANDIN_PYTHON" --build-arg "PYTHON_IMAGE=$STANDIN_PYTHON")
}

build_platform() {
    BUILD_ARGS=(--build-arg "GIT_SHA=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)")
    python_bases
    build_image "ecommerce-platform:$TAG" "$ROOT" "$ROOT/Dockerfile" "${BUILD_ARGS[@]}"
}

build_kafka() {
    BUILD_ARGS=()
    if ! pullable "apache/kafka:$KAFKA_VERSION"; then
        log "apache/kafka:$KAFKA_VERSION can't be pulled: using $STANDIN_KAFKA"
        standin_kafka
        BUILD_ARGS+=(--build-arg "KAFKA_IMAGE=$STANDIN_KAFKA")
    fi
    build_image "ecommerce-kafka:$TAG" "$ROOT" "$ROOT/docker/kafka/Dockerfile" "${BUILD_ARGS[@]}"
}

build_flink() {
    BUILD_ARGS=()
    python_bases
    if ! pullable eclipse-temurin:17.0.13_11-jre-jammy; then
        log "eclipse-temurin can't be pulled: using $STANDIN_JRE"
        standin_jre
        BUILD_ARGS+=(--build-arg "JRE_IMAGE=$STANDIN_JRE")
    fi
    build_image "ecommerce-flink:$TAG" "$ROOT" "$ROOT/docker/flink/Dockerfile" "${BUILD_ARGS[@]}"
}

build() {
    local targets=("$@") t
    [ ${#targets[@]} -gt 0 ] || targets=(platform kafka flink)
    for t in "${targets[@]}"; do
        case "$t" in platform|kafka|flink) ;; *) echo "[images] unknown image '$t'" >&2; usage ;; esac
    done
    engine
    provide_ca
    for t in "${targets[@]}"; do "build_$t"; done
}

case "${1:-build}" in
    names) names ;;
    compose) compose_command || missing "No Docker Compose found; run: bash scripts/images.sh engine" ;;
    engine) engine ;;
    build) shift $(($# > 0 ? 1 : 0)); build "$@" ;;
    platform|kafka|flink) build "$@" ;;
    -h|--help|help) usage ;;
    *) echo "[images] unknown action '$1'" >&2; usage ;;
esac
