#!/usr/bin/env bash
# Stop the aiosmtpd started by start-aiosmtpd.sh from STATE_DIR: only the PID it recorded.
#   usage: stop-aiosmtpd.sh STATE_DIR
set -euo pipefail
STATE_DIR="${1:?usage: stop-aiosmtpd.sh STATE_DIR}"
source "$(dirname "$0")/lib.sh"
stop_pid aiosmtpd "$STATE_DIR/aiosmtpd.pid" TERM 5
