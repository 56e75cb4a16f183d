#!/usr/bin/env bash
# Start scim2-server on 127.0.0.1:PORT with a bearer token, state under STATE_DIR.
#   usage: start-scim.sh PORT STATE_DIR      (token from env SCIM_TOKEN)
# Refuses a taken port, waits until GET /ServiceProviderConfig answers (20 s), writes the PID to
# STATE_DIR/scim.pid and prints one ready line. Stop it with stop-scim.sh STATE_DIR.
set -euo pipefail

PORT="${1:?usage: start-scim.sh PORT STATE_DIR}"
STATE_DIR="${2:?usage: start-scim.sh PORT STATE_DIR}"
: "${SCIM_TOKEN:?set SCIM_TOKEN to the bearer token the server should accept}"
CACHE="${OFFBOARD_TEST_CACHE:-$HOME/.cache/offboard-tests}"
VENV="$CACHE/scim2-server"
PY="$VENV/bin/python3"

[[ "$PORT" =~ ^[0-9]+$ ]] || { echo "start-scim: bad port '$PORT'" >&2; exit 2; }
[[ -x "$VENV/bin/scim2-server" ]] || {
    echo "start-scim: scim2-server is not installed; run tests/servers/install-scim.sh" >&2; exit 1; }
mkdir -p "$STATE_DIR"
PIDFILE="$STATE_DIR/scim.pid"

# Already running from this state dir: nothing to do.
if [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    echo "scim2-server already running (pid $(cat "$PIDFILE")) from $STATE_DIR"
    exit 0
fi

# Refuse a taken port.
if "$PY" -c 'import socket,sys; s=socket.socket(); s.settimeout(0.5); sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)' "$PORT"; then
    echo "start-scim: port $PORT on 127.0.0.1 is already in use" >&2
    exit 1
fi

# The wrapper turns SIGTERM into a clean exit (background jobs of a non-interactive shell ignore
# SIGINT, so KeyboardInterrupt never comes) and reads the token from the environment, so it never
# shows on a command line.
WRAPPER='
import os, signal, sys
from scim2_server.testserver.cli import main
def _stop(signum, frame):
    raise KeyboardInterrupt
signal.signal(signal.SIGTERM, _stop)
signal.signal(signal.SIGINT, _stop)
port, dump = sys.argv[1], sys.argv[2]
sys.argv = ["scim2-server", "--hostname", "127.0.0.1", "--port", port,
            "--bearer-token", os.environ["SCIM_TOKEN"], "--dump-resources", dump]
try:
    sys.exit(main())
except KeyboardInterrupt:
    sys.exit(0)
'
nohup "$PY" -c "$WRAPPER" "$PORT" "$STATE_DIR/resources.json" \
    >"$STATE_DIR/scim.log" 2>&1 </dev/null &
PID=$!
echo "$PID" >"$PIDFILE"

# Wait for readiness (any HTTP answer on /ServiceProviderConfig, 401 included).
for _ in $(seq 1 200); do
    if ! kill -0 "$PID" 2>/dev/null; then
        echo "start-scim: scim2-server exited early; log follows" >&2
        cat "$STATE_DIR/scim.log" >&2 || true
        rm -f "$PIDFILE"
        exit 1
    fi
    if "$PY" - "$PORT" <<'PYEOF' 2>/dev/null
import os, sys, urllib.request, urllib.error
req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/v2/ServiceProviderConfig",
                             headers={"Authorization": "Bearer " + os.environ["SCIM_TOKEN"]})
try:
    urllib.request.urlopen(req, timeout=1).read()
except urllib.error.HTTPError:
    pass
PYEOF
    then
        echo "scim2-server ready on http://127.0.0.1:$PORT/v2 (pid $PID, state $STATE_DIR)"
        exit 0
    fi
    sleep 0.1
done
echo "start-scim: scim2-server did not answer within 20 s; stopping it" >&2
kill -TERM "$PID" 2>/dev/null || true
rm -f "$PIDFILE"
exit 1
