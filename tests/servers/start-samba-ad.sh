#!/usr/bin/env bash
# Start a Samba AD DC (realm CORP.TEST, base DC=corp,DC=test) on IP, state under STATE_DIR.
#   usage: start-samba-ad.sh IP STATE_DIR        (IP a loopback address, e.g. 127.0.0.1)
#   env:   SAMBA_ADMIN_PASSWORD  Administrator's password (default Passw0rd!Admin)
#          SAMBA_FRESH=1         re-provision even if STATE_DIR already holds a provision
#          SAMBA_OLD_PASSWORD_ALLOWED_PERIOD  minutes an old password keeps working after a
#                                reset (Samba's default 60, like Windows' OldPasswordAllowedPeriod
#                                for NTLM; it covers LDAP simple binds too); 0 in the tests
# Samba's LDAP ports are fixed (389, 636, 3268, 3269): to run a second DC, give it another
# loopback address (127.0.0.2…); the script adds it to `lo` and stop-samba-ad.sh removes it.
# Provisions with --dns-backend=NONE, rewrites [global] (LDAP service only, one process, bound to
# IP only, logs and sockets under STATE_DIR), makes a CA and a server cert with SAN IP:<IP> in
# STATE_DIR/tls (the CA is STATE_DIR/tls/ca.pem), refuses a taken port, waits until the rootDSE
# answers over LDAPS (20 s), writes STATE_DIR/samba.pid and prints one ready line.
# Stop it with stop-samba-ad.sh STATE_DIR. Needs root.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

IP="${1:?usage: start-samba-ad.sh IP STATE_DIR}"
STATE_DIR="${2:?usage: start-samba-ad.sh IP STATE_DIR}"
ADMIN_PW="${SAMBA_ADMIN_PASSWORD:-Passw0rd!Admin}"

[[ "$IP" =~ ^127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || {
    echo "start-samba-ad: '$IP' is not a loopback IPv4 address" >&2; exit 2; }
command -v samba >/dev/null && command -v samba-tool >/dev/null || {
    echo "start-samba-ad: Samba is not installed; run tests/servers/install-samba.sh" >&2; exit 1; }
[[ "$(id -u)" = 0 ]] || { echo "start-samba-ad: Samba AD DC needs root" >&2; exit 1; }
mkdir -p "$STATE_DIR"
STATE_DIR="$(cd "$STATE_DIR" && pwd)"
PIDFILE="$STATE_DIR/samba.pid"
LOG="$STATE_DIR/samba.log"

if [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    echo "samba AD DC already running (pid $(cat "$PIDFILE")) from $STATE_DIR"
    exit 0
fi

# Only one DC per address: its ports are fixed.
refuse_taken_ports start-samba-ad "$IP" 389 636 3268 3269

# Samba only binds to addresses that exist on an interface.
if [[ "$IP" != 127.0.0.1 ]] && ! ip -o addr show dev lo | grep -q " $IP/"; then
    ip addr add "$IP/32" dev lo
    touch "$STATE_DIR/added-ip"
fi

# Provision (about 4 s), unless it is already there.
if [[ "${SAMBA_FRESH:-}" = 1 ]]; then
    rm -rf "$STATE_DIR/private" "$STATE_DIR/state" "$STATE_DIR/cache" "$STATE_DIR/bind-dns" \
        "$STATE_DIR/etc" "$STATE_DIR"/*.tdb
fi
if [[ ! -f "$STATE_DIR/private/sam.ldb" ]]; then
    mkdir -p "$STATE_DIR/etc"
    # An empty config, or provision merges Debian's /etc/samba/smb.conf (shares, log paths).
    : >"$STATE_DIR/etc/empty.conf"
    samba-tool domain provision -s "$STATE_DIR/etc/empty.conf" --targetdir="$STATE_DIR" \
        --realm=CORP.TEST --domain=CORP --host-name=dc1 --server-role=dc --dns-backend=NONE \
        --use-rfc2307 --adminpass="$ADMIN_PW" --host-ip="$IP" --option="netbios name=DC1" \
        >"$STATE_DIR/provision.log" 2>&1 || {
        echo "start-samba-ad: provisioning failed; log follows" >&2
        cat "$STATE_DIR/provision.log" >&2
        exit 1
    }
fi

# Our own CA and a server cert with SAN IP:<IP> (Samba's self-signed one has no SAN).
TLS="$STATE_DIR/tls"
if [[ ! -f "$TLS/cert.pem" ]]; then
    make_test_tls "$TLS" dc1.corp.test "IP:$IP,DNS:dc1.corp.test,DNS:localhost"
fi

# Rewrite [global] in full: the LDAP service only, in one process, on IP only, everything
# under STATE_DIR. `ldap server require strong auth = no` cannot be set through provision.
CONF="$STATE_DIR/etc/smb.conf"
cat >"$CONF" <<CONF
[global]
	netbios name = DC1
	realm = CORP.TEST
	workgroup = CORP
	server role = active directory domain controller
	idmap_ldb:use rfc2307 = yes
	server services = ldap
	interfaces = $IP
	bind interfaces only = yes
	ldap server require strong auth = no
	tls enabled = yes
	tls keyfile = $TLS/key.pem
	tls certfile = $TLS/cert.pem
	tls cafile = $TLS/ca.pem
	private dir = $STATE_DIR/private
	state directory = $STATE_DIR/state
	cache directory = $STATE_DIR/cache
	lock directory = $STATE_DIR
	binddns dir = $STATE_DIR/bind-dns
	pid directory = $STATE_DIR/run
	ncalrpc dir = $STATE_DIR/run/ncalrpc
	winbindd socket directory = $STATE_DIR/run/winbindd
	ntp signd socket directory = $STATE_DIR/run/ntp_signd
	log file = $STATE_DIR/samba-debug.log
CONF
if [[ -n "${SAMBA_OLD_PASSWORD_ALLOWED_PERIOD:-}" ]]; then
    [[ "$SAMBA_OLD_PASSWORD_ALLOWED_PERIOD" =~ ^[0-9]+$ ]] || {
        echo "start-samba-ad: SAMBA_OLD_PASSWORD_ALLOWED_PERIOD must be minutes" >&2; exit 2; }
    printf '\told password allowed period = %s\n' "$SAMBA_OLD_PASSWORD_ALLOWED_PERIOD" >>"$CONF"
fi
mkdir -p "$STATE_DIR/run"

# --maximum-runtime is a safety net against a leaked server (90 min).
nohup samba --foreground --no-process-group --debug-stdout -M single -s "$CONF" \
    --maximum-runtime=5400 >"$LOG" 2>&1 </dev/null &
PID=$!
echo "$PID" >"$PIDFILE"

for _ in $(seq 1 200); do
    if ! kill -0 "$PID" 2>/dev/null; then
        echo "start-samba-ad: samba exited early; log follows" >&2
        tail -50 "$LOG" >&2 || true
        rm -f "$PIDFILE"
        exit 1
    fi
    if LDAPTLS_CACERT="$TLS/ca.pem" ldapsearch -x -o nettimeout=1 -H "ldaps://$IP" -b '' \
        -s base defaultNamingContext >/dev/null 2>&1; then
        echo "samba AD DC ready on ldaps://$IP:636 and ldap://$IP:389 (pid $PID, base DC=corp,DC=test, CA $TLS/ca.pem, state $STATE_DIR)"
        exit 0
    fi
    sleep 0.1
done
echo "start-samba-ad: samba did not answer within 20 s; stopping it" >&2
kill -TERM "$PID" 2>/dev/null || true
rm -f "$PIDFILE"
exit 1
