#!/usr/bin/env bash
# Install Samba AD DC from Debian's packages (plus ldap-utils and openssl for the start script).
# Idempotent: exits at once when everything is there. Needs root (apt-get).
# `samba-ad-provision` is only a Recommends of samba-ad-dc, but provisioning fails without it.
set -euo pipefail

PKGS=(samba-ad-dc samba-ad-provision ldap-utils openssl)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]] && command -v samba >/dev/null && command -v samba-tool >/dev/null; then
    echo "samba AD DC already installed ($(samba --version))"
    exit 0
fi
[[ "$(id -u)" = 0 ]] || { echo "install-samba: needs root to install ${missing[*]}" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "samba AD DC installed ($(samba --version))"
