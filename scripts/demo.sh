#!/usr/bin/env bash
# Set up (first run only) and run the main job end to end on BreastMNIST (28 px; CPU is fine):
# train a ResNet-18, honour a deletion request with SalUn-CRA, verify it against three models retrained
# without those patients, and audit the result against the tamper-evident ledger. Outputs go to runs/demo/ (or $1).
# time: see README
source "$(dirname "$0")/env.sh"
out=${1:-$MF_ROOT/runs/demo}
request="$MF_ROOT/sample_requests/breastmnist-malignant-heavy.json"
mkdir -p "$out"
# The ledger stores patient IDs only as keyed hashes: keep the key secret, never in version control.
if [ -z "${MEDFORGET_KEY:-}" ] && [ -z "${MEDFORGET_KEY_FILE:-}" ]; then
  [ -f "$out/medforget.key" ] || medforget key new --out "$out/medforget.key"   # mode 0600, never overwritten
  export MEDFORGET_KEY_FILE="$out/medforget.key"
fi
rm -f "$out/ledger.jsonl" "$out/ledger.jsonl.lock"   # a fresh demo, a fresh ledger
set -x
medforget train --dataset breastmnist --arch resnet18 --epochs 20 --seed 0 \
  --out "$out/model.safetensors" --ledger "$out/ledger.jsonl" --force
medforget info "$out/model.safetensors"
medforget request check -c "$out/model.safetensors" -r "$request"
status=0
medforget unlearn -c "$out/model.safetensors" -r "$request" --method salun-cra \
  --out "$out/model.unlearned.safetensors" --report "$out/report.json" --html "$out/report.html" \
  --ledger "$out/ledger.jsonl" --force || status=$?
# 3 = the verdict failed, 4 = inconclusive: the report says why (and what would settle it); carry on to the audit.
[ "$status" -eq 0 ] || [ "$status" -eq 3 ] || [ "$status" -eq 4 ] || exit "$status"
status=0
medforget audit "$out/model.unlearned.safetensors" --request "$request" --ledger "$out/ledger.jsonl" \
  --html "$out/audit.html" --force || status=$?
# The same for the audit's verdict (a failed or inconclusive membership check), so the ledger is still verified.
[ "$status" -eq 0 ] || [ "$status" -eq 3 ] || [ "$status" -eq 4 ] || exit "$status"
medforget ledger verify "$out/ledger.jsonl"
