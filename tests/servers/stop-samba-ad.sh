#!/usr/bin/env bash
# Stop the Samba AD DC started by start-samba-ad.sh from STATE_DIR: only the PID it recorded.
# Removes the loopback address the start script added, if it added one.
#   usage: stop-samba-ad.sh STATE_DIR
set -euo pipefail
STATE_DIR="${1:?usage: stop-samba-ad.sh STATE_DIR}"
PIDFILE="$STATE_DIR/samba.pid"
remove_ip() {
    if [[ -f "$STATE_DIR/added-ip" && -f "$STATE_DIR/etc/smb.conf" ]]; then
        ip="$(sed -n 's/^[[:space:]]*interfaces = //p' "$STATE_DIR/etc/smb.conf")"
        [[ -n "$ip" ]] && ip addr del "$ip/32" dev lo 2>/dev/null || true
        rm -f "$STATE_DIR/added-ip"
    fi
}
if [[ ! -f "$PIDFILE" ]]; then
    remove_ip
    echo "samba AD DC not running (no $PIDFILE)"
    exit 0
fi
PID="$(cat "$PIDFILE")"
[[ "$PID" =~ ^[0-9]+$ ]] || { echo "stop-samba-ad: bad pid file $PIDFILE" >&2; exit 1; }
if kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID"
    for _ in $(seq 1 100); do
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$PID" 2>/dev/null; then
        echo "stop-samba-ad: pid $PID ignored SIGTERM for 10 s; sending SIGKILL" >&2
        kill -KILL "$PID" 2>/dev/null || true
    fi
fi
rm -f "$PIDFILE"
remove_ip
echo "samba AD DC stopped (pid $PID)"
