#!/usr/bin/env bash
# The whole test suite, as CI runs it (`.ci/run`) and as the README tells you to run it.
#
# It installs what the tests need and cannot build from crates.io: ssh-keygen (to check that
# OpenSSH accepts our evidence signatures), jq (examples/README.md uses it), Chromium and a font
# (to render the evidence page headless), Python (for the real scim2-server and OpenBao from
# PyPI, aiosmtpd for the reminder emails, and to read bundle zips), Samba AD DC, OpenLDAP slapd, 389 Directory Server, Redmine and PostgreSQL
# (Debian packages; installing them needs root), npm, and the vendors' own API descriptions that
# requests are checked against (tests/vendor-docs.sh, pinned, into target/vendor-docs). Then:
# formatting, clippy with warnings denied, every test.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v ssh-keygen >/dev/null || need_apt+=(openssh-client)
command -v python3 >/dev/null || need_apt+=(python3)
command -v jq >/dev/null || need_apt+=(jq)
command -v npm >/dev/null || need_apt+=(npm)
command -v chromium >/dev/null || need_apt+=(chromium)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_apt+=(fonts-dejavu-core)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
# The scheduling units in docs/units/ are checked with systemd-analyze and PyYAML.
command -v systemd-analyze >/dev/null || need_apt+=(systemd)
python3 -c 'import yaml' 2>/dev/null || need_apt+=(python3-yaml)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "==> installing ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "tests/run.sh: please install: ${need_apt[*]} (or run as root)" >&2
    exit 1
  fi
fi

echo "==> real test servers"
bash tests/servers/install-scim.sh
bash tests/servers/install-openbao.sh
bash tests/servers/install-samba.sh
bash tests/servers/install-openldap.sh
bash tests/servers/install-389ds.sh
bash tests/servers/install-redmine.sh
bash tests/servers/install-aiosmtpd.sh
bash tests/servers/install-postgres.sh

echo "==> vendor API descriptions"
export OFFBOARD_VENDOR_DOCS="${OFFBOARD_VENDOR_DOCS:-$PWD/target/vendor-docs}"
bash tests/vendor-docs.sh

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --locked --all-targets -- -D warnings

echo "==> cargo test"
cargo test --locked --all-targets
