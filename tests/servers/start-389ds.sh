#!/usr/bin/env bash
# Start 389 Directory Server (suffix dc=corp,dc=test, rootdn cn=Directory Manager) on
# ldap://127.0.0.1:PORT and ldaps://127.0.0.1:PORT+1, instance `offboard<PORT>`.
#   usage: start-389ds.sh PORT STATE_DIR
#   env:   DS389_ADMIN_PASSWORD  cn=Directory Manager's password (default Passw0rd!Admin)
# 389-DS keeps an instance in fixed places (/etc/dirsrv/slapd-offboard<PORT>, /var/lib/dirsrv,
# /var/log/dirsrv, /run/dirsrv), not in STATE_DIR: a second start on the same PORT reuses the
# instance; stop-389ds.sh STATE_DIR --purge removes it. The instance is made by dscreate (about
# 10 s) with the sample entries (ou=people, ou=groups, cn=demo_group…), listening on 127.0.0.1
# only, with a server cert (SAN IP:127.0.0.1, DNS:localhost) from a CA the script makes
# (STATE_DIR/tls/ca.pem) in place of dscreate's self-signed one. dscreate/dsctl call systemctl
# (the packaged paths say systemd), so they run with a stand-in systemctl first on PATH that
# starts/stops ns-slapd by its pid file. Then ns-slapd runs in the foreground (it drops to user
# dirsrv); the script refuses a taken port, waits until the rootDSE answers over LDAPS (20 s),
# writes STATE_DIR/ns-slapd.pid and prints one ready line. Needs root.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

PORT="${1:?usage: start-389ds.sh PORT STATE_DIR}"
STATE_DIR="${2:?usage: start-389ds.sh PORT STATE_DIR}"
ADMIN_PW="${DS389_ADMIN_PASSWORD:-Passw0rd!Admin}"
SUFFIX="dc=corp,dc=test"

[[ "$PORT" =~ ^[0-9]+$ && "$PORT" -gt 0 && "$PORT" -lt 65535 ]] || {
    echo "start-389ds: bad port '$PORT'" >&2; exit 2; }
TLS_PORT=$((PORT + 1))
[[ -x /usr/sbin/ns-slapd && -f /usr/share/dirsrv/inf/defaults.inf ]] && command -v dscreate >/dev/null \
    && command -v ldapsearch >/dev/null || {
    echo "start-389ds: 389-ds is not installed; run tests/servers/install-389ds.sh" >&2; exit 1; }
[[ "$(id -u)" = 0 ]] || { echo "start-389ds: 389 Directory Server needs root" >&2; exit 1; }
mkdir -p "$STATE_DIR"
STATE_DIR="$(cd "$STATE_DIR" && pwd)"
PIDFILE="$STATE_DIR/ns-slapd.pid"
LOG="$STATE_DIR/ns-slapd.log"
INST="offboard$PORT"
CONF_DIR="/etc/dirsrv/slapd-$INST"
RUN_PID="/run/dirsrv/slapd-$INST.pid"
echo "$INST" >"$STATE_DIR/instance"

if [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    echo "ns-slapd already running (pid $(cat "$PIDFILE")) from $STATE_DIR"
    exit 0
fi
refuse_taken_ports start-389ds 127.0.0.1 "$PORT" "$TLS_PORT"

# The systemctl stand-in, for dscreate and dsctl only.
mkdir -p "$STATE_DIR/bin"
cat >"$STATE_DIR/bin/systemctl" <<'SH'
#!/bin/sh
# systemctl stand-in for lib389: start|stop|is-active [--quiet] dirsrv@INSTANCE
cmd="$1"; shift
[ "$1" = --quiet ] && shift
inst="${1#dirsrv@}"; inst="${inst%.service}"
pidfile="/run/dirsrv/slapd-$inst.pid"
alive() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
case "$cmd" in
    start)
        # Like systemd's Type=notify: return once the server answers on its LDAP port.
        alive || /usr/sbin/ns-slapd -D "/etc/dirsrv/slapd-$inst" -i "$pidfile" || exit 1
        port="$(sed -n 's/^nsslapd-port: //p' "/etc/dirsrv/slapd-$inst/dse.ldif" | head -1)"
        for _ in $(seq 1 300); do
            bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null && exit 0
            sleep 0.1
        done
        exit 1 ;;
    stop)
        if alive; then
            pid="$(cat "$pidfile")"; kill -TERM "$pid"
            for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi ;;
    is-active) alive ;;
    *) exit 0 ;;
esac
SH
chmod 0755 "$STATE_DIR/bin/systemctl"
lib389() { PATH="$STATE_DIR/bin:$PATH" "$@"; }

if [[ ! -f "$CONF_DIR/dse.ldif" ]]; then
    cat >"$STATE_DIR/inst.inf" <<INF
[general]
full_machine_name = localhost
start = True

[slapd]
instance_name = $INST
port = $PORT
secure_port = $TLS_PORT
root_password = $ADMIN_PW
self_sign_cert = True

[backend-userroot]
suffix = $SUFFIX
sample_entries = yes
INF
    if ! lib389 dscreate from-file "$STATE_DIR/inst.inf" >"$STATE_DIR/dscreate.log" 2>&1; then
        echo "start-389ds: dscreate failed; log follows" >&2
        cat "$STATE_DIR/dscreate.log" >&2
        lib389 dsctl "$INST" remove --do-it >/dev/null 2>&1 || true
        exit 1
    fi
    # Our own CA and server cert (the self-signed one names only DNS:localhost).
    TLS="$STATE_DIR/tls"
    make_test_tls "$TLS" localhost "IP:127.0.0.1,DNS:localhost"
    cp "$TLS/ca.pem" "$CONF_DIR/offboard-ca.pem"
    if ! {
        lib389 dsconf "$INST" config replace nsslapd-listenhost=127.0.0.1 \
            nsslapd-securelistenhost=127.0.0.1 &&
        lib389 dsctl "$INST" stop &&
        lib389 dsctl "$INST" tls import-ca "$TLS/ca.pem" "offboard test CA" &&
        lib389 dsctl "$INST" tls import-server-key-cert "$TLS/cert.pem" "$TLS/key.pem"
    } >"$STATE_DIR/configure.log" 2>&1; then
        echo "start-389ds: configuring the instance failed; log follows" >&2
        cat "$STATE_DIR/configure.log" >&2
        lib389 dsctl "$INST" remove --do-it >/dev/null 2>&1 || true
        exit 1
    fi
fi
# A reused instance keeps its CA in the instance's config dir.
mkdir -p "$STATE_DIR/tls"
cp "$CONF_DIR/offboard-ca.pem" "$STATE_DIR/tls/ca.pem"
# Stopped by dsctl above, or left from an earlier start: only ours, by its pid file.
lib389 systemctl stop "dirsrv@$INST"

mkdir -p /run/dirsrv
chown dirsrv:dirsrv /run/dirsrv 2>/dev/null || true
nohup /usr/sbin/ns-slapd -D "$CONF_DIR" -i "$RUN_PID" -d 0 >"$LOG" 2>&1 </dev/null &
PID=$!
echo "$PID" >"$PIDFILE"

for _ in $(seq 1 200); do
    if ! kill -0 "$PID" 2>/dev/null; then
        echo "start-389ds: ns-slapd exited early; log follows" >&2
        tail -50 "$LOG" >&2 || true
        tail -50 "/var/log/dirsrv/slapd-$INST/errors" >&2 || true
        rm -f "$PIDFILE"
        exit 1
    fi
    if LDAPTLS_CACERT="$STATE_DIR/tls/ca.pem" ldapsearch -x -o nettimeout=1 \
        -H "ldaps://127.0.0.1:$TLS_PORT" -b '' -s base namingContexts >/dev/null 2>&1; then
        echo "ns-slapd ready on ldap://127.0.0.1:$PORT and ldaps://127.0.0.1:$TLS_PORT (pid $PID, instance $INST, base $SUFFIX, CA $STATE_DIR/tls/ca.pem, state $STATE_DIR)"
        exit 0
    fi
    sleep 0.1
done
echo "start-389ds: ns-slapd did not answer within 20 s; stopping it" >&2
kill -TERM "$PID" 2>/dev/null || true
rm -f "$PIDFILE"
exit 1
