#!/usr/bin/env bash
# Stop the slapd started by start-openldap.sh from STATE_DIR: only the PID it recorded.
#   usage: stop-openldap.sh STATE_DIR
set -euo pipefail
STATE_DIR="${1:?usage: stop-openldap.sh STATE_DIR}"
PIDFILE="$STATE_DIR/slapd.pid"
[[ -f "$PIDFILE" ]] || { echo "slapd not running (no $PIDFILE)"; exit 0; }
PID="$(cat "$PIDFILE")"
[[ "$PID" =~ ^[0-9]+$ ]] || { echo "stop-openldap: bad pid file $PIDFILE" >&2; exit 1; }
if kill -0 "$PID" 2>/dev/null; then
    kill -INT "$PID"
    for _ in $(seq 1 50); do
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$PID" 2>/dev/null; then
        echo "stop-openldap: pid $PID ignored SIGINT for 5 s; sending SIGKILL" >&2
        kill -KILL "$PID" 2>/dev/null || true
    fi
fi
rm -f "$PIDFILE"
echo "slapd stopped (pid $PID)"
