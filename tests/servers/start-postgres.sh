#!/usr/bin/env bash
# Start a throw-away PostgreSQL cluster on 127.0.0.1:PORT, its data under STATE_DIR/data.
#   usage: start-postgres.sh PORT STATE_DIR
#   PG_TLS=1  also serve TLS with a test CA written to STATE_DIR/tls/ca.pem (SAN 127.0.0.1,
#             localhost); every role but the superuser may then log in over TLS only
# initdb and postgres run as an unprivileged user (`postgres` when run as root: the server
# refuses to run as root; the current user otherwise). The superuser is `offboard_admin`, trusted
# from 127.0.0.1 only; every other role logs in with a SCRAM password. No Unix socket. Refuses a
# taken port, waits until pg_isready answers (30 s), writes the postmaster's PID to
# STATE_DIR/postgres.pid and prints one ready line. Stop it with stop-postgres.sh STATE_DIR.
set -euo pipefail

PORT="${1:?usage: start-postgres.sh PORT STATE_DIR}"
STATE_DIR="${2:?usage: start-postgres.sh PORT STATE_DIR}"
source "$(dirname "$0")/lib.sh"

[[ "$PORT" =~ ^[0-9]+$ ]] && (( PORT > 0 && PORT < 65535 )) || {
    echo "start-postgres: bad port '$PORT'" >&2; exit 2; }
BIN=""
for d in /usr/lib/postgresql/*/bin; do
    [[ -x "$d/initdb" && -x "$d/postgres" ]] && BIN="$d"
done
[[ -n "$BIN" ]] || {
    echo "start-postgres: postgresql is not installed; run tests/servers/install-postgres.sh" >&2; exit 1; }
mkdir -p "$STATE_DIR"
STATE_DIR="$(cd "$STATE_DIR" && pwd)"
PIDFILE="$STATE_DIR/postgres.pid"
DATA="$STATE_DIR/data"

if [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    echo "postgres already running (pid $(cat "$PIDFILE")) from $STATE_DIR"
    exit 0
fi
refuse_taken_ports start-postgres 127.0.0.1 "$PORT"

# As root, everything the server touches belongs to an unprivileged user.
AS=()
if [[ "$(id -u)" = 0 ]]; then
    PGUSER_OS=postgres
    id "$PGUSER_OS" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$PGUSER_OS"
    # The state dir (a 0700 temp dir) must let that user reach its data dir.
    chmod o+x "$STATE_DIR"
    AS=(runuser -u "$PGUSER_OS" --)
fi

if [[ ! -f "$DATA/PG_VERSION" ]]; then
    mkdir -p "$DATA"
    [[ ${#AS[@]} -gt 0 ]] && chown "$PGUSER_OS" "$DATA"
    chmod 0700 "$DATA"
    "${AS[@]}" "$BIN/initdb" -D "$DATA" -U offboard_admin --auth-local=reject \
        --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 --no-sync \
        >"$STATE_DIR/initdb.log" 2>&1 || {
        echo "start-postgres: initdb failed; log follows" >&2; cat "$STATE_DIR/initdb.log" >&2; exit 1; }
    # The superuser is trusted from loopback (a throw-away cluster); everyone else uses SCRAM.
    # With PG_TLS=1 they must use TLS (no plain `host` line for them).
    {
        echo "host all offboard_admin 127.0.0.1/32 trust"
        echo "hostssl all all 127.0.0.1/32 scram-sha-256"
        [[ "${PG_TLS:-0}" == 1 ]] || echo "host all all 127.0.0.1/32 scram-sha-256"
    } >"$DATA/pg_hba.conf"
    if [[ "${PG_TLS:-0}" == 1 ]]; then
        make_test_tls "$STATE_DIR/tls" 127.0.0.1 "IP:127.0.0.1,DNS:localhost"
        cp "$STATE_DIR/tls/cert.pem" "$DATA/server.crt"
        cp "$STATE_DIR/tls/key.pem" "$DATA/server.key"
        [[ ${#AS[@]} -gt 0 ]] && chown "$PGUSER_OS" "$DATA/server.crt" "$DATA/server.key"
        chmod 0600 "$DATA/server.key"
        printf "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n" >>"$DATA/postgresql.conf"
    fi
fi

touch "$STATE_DIR/postgres.log"
[[ ${#AS[@]} -gt 0 ]] && chown "$PGUSER_OS" "$STATE_DIR/postgres.log"
"${AS[@]}" nohup "$BIN/postgres" -D "$DATA" -c listen_addresses=127.0.0.1 -c "port=$PORT" \
    -c unix_socket_directories= -c fsync=off -c max_connections=60 \
    >>"$STATE_DIR/postgres.log" 2>&1 </dev/null &
WRAPPER=$!

for _ in $(seq 1 300); do
    PID="$(head -n1 "$DATA/postmaster.pid" 2>/dev/null || true)"
    if [[ "$PID" =~ ^[0-9]+$ ]] && "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -U offboard_admin; then
        echo "$PID" >"$PIDFILE"
        echo "postgres ready on 127.0.0.1:$PORT (pid $PID, data $DATA)"
        exit 0
    fi
    if ! kill -0 "$WRAPPER" 2>/dev/null; then
        echo "start-postgres: postgres exited early; log follows" >&2
        cat "$STATE_DIR/postgres.log" >&2 || true
        exit 1
    fi
    sleep 0.1
done
echo "start-postgres: postgres did not become ready within 30 s; stopping it" >&2
kill -TERM "$WRAPPER" 2>/dev/null || true
exit 1
