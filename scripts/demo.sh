#!/usr/bin/env bash
# Set up (first run only) and run the main job end to end on BreastMNIST (28 px; CPU is fine, ~6 minutes):
# train a ResNet-18, show its provenance, then honour a deletion request with SalUn-CRA and verify it
# against a model retrained without those patients. Outputs go to runs/demo/ (or $1).
source "$(dirname "$0")/env.sh"
out=${1:-$MF_ROOT/runs/demo}
mkdir -p "$out"
set -x
medforget train --dataset breastmnist --arch resnet18 --epochs 20 --seed 0 \
  --out "$out/model.safetensors" --force
medforget info "$out/model.safetensors"
medforget request check -c "$out/model.safetensors" -r "$MF_ROOT/sample_requests/breastmnist-malignant-heavy.json"
medforget unlearn -c "$out/model.safetensors" -r "$MF_ROOT/sample_requests/breastmnist-malignant-heavy.json" \
  --method salun-cra --out "$out/model.unlearned.safetensors" --report "$out/report.json" --force
