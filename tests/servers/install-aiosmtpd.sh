#!/usr/bin/env bash
# Install aiosmtpd (PyPI, pinned) into a venv under the test cache: the real SMTP server the
# `offboard remind` email tests deliver to. Idempotent: exits at once when the pinned version is
# already there.
#   OFFBOARD_TEST_CACHE  cache root (default ~/.cache/offboard-tests)
set -euo pipefail

VERSION="1.4.6"
CACHE="${OFFBOARD_TEST_CACHE:-$HOME/.cache/offboard-tests}"
VENV="$CACHE/aiosmtpd"
MARK="$VENV/.offboard-installed-$VERSION"

if [[ -f "$MARK" && -x "$VENV/bin/python3" ]]; then
    echo "aiosmtpd $VERSION already installed in $VENV"
    exit 0
fi

command -v python3 >/dev/null || { echo "install-aiosmtpd: python3 is required" >&2; exit 1; }
mkdir -p "$CACHE"
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "aiosmtpd==$VERSION"
"$VENV/bin/python3" -c 'import aiosmtpd.controller'
touch "$MARK"
echo "aiosmtpd $VERSION installed in $VENV"
