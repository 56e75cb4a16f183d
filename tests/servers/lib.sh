# Shared by the start-*.sh and stop-*.sh scripts (sourced, not run).

# stop_pid NAME PIDFILE SIGNAL SECONDS
# Send SIGNAL to the PID recorded in PIDFILE (only that process), wait up to SECONDS for it to
# exit, then SIGKILL it; remove PIDFILE. No PIDFILE: nothing to do.
stop_pid() {
    local name="$1" pidfile="$2" signal="$3" seconds="$4" pid
    if [[ ! -f "$pidfile" ]]; then
        echo "$name not running (no $pidfile)"
        return 0
    fi
    pid="$(cat "$pidfile")"
    [[ "$pid" =~ ^[0-9]+$ ]] || { echo "stop $name: bad pid file $pidfile" >&2; return 1; }
    if kill -0 "$pid" 2>/dev/null; then
        kill "-$signal" "$pid"
        for _ in $(seq 1 $((seconds * 10))); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "stop $name: pid $pid ignored SIG$signal for $seconds s; sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$pidfile"
    echo "$name stopped (pid $pid)"
}

# refuse_taken_ports NAME IP PORT...
# Exit 1 with a message if anything already listens on one of the PORTs at IP.
refuse_taken_ports() {
    local name="$1" ip="$2" port
    shift 2
    for port in "$@"; do
        if (exec 3<>"/dev/tcp/$ip/$port") 2>/dev/null; then
            echo "$name: port $port on $ip is already in use" >&2
            exit 1
        fi
    done
}

# make_test_tls DIR CN SAN
# A throwaway CA (DIR/ca.pem) and a server key and certificate it signs (DIR/key.pem,
# DIR/cert.pem) for CN with subjectAltName SAN (e.g. "IP:127.0.0.1,DNS:localhost"), valid 30
# days; the keys are 0600.
make_test_tls() {
    local tls="$1" cn="$2" san="$3"
    mkdir -p "$tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=offboard test CA" \
        -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$cn" \
        -keyout "$tls/key.pem" -out "$tls/req.csr" 2>/dev/null
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san" >"$tls/ext.cnf"
    openssl x509 -req -in "$tls/req.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
        -CAcreateserial -days 30 -extfile "$tls/ext.cnf" -out "$tls/cert.pem" 2>/dev/null
    chmod 0600 "$tls/key.pem" "$tls/ca.key"
}
