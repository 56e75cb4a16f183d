#!/usr/bin/env bash
# Install scim2-server (PyPI, pinned) into a venv under the test cache. Idempotent: exits at
# once when the pinned version is already there.
#   OFFBOARD_TEST_CACHE  cache root (default ~/.cache/offboard-tests)
set -euo pipefail

VERSION="0.8.3"
CACHE="${OFFBOARD_TEST_CACHE:-$HOME/.cache/offboard-tests}"
VENV="$CACHE/scim2-server"
MARK="$VENV/.offboard-installed-$VERSION"

if [[ -f "$MARK" && -x "$VENV/bin/scim2-server" ]]; then
    echo "scim2-server $VERSION already installed in $VENV"
    exit 0
fi

command -v python3 >/dev/null || { echo "install-scim: python3 is required" >&2; exit 1; }
mkdir -p "$CACHE"
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "scim2-server==$VERSION"
"$VENV/bin/scim2-server" --help >/dev/null
touch "$MARK"
echo "scim2-server $VERSION installed in $VENV"
