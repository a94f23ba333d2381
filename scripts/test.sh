#!/usr/bin/env bash
# Set up (first run only) and run the test suite: ruff, then pytest on real MedMNIST data.
#
# One single-threaded pytest-xdist worker per core, a test file per worker at a time (a module's trained
# fixtures are built once; tests/conftest.py shares the trained checkpoints and the retrain cache between
# workers). MEDFORGET_TEST_WORKERS=0 runs everything in this process.
source "$(dirname "$0")/env.sh"
cd "$MF_ROOT"
ruff check medforget tests benchmarks
workers=${MEDFORGET_TEST_WORKERS:-auto}
if [ "$workers" = 0 ]; then
  python -m pytest -q "$@"
else
  OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} python -m pytest -q -n "$workers" --dist loadfile "$@"
fi
