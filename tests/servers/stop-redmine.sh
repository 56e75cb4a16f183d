#!/usr/bin/env bash
# Stop the Redmine started by start-redmine.sh from STATE_DIR: only the PID it recorded; then
# remove its instance link /var/lib/redmine/offboardPORT (the instance itself is in STATE_DIR).
#   usage: stop-redmine.sh STATE_DIR
set -euo pipefail
STATE_DIR="${1:?usage: stop-redmine.sh STATE_DIR}"
source "$(dirname "$0")/lib.sh"
stop_pid redmine "$STATE_DIR/redmine.pid" TERM 10
if [[ -f "$STATE_DIR/instance_name" ]]; then
    inst="$(cat "$STATE_DIR/instance_name")"
    [[ "$inst" =~ ^offboard[0-9]+$ ]] || { echo "stop-redmine: bad instance name '$inst'" >&2; exit 1; }
    [[ -L "/var/lib/redmine/$inst" ]] && rm -f "/var/lib/redmine/$inst"
fi
