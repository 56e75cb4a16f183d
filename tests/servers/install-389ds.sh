#!/usr/bin/env bash
# Install 389 Directory Server (ns-slapd, dscreate/dsctl/dsconf from lib389) and ldap-utils from
# Debian's packages. Idempotent: exits at once when everything is there. Needs root (apt-get).
# python3-lib389 (dscreate) can outlive a removed 389-ds-base, so "installed" means ns-slapd and
# lib389's defaults.inf are both present, not just that dscreate is on PATH.
set -euo pipefail

PKGS=(389-ds-base ldap-utils openssl)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]] && [[ -x /usr/sbin/ns-slapd ]] && [[ -f /usr/share/dirsrv/inf/defaults.inf ]] \
    && command -v dscreate >/dev/null; then
    echo "389-ds already installed ($(dpkg-query -W -f='${Version}' 389-ds-base))"
    exit 0
fi
[[ ${#missing[@]} -gt 0 ]] || missing=(389-ds-base)
[[ "$(id -u)" = 0 ]] || { echo "install-389ds: needs root to install ${missing[*]}" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "389-ds installed ($(dpkg-query -W -f='${Version}' 389-ds-base))"
