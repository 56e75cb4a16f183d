# Shared by the stop-*.sh scripts (sourced, not run).

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
