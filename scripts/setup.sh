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

# isomax itself, editable from this checkout, and the test extras (pytest, hypothesis)
if .venv/bin/python - <<'EOF' 2>/dev/null
import importlib.util, pathlib, sys
specs = [importlib.util.find_spec(name) for name in ("isomax", "pytest", "hypothesis")]  # found, not imported
here = pathlib.Path("src").resolve()
sys.exit(0 if all(specs) and pathlib.Path(specs[0].origin).resolve().is_relative_to(here) else 1)
EOF
then
  say "isomax (editable, $(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("isomax"))')) and its test extras present, skipping"
else
  say "installing isomax (editable, from $(pwd)) with its dependencies and test extras (pytest, hypothesis)"
  .venv/bin/python -m pip install -q -e ".[test]"
fi
