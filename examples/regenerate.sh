#!/usr/bin/env bash
# Rebuilds the example evidence in this folder from a real sandbox departure: the demo run
# without a terminal (manual steps stay pending), then each manual step confirmed by its owner,
# as would happen over the following days, then one `verify`. Keeps the evidence, its signature,
# the signer's allowed_signers line, the journal, the evidence as a page (evidence-page.html) and
# a screenshot of it (evidence-page.png), and points README.md at the new file.
# Run from the repository root:
#   bash examples/regenerate.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked -q
bin=target/debug/offboard
state=$(mktemp -d)
trap 'rm -rf "$state"' EXIT
export OFFBOARD_STATE_DIR="$state" OFFBOARD_ACTOR="it-oncall@example.com" NO_COLOR=1

"$bin" demo --non-interactive >/dev/null 2>&1 || test $? -eq 3
id=$(ls "$state/departures")
OFFBOARD_ACTOR="facilities@example.com" "$bin" -q confirm "$id" laptop-returned \
  --field tracking_number=1Z999AA10123456784 --note "returned by courier" >/dev/null
OFFBOARD_ACTOR="facilities@example.com" "$bin" -q confirm "$id" badge \
  --not-applicable "remote contractor, no badge issued" >/dev/null
OFFBOARD_ACTOR="payroll@example.com" "$bin" -q confirm "$id" final-pay --field payroll_ref=PR-2026-1187 >/dev/null
OFFBOARD_ACTOR="manager@example.com" "$bin" -q confirm "$id" handover --field notes="repos and docs moved to bob" >/dev/null
"$bin" -q verify "$id" >/dev/null

rm -f examples/*.json examples/*.json.sig examples/allowed_signers examples/journal.jsonl
cp "$state/departures/$id/$id.json" examples/
cp "$state/departures/$id/$id.json.sig" examples/
cp "$state/departures/$id/journal.jsonl" examples/
"$bin" -q --json keys show | python3 -c 'import json,sys; print(json.load(sys.stdin)["allowed_signers"])' > examples/allowed_signers
# The page a person reads, and a picture of it at A4 width, 96 dpi (needs Debian's chromium).
"$bin" -q evidence show "examples/$id.json" --format html > examples/evidence-page.html
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=794,1123 \
  --screenshot="$PWD/examples/evidence-page.png" "file://$PWD/examples/evidence-page.html" 2>/dev/null
# examples/README.md names the file: point it at the new one.
sed -i "s/^id=.*/id=$id/" examples/README.md
ssh-keygen -Y verify -f examples/allowed_signers -I offboard -n offboard-evidence \
  -s "examples/$id.json.sig" < "examples/$id.json"
"$bin" evidence verify "examples/$id.json" --allowed-signers examples/allowed_signers
echo "examples/$id.json"
