#!/usr/bin/env bash
# Stop the slapd started by start-openldap.sh from STATE_DIR: only the PID it recorded.
#   usage: stop-openldap.sh STATE_DIR
set -euo pipefail
STATE_DIR="${1:?usage: stop-openldap.sh STATE_DIR}"
source "$(dirname "$0")/lib.sh"
stop_pid slapd "$STATE_DIR/slapd.pid" INT 5
