#!/usr/bin/env bash
# Stop the scim2-server started by start-scim.sh from STATE_DIR: only the PID it recorded.
#   usage: stop-scim.sh STATE_DIR
set -euo pipefail
STATE_DIR="${1:?usage: stop-scim.sh STATE_DIR}"
source "$(dirname "$0")/lib.sh"
stop_pid scim2-server "$STATE_DIR/scim.pid" TERM 5
