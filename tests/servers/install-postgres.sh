#!/usr/bin/env bash
# Install PostgreSQL (server and client) from Debian's packages, without starting the packaged
# cluster: the tests start throw-away clusters of their own (start-postgres.sh). Idempotent: exits
# at once when initdb is there. Needs root to install.
set -euo pipefail

find_bindir() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x "$d/initdb" && -x "$d/postgres" ]] && { echo "$d"; return 0; }
    done
    return 1
}

if BIN="$(find_bindir)"; then
    echo "postgresql already installed ($("$BIN/postgres" --version))"
    exit 0
fi
[[ "$(id -u)" = 0 ]] || { echo "install-postgres: needs root to install postgresql" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
# No packaged cluster: the tests make their own.
mkdir -p /etc/postgresql-common/createcluster.d
echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.d/offboard-tests.conf
PKGS=(postgresql postgresql-client openssl)
if ! apt-get install -y -qq --no-install-recommends "${PKGS[@]}" >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${PKGS[@]}" >/dev/null
fi
BIN="$(find_bindir)" || { echo "install-postgres: no initdb after installing" >&2; exit 1; }
echo "postgresql installed ($("$BIN/postgres" --version))"
