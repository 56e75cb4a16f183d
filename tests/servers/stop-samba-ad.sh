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
source "$(dirname "$0")/lib.sh"
stop_pid "samba AD DC" "$PIDFILE" TERM 10
remove_ip
