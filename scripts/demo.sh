#!/usr/bin/env bash
# Set up (first run only) and run the main job end to end on BreastMNIST (28 px, CPU is fine):
# train a ResNet-18, then show the checkpoint's provenance. Outputs go to runs/demo/ (or $1).
source "$(dirname "$0")/env.sh"
out=${1:-$MF_ROOT/runs/demo}
mkdir -p "$out"
set -x
medforget train --dataset breastmnist --arch resnet18 --epochs 20 --seed 0 \
  --out "$out/model.safetensors" --force
medforget info "$out/model.safetensors"
