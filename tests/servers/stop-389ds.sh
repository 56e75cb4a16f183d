#!/usr/bin/env bash
# Stop the ns-slapd started by start-389ds.sh from STATE_DIR: only the PID it recorded.
# With --purge, also remove its instance (dsctl INSTANCE remove: /etc/dirsrv/slapd-INSTANCE and
# its database, logs and run files), which otherwise a later start on the same port reuses.
#   usage: stop-389ds.sh STATE_DIR [--purge]
set -euo pipefail
STATE_DIR="${1:?usage: stop-389ds.sh STATE_DIR [--purge]}"
source "$(dirname "$0")/lib.sh"
inst=""
if [[ -f "$STATE_DIR/instance" ]]; then
    inst="$(cat "$STATE_DIR/instance")"
    [[ "$inst" =~ ^offboard[0-9]+$ ]] || { echo "stop-389ds: bad instance name '$inst'" >&2; exit 1; }
fi
stop_pid ns-slapd "$STATE_DIR/ns-slapd.pid" TERM 10
# ns-slapd leaves its own pid file behind.
[[ -n "$inst" ]] && rm -f "/run/dirsrv/slapd-$inst.pid"
if [[ "${2:-}" = --purge && -n "$inst" && -d "/etc/dirsrv/slapd-$inst" ]]; then
    PATH="$STATE_DIR/bin:$PATH" dsctl "$inst" remove --do-it >/dev/null 2>&1 || {
        echo "stop-389ds: removing instance $inst failed" >&2; exit 1; }
    echo "389-ds instance $inst removed"
fi
