#!/usr/bin/env bash
# Start aiosmtpd on 127.0.0.1:PORT, writing every message it accepts to STATE_DIR/mail/ as one
# JSON file ({"mail_from", "rcpt_tos", "data"}), numbered in arrival order.
#   usage: start-aiosmtpd.sh PORT STATE_DIR
#   SMTP_USER / SMTP_PASSWORD  when both set, AUTH PLAIN/LOGIN is required with them (allowed
#                              without TLS: the server is on loopback)
#   SMTP_REJECT_RCPT            a recipient refused with 550 (to test a failed send)
#   SMTP_TLS                    `starttls` (STARTTLS required before AUTH) or `tls` (implicit
#                              TLS); the server's certificate (for localhost and 127.0.0.1) is
#                              made by openssl, signed by a CA written to STATE_DIR/tls/ca.pem
# Refuses a taken port, waits until the server greets (20 s), writes the PID to
# STATE_DIR/aiosmtpd.pid and prints one ready line. Stop it with stop-aiosmtpd.sh STATE_DIR.
set -euo pipefail

PORT="${1:?usage: start-aiosmtpd.sh PORT STATE_DIR}"
STATE_DIR="${2:?usage: start-aiosmtpd.sh PORT STATE_DIR}"
CACHE="${OFFBOARD_TEST_CACHE:-$HOME/.cache/offboard-tests}"
VENV="$CACHE/aiosmtpd"
PY="$VENV/bin/python3"
source "$(dirname "$0")/lib.sh"

[[ "$PORT" =~ ^[0-9]+$ ]] || { echo "start-aiosmtpd: bad port '$PORT'" >&2; exit 2; }
[[ -x "$PY" ]] || {
    echo "start-aiosmtpd: aiosmtpd is not installed; run tests/servers/install-aiosmtpd.sh" >&2; exit 1; }
mkdir -p "$STATE_DIR/mail"
TLS_MODE="${SMTP_TLS:-}"
if [[ -n "$TLS_MODE" ]]; then
    [[ "$TLS_MODE" == starttls || "$TLS_MODE" == tls ]] || {
        echo "start-aiosmtpd: SMTP_TLS must be starttls or tls" >&2; exit 2; }
    command -v openssl >/dev/null || { echo "start-aiosmtpd: openssl is required for TLS" >&2; exit 1; }
    T="$STATE_DIR/tls"
    mkdir -p "$T"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -keyout "$T/ca.key" -out "$T/ca.pem" -subj "/CN=offboard test SMTP CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$T/key.pem" -out "$T/server.csr" -subj "/CN=localhost" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$T/ext.cnf"
    openssl x509 -req -in "$T/server.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial \
        -days 2 -out "$T/cert.pem" -extfile "$T/ext.cnf" 2>/dev/null
fi
PIDFILE="$STATE_DIR/aiosmtpd.pid"
refuse_taken_ports start-aiosmtpd 127.0.0.1 "$PORT"

SERVER='
import json, os, signal, sys, threading
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

port, maildir = int(sys.argv[1]), sys.argv[2]
user, password = os.environ.get("SMTP_USER"), os.environ.get("SMTP_PASSWORD")
reject = os.environ.get("SMTP_REJECT_RCPT")
lock = threading.Lock()
count = [0]

class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if reject and address == reject:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with lock:
            count[0] += 1
            n = count[0]
        msg = {"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
               "data": envelope.content.decode("utf-8", "replace"),
               "auth": session.authenticated}
        tmp = os.path.join(maildir, ".%04d.tmp" % n)
        with open(tmp, "w") as f:
            json.dump(msg, f)
        os.rename(tmp, os.path.join(maildir, "%04d.json" % n))
        return "250 Message accepted for delivery"

def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (auth_data.login.decode() == user and auth_data.password.decode() == password)
    return AuthResult(success=ok, handled=False)

kw = {}
tls_mode, tls_dir = os.environ.get("SMTP_TLS_MODE", ""), os.environ.get("SMTP_TLS_DIR", "")
if user and password:
    kw = dict(authenticator=authenticator, auth_required=True,
              # aiosmtpd counts only STARTTLS as TLS; implicit TLS is TLS from the first byte.
              auth_require_tls=(tls_mode == "starttls"))
if tls_mode:
    import ssl
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(os.path.join(tls_dir, "cert.pem"), os.path.join(tls_dir, "key.pem"))
    if tls_mode == "starttls":
        kw.update(tls_context=ctx, require_starttls=True)
    else:
        kw.update(ssl_context=ctx)
c = Controller(Handler(), hostname="127.0.0.1", port=port, **kw)
c.start()
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: stop.set())
signal.signal(signal.SIGINT, lambda *a: stop.set())
stop.wait()
c.stop()
'
SMTP_TLS_MODE="$TLS_MODE" SMTP_TLS_DIR="$STATE_DIR/tls" \
    nohup "$PY" -c "$SERVER" "$PORT" "$STATE_DIR/mail" >"$STATE_DIR/aiosmtpd.log" 2>&1 </dev/null &
PID=$!
echo "$PID" >"$PIDFILE"

for _ in $(seq 1 200); do
    if ! kill -0 "$PID" 2>/dev/null; then
        echo "start-aiosmtpd: aiosmtpd exited early; log follows" >&2
        cat "$STATE_DIR/aiosmtpd.log" >&2 || true
        rm -f "$PIDFILE"
        exit 1
    fi
    if "$PY" -c '
import smtplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[3]) if sys.argv[2] == "tls" else None
if ctx:
    s = smtplib.SMTP_SSL("localhost", int(sys.argv[1]), timeout=1, context=ctx)
else:
    s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=1)
s.noop(); s.quit()' "$PORT" "$TLS_MODE" "$STATE_DIR/tls/ca.pem" 2>/dev/null; then
        echo "aiosmtpd ready on 127.0.0.1:$PORT (pid $PID, mail in $STATE_DIR/mail)"
        exit 0
    fi
    sleep 0.1
done
echo "start-aiosmtpd: aiosmtpd did not answer within 20 s; stopping it" >&2
kill -TERM "$PID" 2>/dev/null || true
rm -f "$PIDFILE"
exit 1
