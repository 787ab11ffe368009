#!/usr/bin/env bash
# Create .venv/ in the repo root and install isomax with its test dependencies.
# Idempotent: each step says what it installs, or that it is already there and skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
say() { echo "setup: $*"; }

if [ -x .venv/bin/python ]; then
  say ".venv/ exists ($(.venv/bin/python --version 2>&1)), skipping"
else
  say "creating .venv/ with $("$PY" --version 2>&1) and upgrading pip"
  "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi

# torch/torchvision pinned to the releases this project is tested with (they come from the local
# wheel cache on our machines; elsewhere pip downloads them).
# (versions read from the installed metadata: importing torch takes seconds)
if versions=$(.venv/bin/python -c "from importlib.metadata import version as v; print(v('torch'), v('torchvision'))" 2>/dev/null); then
  say "torch and torchvision present ($versions), skipping"
else
  say "installing torch==2.14.1 torchvision==0.29.1"
  .venv/bin/python -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
fi

# isomax itself, editable from this checkout, with its dependencies and test extras: reinstalled
# whenever pyproject.toml changed since the last install (its hash is kept in .venv/), so a new
# dependency is never missed; skipped otherwise (pip's resolver takes seconds even with nothing to do)
stamp=.venv/.isomax-pyproject.sha256
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && .venv/bin/python - <<'EOF' 2>/dev/null
import importlib.util, pathlib, sys
spec = importlib.util.find_spec("isomax")  # found, not imported
sys.exit(0 if spec and pathlib.Path(spec.origin).resolve().is_relative_to(pathlib.Path("src").resolve()) else 1)
EOF
then
  say "isomax (editable) and its dependencies present for this pyproject.toml, skipping"
else
  say "installing isomax (editable, from $(pwd)) with its dependencies and test extras (pyproject.toml: [test])"
  .venv/bin/python -m pip install -q -e ".[test]"
  echo "$want" > "$stamp"
fi
