#!/usr/bin/env bash
# Stop the PostgreSQL cluster started by start-postgres.sh from STATE_DIR: only the postmaster PID
# it recorded (SIGINT: the "fast" shutdown, sessions are ended and the server exits cleanly).
#   usage: stop-postgres.sh STATE_DIR
set -euo pipefail
STATE_DIR="${1:?usage: stop-postgres.sh STATE_DIR}"
source "$(dirname "$0")/lib.sh"
stop_pid postgres "$STATE_DIR/postgres.pid" INT 10
