#!/usr/bin/env bash
# Install OpenLDAP slapd and ldap-utils from Debian's packages, without the packaged instance
# (the debconf preseed stops it from building /etc/ldap/slapd.d and starting on *:389, which
# would clash with Samba). Idempotent: exits at once when everything is there. Needs root.
set -euo pipefail

PKGS=(slapd ldap-utils openssl)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]] && [[ -x /usr/sbin/slapd ]]; then
    echo "slapd already installed ($(dpkg-query -W -f='${Version}' slapd))"
    exit 0
fi
[[ "$(id -u)" = 0 ]] || { echo "install-openldap: needs root to install ${missing[*]}" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
echo 'slapd slapd/no_configuration boolean true' | debconf-set-selections
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "slapd installed ($(dpkg-query -W -f='${Version}' slapd))"
