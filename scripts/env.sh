# Sourced by scripts/demo.sh, scripts/test.sh and .ci/run: find or build the virtualenv, set the data root.
#
# The venv lives outside the clone (default ~/.cache/medforget/venv-<hash of the dependency list>),
# so fresh clones and CI reuse it until pyproject's dependencies change. Override with MEDFORGET_VENV.
set -euo pipefail
MF_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
deps_hash=$(python3 - "$MF_ROOT/pyproject.toml" <<'PY'
import hashlib, sys, tomllib
p = tomllib.load(open(sys.argv[1], "rb"))["project"]
spec = sorted(p["dependencies"]) + sorted(p.get("optional-dependencies", {}).get("dev", []))  # what is installed
print(hashlib.sha256("\n".join(spec).encode()).hexdigest()[:16])
PY
)
VENV=${MEDFORGET_VENV:-$HOME/.cache/medforget/venv-$deps_hash}
if [ ! -x "$VENV/bin/medforget-ready" ]; then
  echo "setting up $VENV (first run only: PyTorch is large, this takes a few minutes)" >&2
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip >&2
  # On x86_64 Linux these versions install from the local wheel cache of this workplace; elsewhere
  # pip fetches them. pyproject keeps ranges, so users of the package get current releases.
  if [ "$(uname -m)" = "x86_64" ]; then
    "$VENV/bin/pip" install -q "torch==2.14.1" "torchvision==0.29.1" >&2 || "$VENV/bin/pip" install -q torch torchvision >&2
  fi
  "$VENV/bin/pip" install -q -e "$MF_ROOT[dev]" >&2
  printf '#!/bin/sh\n' > "$VENV/bin/medforget-ready" && chmod +x "$VENV/bin/medforget-ready"
fi
# The clone may be new: point the editable install at this checkout (no dependency resolution).
"$VENV/bin/pip" install -q --no-deps --no-build-isolation -e "$MF_ROOT" >&2 2>/dev/null \
  || "$VENV/bin/pip" install -q --no-deps -e "$MF_ROOT" >&2
export PATH="$VENV/bin:$PATH"
if [ -z "${MEDFORGET_DATA_ROOT:-}" ] && [ -d "$MF_ROOT/../shared/medmnist" ]; then
  MEDFORGET_DATA_ROOT=$(cd "$MF_ROOT/../shared/medmnist" && pwd)
  export MEDFORGET_DATA_ROOT
fi
