#!/usr/bin/env bash
# Start OpenLDAP slapd (suffix dc=corp,dc=test, rootdn cn=admin,dc=corp,dc=test) on
# ldap://127.0.0.1:PORT and ldaps://127.0.0.1:PORT+1, state under STATE_DIR.
#   usage: start-openldap.sh PORT STATE_DIR
#   env:   OPENLDAP_ADMIN_PASSWORD  the rootdn's password (default Passw0rd!Admin)
# Builds a cn=config with back_mdb and the overlays memberof, refint (on member) and ppolicy
# (default policy cn=default,ou=policies,dc=corp,dc=test with pwdLockout), TLS from a CA the
# script makes (STATE_DIR/tls/ca.pem; server cert SAN IP:127.0.0.1), and base entries
# ou=people, ou=groups, ou=policies and the group cn=staff,ou=groups. Refuses a taken port,
# waits until the rootDSE answers over LDAPS (20 s), writes STATE_DIR/slapd.pid and prints one
# ready line. Stop it with stop-openldap.sh STATE_DIR. Runs unprivileged too.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

PORT="${1:?usage: start-openldap.sh PORT STATE_DIR}"
STATE_DIR="${2:?usage: start-openldap.sh PORT STATE_DIR}"
ADMIN_PW="${OPENLDAP_ADMIN_PASSWORD:-Passw0rd!Admin}"
SUFFIX="dc=corp,dc=test"

[[ "$PORT" =~ ^[0-9]+$ && "$PORT" -gt 0 && "$PORT" -lt 65535 ]] || {
    echo "start-openldap: bad port '$PORT'" >&2; exit 2; }
TLS_PORT=$((PORT + 1))
[[ -x /usr/sbin/slapd ]] && command -v slapadd >/dev/null && command -v ldapsearch >/dev/null || {
    echo "start-openldap: slapd is not installed; run tests/servers/install-openldap.sh" >&2; exit 1; }
mkdir -p "$STATE_DIR"
STATE_DIR="$(cd "$STATE_DIR" && pwd)"
PIDFILE="$STATE_DIR/slapd.pid"
LOG="$STATE_DIR/slapd.log"

if [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    echo "slapd already running (pid $(cat "$PIDFILE")) from $STATE_DIR"
    exit 0
fi
refuse_taken_ports start-openldap 127.0.0.1 "$PORT" "$TLS_PORT"

TLS="$STATE_DIR/tls"
if [[ ! -f "$TLS/cert.pem" ]]; then
    make_test_tls "$TLS" localhost "IP:127.0.0.1,DNS:localhost"
fi

if [[ ! -d "$STATE_DIR/slapd.d/cn=config" ]]; then
    rm -rf "$STATE_DIR/slapd.d" "$STATE_DIR/data"
    mkdir -p "$STATE_DIR/slapd.d" "$STATE_DIR/data"
    ROOT_HASH="$(slappasswd -s "$ADMIN_PW")"
    cat >"$STATE_DIR/config.ldif" <<LDIF
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: $STATE_DIR/slapd.run.pid
olcTLSCACertificateFile: $TLS/ca.pem
olcTLSCertificateFile: $TLS/cert.pem
olcTLSCertificateKeyFile: $TLS/key.pem

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb
olcModuleLoad: ppolicy
olcModuleLoad: memberof
olcModuleLoad: refint

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif
include: file:///etc/ldap/schema/cosine.ldif
include: file:///etc/ldap/schema/nis.ldif
include: file:///etc/ldap/schema/inetorgperson.ldif

dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend
olcAccess: {0}to dn.base="" by * read
olcAccess: {1}to dn.base="cn=subschema" by * read

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: {0}to * by * none

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcDbDirectory: $STATE_DIR/data
olcSuffix: $SUFFIX
olcRootDN: cn=admin,$SUFFIX
olcRootPW: $ROOT_HASH
olcDbIndex: objectClass eq
olcDbIndex: uid,mail eq
olcDbIndex: member eq
olcAccess: {0}to attrs=userPassword by self write by anonymous auth by * none
olcAccess: {1}to * by self read by users read by * none

dn: olcOverlay={0}memberof,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: {0}memberof
olcMemberOfRefint: TRUE
olcMemberOfGroupOC: groupOfNames
olcMemberOfMemberAD: member
olcMemberOfMemberOfAD: memberOf

dn: olcOverlay={1}refint,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcRefintConfig
olcOverlay: {1}refint
olcRefintAttribute: member
olcRefintNothing: cn=admin,$SUFFIX

dn: olcOverlay={2}ppolicy,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcPPolicyConfig
olcOverlay: {2}ppolicy
olcPPolicyDefault: cn=default,ou=policies,$SUFFIX
olcPPolicyUseLockout: TRUE
LDIF
    cat >"$STATE_DIR/base.ldif" <<LDIF
dn: $SUFFIX
objectClass: dcObject
objectClass: organization
dc: corp
o: Corp Test

dn: ou=people,$SUFFIX
objectClass: organizationalUnit
ou: people

dn: ou=groups,$SUFFIX
objectClass: organizationalUnit
ou: groups

dn: ou=policies,$SUFFIX
objectClass: organizationalUnit
ou: policies

dn: cn=default,ou=policies,$SUFFIX
objectClass: device
objectClass: pwdPolicy
cn: default
pwdAttribute: userPassword
pwdLockout: TRUE
pwdMaxFailure: 5

dn: cn=staff,ou=groups,$SUFFIX
objectClass: groupOfNames
cn: staff
member: cn=admin,$SUFFIX
LDIF
    if ! { slapadd -n0 -F "$STATE_DIR/slapd.d" -l "$STATE_DIR/config.ldif" &&
        slapadd -n1 -F "$STATE_DIR/slapd.d" -l "$STATE_DIR/base.ldif"; } >"$STATE_DIR/slapadd.log" 2>&1; then
        echo "start-openldap: slapadd failed; log follows" >&2
        cat "$STATE_DIR/slapadd.log" >&2
        rm -rf "$STATE_DIR/slapd.d"
        exit 1
    fi
fi

nohup /usr/sbin/slapd -d 0 -F "$STATE_DIR/slapd.d" \
    -h "ldap://127.0.0.1:$PORT/ ldaps://127.0.0.1:$TLS_PORT/" >"$LOG" 2>&1 </dev/null &
PID=$!
echo "$PID" >"$PIDFILE"

for _ in $(seq 1 200); do
    if ! kill -0 "$PID" 2>/dev/null; then
        echo "start-openldap: slapd exited early; log follows" >&2
        tail -50 "$LOG" >&2 || true
        rm -f "$PIDFILE"
        exit 1
    fi
    if LDAPTLS_CACERT="$TLS/ca.pem" ldapsearch -x -o nettimeout=1 -H "ldaps://127.0.0.1:$TLS_PORT" \
        -b '' -s base namingContexts >/dev/null 2>&1; then
        echo "slapd ready on ldap://127.0.0.1:$PORT and ldaps://127.0.0.1:$TLS_PORT (pid $PID, base $SUFFIX, CA $TLS/ca.pem, state $STATE_DIR)"
        exit 0
    fi
    sleep 0.1
done
echo "start-openldap: slapd did not answer within 20 s; stopping it" >&2
kill -INT "$PID" 2>/dev/null || true
rm -f "$PIDFILE"
exit 1
