#!/usr/bin/env bash
# Fetch the vendors' own API descriptions that tests/common/vendor_docs.rs checks our requests
# against: Google's Discovery documents from the PyPI package google-api-python-client and
# GitHub's OpenAPI description from the npm package @octokit/openapi, both pinned, each file
# checked against the sha256 pinned here (a changed upstream file stops the run). They go into a
# cache under target/ and are never committed. Idempotent: exits at once when every file is there
# with its pinned hash.
#   OFFBOARD_VENDOR_DOCS  where the files go (default target/vendor-docs; the tests read the same
#                         variable, with the same default)
set -euo pipefail
cd "$(dirname "$0")/.."

GOOGLE_CLIENT_VERSION="2.202.0"
OCTOKIT_OPENAPI_VERSION="23.0.2"
DIR="${OFFBOARD_VENDOR_DOCS:-${CARGO_TARGET_DIR:-target}/vendor-docs}"

# File in $DIR, its sha256.
PINNED=(
    "admin.directory_v1.json    c1c0bdde7a36ed12dbde5e68017d885d44d18bc745ff51cccf0ebe4af7e5897c"
    "admin.datatransfer_v1.json 5f47ec7fef8797ea38be7441ba55ce8c911662e79dfe7566c6ba8ce3bac5c8e8"
    "gmail.v1.json              bfe9c4bf485e30971775274ce7b41c527d06658c5a1fb2c5fb05582a3295dadc"
    "licensing.v1.json          b703d929e5771290ee8a281163cacb58aac4809e17844ee3019b60474473defb"
    "api.github.com.json        829b4bebb19a53133289f7b0bc819f4f1118115821db2ca9f25e9ee995a7da2a"
)

sha256() { sha256sum "$1" | cut -d' ' -f1; }

# All present with their pinned hashes (in DIR, or in the directory given).
all_pinned() {
    local entry file want
    for entry in "${PINNED[@]}"; do
        read -r file want <<<"$entry"
        [[ -f "$1/$file" && "$(sha256 "$1/$file")" == "$want" ]] || return 1
    done
}

if all_pinned "$DIR"; then
    echo "vendor API descriptions already in $DIR"
    exit 0
fi

command -v python3 >/dev/null || { echo "vendor-docs: python3 is required" >&2; exit 1; }
command -v npm >/dev/null || { echo "vendor-docs: npm is required (Debian: npm)" >&2; exit 1; }
mkdir -p "$(dirname "$DIR")"
WORK="$(mktemp -d "$(dirname "$DIR")/.vendor-docs.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/out"

echo "==> google-api-python-client $GOOGLE_CLIENT_VERSION (PyPI)"
PIP=(python3 -m pip)
if ! python3 -m pip --version >/dev/null 2>&1; then
    # A Debian python3 without pip: the one in a throwaway venv.
    python3 -m venv "$WORK/venv"
    PIP=("$WORK/venv/bin/python3" -m pip)
fi
"${PIP[@]}" download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    "google-api-python-client==$GOOGLE_CLIENT_VERSION" -d "$WORK/pypi"
python3 - "$WORK/pypi" "$WORK/out" <<'EOF'
import pathlib, sys, zipfile
src, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
(wheel,) = src.glob("google_api_python_client-*.whl")
with zipfile.ZipFile(wheel) as z:
    for name in ["admin.directory_v1.json", "admin.datatransfer_v1.json", "gmail.v1.json",
                 "licensing.v1.json"]:
        (out / name).write_bytes(z.read("googleapiclient/discovery_cache/documents/" + name))
EOF

echo "==> @octokit/openapi $OCTOKIT_OPENAPI_VERSION (npm)"
mkdir "$WORK/npm"
(cd "$WORK/npm" && npm pack --silent --loglevel=error "@octokit/openapi@$OCTOKIT_OPENAPI_VERSION" >/dev/null)
tar -xzf "$WORK/npm"/octokit-openapi-*.tgz -C "$WORK/npm" package/generated/api.github.com.json
mv "$WORK/npm/package/generated/api.github.com.json" "$WORK/out/"

bad=0
for entry in "${PINNED[@]}"; do
    read -r file want <<<"$entry"
    got="$(sha256 "$WORK/out/$file")"
    if [[ "$got" != "$want" ]]; then
        echo "vendor-docs: $file has sha256 $got, pinned $want (the published file changed:" \
             "review it, then update the pin in tests/vendor-docs.sh)" >&2
        bad=1
    fi
done
[[ $bad == 0 ]] || exit 1

rm -rf "$DIR"
mv "$WORK/out" "$DIR"
printf 'google-api-python-client %s\n@octokit/openapi %s\n' \
    "$GOOGLE_CLIENT_VERSION" "$OCTOKIT_OPENAPI_VERSION" >"$DIR/VERSIONS"
echo "vendor API descriptions in $DIR"
