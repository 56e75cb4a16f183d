#!/usr/bin/env bash
# Stop the OpenBao server started by start-openbao.sh from STATE_DIR: only the PID it recorded.
#   usage: stop-openbao.sh STATE_DIR
set -euo pipefail
STATE_DIR="${1:?usage: stop-openbao.sh STATE_DIR}"
source "$(dirname "$0")/lib.sh"
stop_pid openbao "$STATE_DIR/openbao.pid" TERM 5
