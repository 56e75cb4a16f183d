#!/usr/bin/env bash
# Install Redmine 5 (SQLite) and the thin web server from Debian's packages, without the packaged
# `default` instance (the debconf preseed keeps dbconfig-common from creating a database; each test
# builds its own instance with start-redmine.sh). `thin` is needed: without it `rails server`
# finds no web server; curl is how start-redmine.sh sees it answer. Idempotent: exits at once when everything is there. Needs root.
# About 80 s on a fresh machine.
set -euo pipefail

PKGS=(redmine redmine-sqlite thin curl)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]] && [[ -f /usr/share/redmine/Gemfile ]]; then
    echo "redmine already installed ($(dpkg-query -W -f='${Version}' redmine))"
    exit 0
fi
[[ "$(id -u)" = 0 ]] || { echo "install-redmine: needs root to install ${missing[*]}" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
echo "redmine redmine/instances/default/dbconfig-install boolean false" | debconf-set-selections
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "redmine installed ($(dpkg-query -W -f='${Version}' redmine))"
