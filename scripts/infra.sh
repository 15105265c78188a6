#!/usr/bin/env bash
# Manage the local infrastructure servers (RabbitMQ, PostgreSQL, Redis) on a
# Debian machine without Docker or systemd.
#
#   scripts/infra.sh install|start|stop|status [rabbitmq|postgres|redis ...]
#   scripts/infra.sh pg-url DBNAME      # create DB if missing, print SQLAlchemy URL
#   scripts/infra.sh pg-dropdb DBNAME   # drop DB if it exists
#
# With no SERVICE, the action applies to all three.  Progress goes to stderr
# prefixed with "[infra]"; only `status` and `pg-url` write to stdout.
#
# Endpoints once started:
#   rabbitmq  amqp://guest:guest@localhost:5672/, management http://localhost:15672
#             (node name pinned to rabbit@localhost in /etc/rabbitmq/rabbitmq-env.conf,
#             so a plain `rabbitmqctl` works too)
#   postgres  127.0.0.1:5432, role "ecommerce" (CREATEDB), password in
#             ~/.config/ecommerce-platform/postgres_password (generated on first start;
#             machine-wide like the role itself, so every checkout on the machine agrees)
#   redis     127.0.0.1:6379, dir var/redis (log, pid), no snapshots
#
# Exit codes: 0 ok, 1 failure, 2 usage error, 3 missing prerequisite
# (`status` always exits 0; read its output).
# Env: INFRA_TIMEOUT (seconds to wait for a server, default 60); STACK_STARTED_FILE (make test,
# make bench): each server started here is named in it ("started NAME"), each found running too
# ("found NAME"), so that `platform.sh down --started` stops only what the run started.
set -euo pipefail

export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TIMEOUT="${INFRA_TIMEOUT:-60}"
PG_PORT=5432
PG_ROLE=ecommerce
PG_SECRET="${PG_SECRET_FILE:-${XDG_CONFIG_HOME:-$HOME/.config}/ecommerce-platform/postgres_password}"
REDIS_PORT=6379
REDIS_DIR="$ROOT/var/redis"
RABBIT_ENV_CONF=/etc/rabbitmq/rabbitmq-env.conf
RABBIT_NODE_DEFAULT=rabbit@localhost
RABBIT_PLUGINS=(rabbitmq_management rabbitmq_prometheus)
MGMT_URL=http://localhost:15672/api/overview

log() { echo "[infra] $*" >&2; }
die() { echo "[infra] ERROR: $*" >&2; exit 1; }
# note_server started|found NAME: for `platform.sh down --started`, which stops what this run started
note_server() { [ -z "${STACK_STARTED_FILE:-}" ] || echo "$1 $2" >>"$STACK_STARTED_FILE"; }
is_root() { [ "$(id -u)" -eq 0 ]; }

usage() {
    cat >&2 <<'EOF'
usage: scripts/infra.sh install|start|stop|status [rabbitmq|postgres|redis ...]
       scripts/infra.sh pg-url DBNAME
       scripts/infra.sh pg-dropdb DBNAME
EOF
    exit 2
}

# ---------------------------------------------------------------- helpers

# Print the last lines of each readable log file given.
show_logs() {
    local f
    for f in "$@"; do
        [ -r "$f" ] || continue
        echo "[infra] --- last lines of $f ---" >&2
        tail -n 25 "$f" >&2 || true
    done
}

# wait_until SECONDS CMD...: retry CMD once a second until it succeeds.
wait_until() {
    local limit=$1 start=$SECONDS
    shift
    until "$@"; do
        if [ $((SECONDS - start)) -ge "$limit" ]; then
            return 1
        fi
        sleep 1
    done
}

# port_hint PORT: say which process listens on PORT, if any (helps with conflicts).
port_hint() {
    local who
    command -v ss >/dev/null 2>&1 || return 0
    who=$(ss -Hltnp "sport = :$1" 2>/dev/null | sed -n 's/.*users:((\("[^"]*"\).*/\1/p' | sort -u | tr '\n' ' ')
    if [ -n "$who" ]; then log "port $1 is in use by: $who"; fi
}

APT_UPDATED=0
POLICY_CREATED=0
cleanup() {
    if [ "$POLICY_CREATED" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
}
trap cleanup EXIT

# missing_prereq PKG WHAT: install PKG with apt as root, else explain and exit 3.
missing_prereq() {
    local pkg=$1 what=$2
    if is_root && command -v apt-get >/dev/null 2>&1; then
        # Keep the package's init script from starting the server on install:
        # this script starts it itself, with its own settings.
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
            chmod 755 /usr/sbin/policy-rc.d
            POLICY_CREATED=1
        fi
        if [ "$APT_UPDATED" = 0 ]; then
            log "apt-get update"
            apt-get update -qq >&2 || die "apt-get update failed"
            APT_UPDATED=1
        fi
        log "installing $pkg (apt-get)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" >&2 \
            || die "apt-get install $pkg failed"
        return 0
    fi
    cat >&2 <<EOF
[infra] Missing prerequisite: please install $what.
[infra] This script installs it itself only when run as root on a machine with
[infra] apt-get (e.g. 'sudo scripts/infra.sh install'); otherwise install it by hand
[infra] and run the script again.
EOF
    exit 3
}

# ---------------------------------------------------------------- rabbitmq

rabbit_node() {
    if [ -n "${RABBITMQ_NODENAME:-}" ]; then echo "$RABBITMQ_NODENAME"; return; fi
    local n=""
    if [ -r "$RABBIT_ENV_CONF" ]; then
        n=$(sed -n 's/^[[:space:]]*\(RABBITMQ_\)\{0,1\}NODENAME=["'\'']\{0,1\}\([^"'\'']*\).*/\2/p' \
            "$RABBIT_ENV_CONF" | tail -n 1)
    fi
    echo "${n:-rabbit@$(hostname -s)}"
}

rabbit_ctl_ok() {
    # The Debian wrappers only work for root (they switch to the rabbitmq user).
    if ! is_root && [ "$(id -un)" != rabbitmq ]; then
        die "managing RabbitMQ needs root (the Debian rabbitmqctl wrapper refuses other users)"
    fi
}

rabbit_running() {
    timeout 20 rabbitmqctl -q ping >/dev/null 2>&1
}

rabbit_install() {
    if ! command -v rabbitmq-server >/dev/null 2>&1 || ! command -v rabbitmqctl >/dev/null 2>&1; then
        missing_prereq rabbitmq-server \
            "rabbitmq-server (Debian package) or RabbitMQ 3.10+ with the management and prometheus plugins"
    fi
    rabbit_ctl_ok
    # Pin the node name so it does not depend on this machine's hostname
    # (and so its data dir stays the same if the hostname changes).  Written
    # to rabbitmq-env.conf, which every RabbitMQ CLI tool reads, so a plain
    # `rabbitmqctl` from any shell keeps working.
    if [ -z "${RABBITMQ_NODENAME:-}" ] && [ -d /etc/rabbitmq ] \
        && ! grep -Eq '^[[:space:]]*(RABBITMQ_)?NODENAME=' "$RABBIT_ENV_CONF" 2>/dev/null; then
        if rabbit_running; then
            log "rabbitmq: node $(rabbit_node) already running; not pinning the node name now"
        else
            log "rabbitmq: pinning node name $RABBIT_NODE_DEFAULT in $RABBIT_ENV_CONF"
            printf '\n# Added by scripts/infra.sh: node name independent of the hostname.\nNODENAME=%s\n' \
                "$RABBIT_NODE_DEFAULT" >>"$RABBIT_ENV_CONF"
        fi
    fi
    local f=/etc/rabbitmq/enabled_plugins p missing=0
    for p in "${RABBIT_PLUGINS[@]}"; do
        grep -q "\b$p\b" "$f" 2>/dev/null || missing=1
    done
    if [ "$missing" = 1 ]; then
        log "rabbitmq: enabling plugins ${RABBIT_PLUGINS[*]}"
        local mode=--offline out
        if rabbit_running; then mode=--online; fi
        if ! out=$(rabbitmq-plugins -q enable "$mode" "${RABBIT_PLUGINS[@]}" 2>&1); then
            echo "$out" >&2
            die "rabbitmq-plugins enable failed"
        fi
        if id rabbitmq >/dev/null 2>&1 && [ -f "$f" ]; then chown rabbitmq:rabbitmq "$f"; fi
    fi
}

mgmt_ok() {
    if command -v curl >/dev/null 2>&1; then
        curl -fsS -m 5 -u guest:guest -o /dev/null "$MGMT_URL" 2>/dev/null
    else
        python3 - "$MGMT_URL" <<'EOF' 2>/dev/null
import base64, sys, urllib.request
req = urllib.request.Request(sys.argv[1], headers={
    "Authorization": "Basic " + base64.b64encode(b"guest:guest").decode()})
urllib.request.urlopen(req, timeout=5).read()
EOF
    fi
}

rabbit_await() { timeout 15 rabbitmqctl -q await_startup >/dev/null 2>&1; }

rabbit_fail() {
    local node
    node=$(rabbit_node)
    log "ERROR: $1"
    show_logs "/var/log/rabbitmq/$node.log" /var/log/rabbitmq/startup_err
    local names
    names=$(epmd -names 2>/dev/null | sed -n 's/^name \([^ ]*\) at port.*/\1/p' | tr '\n' ' ' || true)
    log "Erlang nodes registered with epmd: ${names:-none} (expected: ${node%@*})"
    port_hint 5672
    port_hint 15672
    exit 1
}

rabbit_start() {
    if ! is_root && [ "$(id -un)" != rabbitmq ] && mgmt_ok; then
        log "rabbitmq: already running (management API answers)"
        note_server found rabbitmq
        return 0
    fi
    rabbit_install
    local t0=$SECONDS
    if rabbit_running; then
        log "rabbitmq: already running ($(rabbit_node))"
        note_server found rabbitmq
    else
        log "rabbitmq: starting node $(rabbit_node)"
        (cd / && rabbitmq-server -detached) >&2 || rabbit_fail "rabbitmq-server -detached failed"
        note_server started rabbitmq
    fi
    wait_until "$TIMEOUT" rabbit_await \
        || rabbit_fail "rabbitmq did not finish booting within ${TIMEOUT}s"
    wait_until "$TIMEOUT" mgmt_ok \
        || rabbit_fail "rabbitmq management API ($MGMT_URL) did not answer within ${TIMEOUT}s"
    log "rabbitmq: ready (AMQP :5672, management :15672) after $((SECONDS - t0))s"
}

rabbit_stop() {
    rabbit_ctl_ok
    if ! rabbit_running; then log "rabbitmq: not running"; return 0; fi
    log "rabbitmq: stopping node $(rabbit_node)"
    local out
    if ! out=$(timeout $((TIMEOUT + 30)) rabbitmqctl -q shutdown 2>&1); then
        echo "$out" >&2
        die "rabbitmq did not shut down cleanly"
    fi
    # the node started epmd (Erlang's port mapper, :4369); it stays after the node unless told
    if ! epmd -names 2>/dev/null | grep -q '^name '; then epmd -kill >/dev/null 2>&1 || true; fi
    log "rabbitmq: stopped"
}

rabbit_status() {
    if ! command -v rabbitmqctl >/dev/null 2>&1; then echo "rabbitmq: stopped (not installed)"; return; fi
    if ! is_root && [ "$(id -un)" != rabbitmq ]; then
        if mgmt_ok; then echo "rabbitmq: running"; else echo "rabbitmq: unknown (run as root)"; fi
        return
    fi
    if rabbit_running; then echo "rabbitmq: running"; else echo "rabbitmq: stopped"; fi
}

# ---------------------------------------------------------------- postgres

pg_installed() {
    command -v pg_ctlcluster >/dev/null 2>&1 && command -v pg_lsclusters >/dev/null 2>&1 \
        && compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null
}

# Newest installed server version (e.g. 15).
pg_newest_version() {
    local d
    for d in /usr/lib/postgresql/*/bin/postgres; do
        d=${d#/usr/lib/postgresql/}
        echo "${d%%/*}"
    done | sort -n | tail -n 1
}

# "VERSION NAME" of the cluster configured on port 5432, or nothing.
pg_cluster() {
    pg_lsclusters -h 2>/dev/null | awk -v p="$PG_PORT" '$3 == p { print $1, $2; exit }'
}

pg_admin_ok() { is_root || [ "$(id -un)" = postgres ]; }

as_postgres() {
    if is_root; then
        (cd / && runuser -u postgres -- "$@")
    elif [ "$(id -un)" = postgres ]; then
        "$@"
    else
        die "managing PostgreSQL needs root (or the postgres user)"
    fi
}

# Run SQL from stdin as the postgres superuser.
pg_admin_sql() {
    as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres "$@"
}

pg_ready() { pg_isready -q -h 127.0.0.1 -p "$PG_PORT" -t 3 >/dev/null 2>&1; }

pg_password() { cat "$PG_SECRET"; }

# psql as the ecommerce role over TCP with its password.
pg_user_psql() {
    PGPASSWORD="$(pg_password)" PGCONNECT_TIMEOUT=5 \
        psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U "$PG_ROLE" "$@"
}

pg_login_ok() {
    [ -s "$PG_SECRET" ] && pg_user_psql -d postgres -tAc 'select 1' >/dev/null 2>&1
}

# Make sure the ecommerce role exists, can log in over TCP with the stored
# password, and has CREATEDB.  Needs the server running and root.
pg_ensure_role() {
    if [ ! -s "$PG_SECRET" ]; then
        log "postgres: generating password for role $PG_ROLE in ${PG_SECRET#"$ROOT"/}"
        mkdir -p "$(dirname "$PG_SECRET")"
        chmod 700 "$(dirname "$PG_SECRET")"
        (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$PG_SECRET.tmp" \
            && mv -f "$PG_SECRET.tmp" "$PG_SECRET")
    fi
    chmod 600 "$PG_SECRET"
    local exists
    exists=$(pg_admin_sql -tA -c "select 1 from pg_roles where rolname = '$PG_ROLE'")
    if [ "$exists" != 1 ]; then
        log "postgres: creating role $PG_ROLE"
        pg_admin_sql <<EOF
\set pw '$(pg_password)'
CREATE ROLE $PG_ROLE LOGIN CREATEDB PASSWORD :'pw';
EOF
    elif ! pg_login_ok; then
        log "postgres: setting password of role $PG_ROLE from ${PG_SECRET#"$ROOT"/}"
        pg_admin_sql <<EOF
\set pw '$(pg_password)'
ALTER ROLE $PG_ROLE LOGIN CREATEDB PASSWORD :'pw';
EOF
    else
        pg_admin_sql -c "ALTER ROLE $PG_ROLE LOGIN CREATEDB"
    fi
    # The first pg_hba rule for 127.0.0.1 must ask for a password.
    local method
    method=$(pg_admin_sql -tA -c "select auth_method from pg_hba_file_rules
        where type = 'host' and address = '127.0.0.1' and 'all' = any(database)
        order by line_number limit 1")
    case "$method" in
        scram-sha-256|md5) ;;
        *) log "WARNING: pg_hba.conf rule for 127.0.0.1 uses '${method:-none}', not md5/scram-sha-256" ;;
    esac
    pg_login_ok || die "postgres: role $PG_ROLE cannot log in on 127.0.0.1:$PG_PORT with its password (check pg_hba.conf)"
}

pg_install() {
    pg_installed || missing_prereq postgresql \
        "postgresql (Debian package, which provides pg_ctlcluster; PostgreSQL 13+)"
    pg_installed || die "postgresql was installed but no server binary was found under /usr/lib/postgresql"
}

pg_start() {
    pg_install
    local t0=$SECONDS cl ver name logf
    cl=$(pg_cluster)
    if [ -z "$cl" ]; then
        if [ -n "$(pg_lsclusters -h 2>/dev/null)" ]; then
            pg_lsclusters >&2
            die "postgres: no cluster is configured on port $PG_PORT (see the clusters above)"
        fi
        ver=$(pg_newest_version)
        is_root || die "creating a PostgreSQL cluster needs root"
        log "postgres: creating cluster $ver/main on port $PG_PORT"
        pg_createcluster "$ver" main -p "$PG_PORT" >&2 || die "pg_createcluster $ver main failed"
        cl=$(pg_cluster)
        [ -n "$cl" ] || die "postgres: cluster creation did not produce a cluster on port $PG_PORT"
    fi
    read -r ver name <<<"$cl"
    logf="/var/log/postgresql/postgresql-$ver-$name.log"
    if pg_ctlcluster "$ver" "$name" status >/dev/null 2>&1 || pg_ready; then
        log "postgres: cluster $ver/$name already running"
        note_server found postgres
    else
        pg_admin_ok || die "starting PostgreSQL needs root (or the postgres user)"
        log "postgres: starting cluster $ver/$name"
        note_server started postgres
        if ! timeout $((TIMEOUT + 30)) pg_ctlcluster "$ver" "$name" start >&2; then
            log "ERROR: postgres cluster $ver/$name failed to start"
            show_logs "$logf"
            port_hint "$PG_PORT"
            exit 1
        fi
    fi
    if ! wait_until "$TIMEOUT" pg_ready; then
        log "ERROR: postgres is not accepting connections on 127.0.0.1:$PG_PORT after ${TIMEOUT}s"
        show_logs "$logf"
        exit 1
    fi
    if pg_admin_ok; then
        pg_ensure_role
    else
        pg_login_ok || pg_login_error
    fi
    log "postgres: ready ($ver/$name on 127.0.0.1:$PG_PORT) after $((SECONDS - t0))s"
}

pg_stop() {
    pg_installed || { log "postgres: not installed"; return 0; }
    local cl ver name
    cl=$(pg_cluster)
    if [ -z "$cl" ]; then log "postgres: no cluster on port $PG_PORT"; return 0; fi
    read -r ver name <<<"$cl"
    if ! pg_ctlcluster "$ver" "$name" status >/dev/null 2>&1 && ! pg_ready; then
        log "postgres: not running"
        return 0
    fi
    pg_admin_ok || die "stopping PostgreSQL needs root (or the postgres user)"
    log "postgres: stopping cluster $ver/$name"
    timeout $((TIMEOUT + 30)) pg_ctlcluster "$ver" "$name" stop -m fast >&2 \
        || die "postgres cluster $ver/$name did not stop cleanly"
    log "postgres: stopped"
}

pg_status() {
    if pg_ready; then echo "postgres: running"; else echo "postgres: stopped"; fi
}

pg_check_dbname() {
    [[ "$1" =~ ^[A-Za-z_][A-Za-z0-9_-]{0,62}$ ]] \
        || die "invalid database name '$1' (letters, digits, _ and -, max 63 chars)"
}

pg_login_error() {
    local rel=${PG_SECRET#"$ROOT"/} dir
    dir=$(dirname "$PG_SECRET")
    if [ -d "$dir" ] && { [ ! -x "$dir" ] || { [ -e "$PG_SECRET" ] && [ ! -r "$PG_SECRET" ]; }; }; then
        die "cannot read $rel (owned by $(stat -c %U "$dir")); run this as that user or as root"
    elif [ ! -e "$PG_SECRET" ]; then
        die "no password in $rel yet; run (as root): scripts/infra.sh start postgres"
    fi
    die "role $PG_ROLE cannot log in with the password in $rel; run (as root): scripts/infra.sh start postgres"
}

# Usable credentials for the ecommerce role, or a clear error.
pg_need_login() {
    command -v pg_isready >/dev/null 2>&1 || die "postgres is not installed; run: scripts/infra.sh start postgres"
    pg_ready || die "postgres is not running; run: scripts/infra.sh start postgres"
    if ! pg_login_ok; then
        if pg_admin_ok; then
            pg_ensure_role
        else
            pg_login_error
        fi
    fi
}

pg_db_exists() {
    [ "$(pg_user_psql -d postgres -tA -c "select 1 from pg_database where datname = '$1'")" = 1 ]
}

pg_url() {
    local db=$1
    pg_check_dbname "$db"
    pg_need_login
    if ! pg_db_exists "$db"; then
        log "postgres: creating database $db"
        # A concurrent caller may have created it meanwhile: that is fine.
        pg_user_psql -d postgres -c "CREATE DATABASE \"$db\" OWNER $PG_ROLE" >&2 \
            || pg_db_exists "$db" || die "could not create database $db"
    fi
    echo "postgresql+psycopg2://$PG_ROLE:$(pg_password)@127.0.0.1:$PG_PORT/$db"
}

pg_dropdb() {
    local db=$1
    pg_check_dbname "$db"
    pg_need_login
    if pg_db_exists "$db"; then
        log "postgres: dropping database $db"
        pg_user_psql -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >&2 \
            || die "could not drop database $db (is it owned by $PG_ROLE?)"
    else
        log "postgres: database $db does not exist"
    fi
}

# ---------------------------------------------------------------- redis

redis_running() {
    [ "$(timeout 5 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]
}
redis_down() { ! redis_running; }

redis_install() {
    if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
        missing_prereq redis-server "redis-server (Debian package, with redis-cli; Redis 6+)"
    fi
}

redis_start() {
    redis_install
    local t0=$SECONDS
    if redis_running; then
        log "redis: already running on 127.0.0.1:$REDIS_PORT"
        note_server found redis
        return 0
    fi
    mkdir -p "$REDIS_DIR"
    log "redis: starting (data dir ${REDIS_DIR#"$ROOT"/})"
    # No RDB snapshots (stop is "shutdown nosave" anyway): a failed background
    # save would otherwise make Redis refuse writes (MISCONF), e.g. if var/ is cleaned.
    note_server started redis
    if ! redis-server --daemonize yes --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$REDIS_DIR" \
        --save '' --logfile "$REDIS_DIR/redis.log" --pidfile "$REDIS_DIR/redis.pid" >&2; then
        show_logs "$REDIS_DIR/redis.log"
        die "redis-server failed to start"
    fi
    if ! wait_until "$TIMEOUT" redis_running; then
        log "ERROR: redis did not answer PING within ${TIMEOUT}s"
        show_logs "$REDIS_DIR/redis.log"
        port_hint "$REDIS_PORT"
        exit 1
    fi
    log "redis: ready (127.0.0.1:$REDIS_PORT) after $((SECONDS - t0))s"
}

redis_stop() {
    if ! command -v redis-cli >/dev/null 2>&1 || ! redis_running; then
        log "redis: not running"
        return 0
    fi
    log "redis: stopping"
    timeout 30 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    wait_until "$TIMEOUT" redis_down || die "redis is still answering after ${TIMEOUT}s"
    log "redis: stopped"
}

redis_status() {
    if command -v redis-cli >/dev/null 2>&1 && redis_running; then
        echo "redis: running"
    else
        echo "redis: stopped"
    fi
}

# ---------------------------------------------------------------- main

# One machine-wide lock: the servers are shared by every checkout, and
# concurrent pg-url calls must not race on the password or CREATE DATABASE.
# The script re-runs itself under `flock -o`, so the lock is held by flock
# alone and never inherited by the servers this script daemonizes.
LOCK=/tmp/infra-sh.lock
run_locked() {
    local rc=0
    (umask 000 && : >>"$LOCK") 2>/dev/null || true
    [ -r "$LOCK" ] || return 0
    _INFRA_SH_LOCKED=1 flock -o -E 75 -w $((TIMEOUT * 5)) "$LOCK" \
        bash "${BASH_SOURCE[0]}" "$@" || rc=$?
    if [ "$rc" -eq 75 ]; then
        die "timed out waiting for another scripts/infra.sh to finish (lock $LOCK)"
    fi
    exit "$rc"
}

[ $# -ge 1 ] || usage
action=$1
shift
case "$action" in
    status|-h|--help|help) ;;
    *)
        if [ -z "${_INFRA_SH_LOCKED:-}" ] && command -v flock >/dev/null 2>&1; then
            run_locked "$action" "$@"
        fi
        ;;
esac
unset _INFRA_SH_LOCKED

case "$action" in
    pg-url|pg-dropdb)
        [ $# -eq 1 ] || usage
        if [ "$action" = pg-url ]; then pg_url "$1"; else pg_dropdb "$1"; fi
        exit 0
        ;;
    install|start|stop|status) ;;
    -h|--help|help) usage ;;
    *) echo "[infra] unknown action '$action'" >&2; usage ;;
esac

services=("$@")
[ ${#services[@]} -gt 0 ] || services=(rabbitmq postgres redis)
for s in "${services[@]}"; do
    case "$s" in
        rabbitmq|postgres|redis) ;;
        *) echo "[infra] unknown service '$s' (expected rabbitmq, postgres or redis)" >&2; exit 2 ;;
    esac
done

for s in "${services[@]}"; do
    case "$action:$s" in
        install:rabbitmq) rabbit_install ;;
        install:postgres) pg_install ;;
        install:redis) redis_install ;;
        start:rabbitmq) rabbit_start ;;
        start:postgres) pg_start ;;
        start:redis) redis_start ;;
        stop:rabbitmq) rabbit_stop ;;
        stop:postgres) pg_stop ;;
        stop:redis) redis_stop ;;
        status:rabbitmq) rabbit_status ;;
        status:postgres) pg_status ;;
        status:redis) redis_status ;;
    esac
done
