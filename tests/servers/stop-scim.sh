#!/usr/bin/env bash
# Stop the scim2-server started by start-scim.sh from STATE_DIR: only the PID it recorded.
#   usage: stop-scim.sh STATE_DIR
set -euo pipefail
STATE_DIR="${1:?usage: stop-scim.sh STATE_DIR}"
PIDFILE="$STATE_DIR/scim.pid"
[[ -f "$PIDFILE" ]] || { echo "scim2-server not running (no $PIDFILE)"; exit 0; }
PID="$(cat "$PIDFILE")"
[[ "$PID" =~ ^[0-9]+$ ]] || { echo "stop-scim: bad pid file $PIDFILE" >&2; exit 1; }
if kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID"
    for _ in $(seq 1 50); do
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$PID" 2>/dev/null; then
        echo "stop-scim: pid $PID ignored SIGTERM for 5 s; sending SIGKILL" >&2
        kill -KILL "$PID" 2>/dev/null || true
    fi
fi
rm -f "$PIDFILE"
echo "scim2-server stopped (pid $PID)"
