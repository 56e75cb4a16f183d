#!/usr/bin/env bash
# Start a Redmine 5 instance of its own (SQLite, REST API on, admin API key) on
# http://127.0.0.1:PORT, state under STATE_DIR.
#   usage: start-redmine.sh PORT STATE_DIR
# Debian's Redmine is multi-instance: the instance `offboardPORT` is a link
# /var/lib/redmine/offboardPORT -> STATE_DIR/instance (config/database.yml, the SQLite file,
# secret_key.txt, files/, log/, tmp/), so it needs root. The first instance runs the migrations,
# loads the default data (trackers, statuses: 5 is Closed) and enables the REST API, creates the
# project `offboarding` (issue tracking) and the admin's API key, then keeps that database as a
# template in $OFFBOARD_TEST_CACHE (default ~/.cache/offboard-tests) for the next ones (with the
# admin's API key beside it: the same admin, the same key).
# The admin's API key is written to STATE_DIR/api_key (0600). Refuses a taken port, waits until
# GET /issues.json answers (60 s), writes STATE_DIR/redmine.pid and prints one ready line.
# Stop it with stop-redmine.sh STATE_DIR.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

PORT="${1:?usage: start-redmine.sh PORT STATE_DIR}"
STATE_DIR="${2:?usage: start-redmine.sh PORT STATE_DIR}"
[[ "$PORT" =~ ^[0-9]+$ && "$PORT" -gt 0 && "$PORT" -lt 65536 ]] || {
    echo "start-redmine: bad port '$PORT'" >&2; exit 2; }
[[ -f /usr/share/redmine/Gemfile ]] && command -v thin >/dev/null || {
    echo "start-redmine: redmine is not installed; run tests/servers/install-redmine.sh" >&2; exit 1; }
[[ "$(id -u)" = 0 ]] || { echo "start-redmine: needs root (the instance lives in /var/lib/redmine)" >&2; exit 1; }
CACHE="${OFFBOARD_TEST_CACHE:-$HOME/.cache/offboard-tests}"
TEMPLATE="$CACHE/redmine-5-template.sqlite3"
mkdir -p "$STATE_DIR"
STATE_DIR="$(cd "$STATE_DIR" && pwd)"
PIDFILE="$STATE_DIR/redmine.pid"
LOG="$STATE_DIR/redmine.log"
INSTANCE="offboard$PORT"
LINK="/var/lib/redmine/$INSTANCE"

if [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    echo "redmine already running (pid $(cat "$PIDFILE")) from $STATE_DIR"
    exit 0
fi
refuse_taken_ports start-redmine 127.0.0.1 "$PORT"

INST="$STATE_DIR/instance"
mkdir -p "$INST/config" "$INST/files" "$INST/log" "$INST/tmp/cache" "$INST/db"
cat >"$INST/config/database.yml" <<YML
production:
  adapter: sqlite3
  database: $INST/db/redmine.sqlite3
  pool: 5
  timeout: 5000
YML
cat >"$INST/config/configuration.yml" <<YML
production:
  attachments_storage_path: $INST/files
YML
[[ -f "$INST/config/secret_key.txt" ]] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$INST/config/secret_key.txt"
echo "$INSTANCE" >"$STATE_DIR/instance_name"
if [[ -L "$LINK" ]]; then
    rm -f "$LINK"
elif [[ -e "$LINK" ]]; then
    echo "start-redmine: $LINK exists and is not ours" >&2; exit 1
fi
ln -s "$INST" "$LINK"

export REDMINE_INSTANCE="$INSTANCE" RAILS_ENV=production
cd /usr/share/redmine

SETUP='
Setting.rest_api_enabled = "1"
admin = User.find_by_login("admin")
admin.password = admin.password_confirmation = "Passw0rd!Admin"
admin.must_change_passwd = false
admin.save!
unless Project.find_by_identifier("offboarding")
  Project.create!(name: "Offboarding", identifier: "offboarding", is_public: false,
                  enabled_module_names: ["issue_tracking"], trackers: Tracker.all.to_a)
end
File.write(ENV.fetch("API_KEY_FILE"), admin.api_key)
'
if [[ ! -f "$INST/db/redmine.sqlite3" ]]; then
    if [[ -f "$TEMPLATE" ]]; then
        cp "$TEMPLATE" "$INST/db/redmine.sqlite3"
        cp "$TEMPLATE.api_key" "$STATE_DIR/api_key"
    else
        t0=$(date +%s)
        if ! { bundle exec rake db:migrate &&
               REDMINE_LANG=en bundle exec rake redmine:load_default_data &&
               API_KEY_FILE="$STATE_DIR/api_key" bundle exec rails runner "$SETUP"; } >"$STATE_DIR/setup.log" 2>&1; then
            echo "start-redmine: setting up the database failed; log follows" >&2
            tail -40 "$STATE_DIR/setup.log" >&2
            rm -f "$INST/db/redmine.sqlite3" "$LINK"
            exit 1
        fi
        mkdir -p "$CACHE"
        cp "$STATE_DIR/api_key" "$TEMPLATE.api_key.$$" && mv "$TEMPLATE.api_key.$$" "$TEMPLATE.api_key"
        cp "$INST/db/redmine.sqlite3" "$TEMPLATE.$$" && mv "$TEMPLATE.$$" "$TEMPLATE"
        echo "redmine database set up in $(( $(date +%s) - t0 )) s (kept as $TEMPLATE)"
    fi
fi
[[ -s "$STATE_DIR/api_key" ]] || { echo "start-redmine: no admin API key" >&2; exit 1; }
chmod 0600 "$STATE_DIR/api_key"

nohup bundle exec rails server -b 127.0.0.1 -p "$PORT" -e production \
    -P "$STATE_DIR/rails.pid" >"$LOG" 2>&1 </dev/null &
PID=$!
echo "$PID" >"$PIDFILE"

for _ in $(seq 1 600); do
    if ! kill -0 "$PID" 2>/dev/null; then
        echo "start-redmine: redmine exited early; log follows" >&2
        tail -50 "$LOG" >&2 || true
        rm -f "$PIDFILE" "$LINK"
        exit 1
    fi
    code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/issues.json" 2>/dev/null || true)"
    if [[ "$code" =~ ^[2-4][0-9][0-9]$ ]]; then
        echo "redmine ready on http://127.0.0.1:$PORT (pid $PID, instance $INSTANCE, project offboarding, admin API key in $STATE_DIR/api_key)"
        exit 0
    fi
    sleep 0.1
done
echo "start-redmine: redmine did not answer within 60 s; stopping it" >&2
kill -TERM "$PID" 2>/dev/null || true
rm -f "$PIDFILE" "$LINK"
exit 1
