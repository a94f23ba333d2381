#!/usr/bin/env bash
# Set up (first run only) and run the test suite: ruff, then pytest on real MedMNIST data.
source "$(dirname "$0")/env.sh"
cd "$MF_ROOT"
ruff check medforget tests benchmarks
python -m pytest -q "$@"
