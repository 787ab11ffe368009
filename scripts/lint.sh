#!/usr/bin/env bash
# Lint: ruff check, ruff format --check and mypy, with the tools in .venv/ (scripts/setup.sh installs
# them with the test extra; VENV=/path/to/venv uses another). mypy checks the modules listed in
# pyproject.toml ([tool.mypy] files). Runs every check, then exits non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
PATHS=(src tests benchmarks scripts examples conftest.py)

for tool in ruff mypy; do
  if [ ! -x "$BIN/$tool" ]; then
    echo "lint: $BIN/$tool not found; run bash scripts/setup.sh (or set VENV)" >&2
    exit 2
  fi
done

failed=()
check() {
  echo "+ $*"
  "$@" || failed+=("$(basename "$1") $2")
}
check "$BIN/ruff" check --output-format concise "${PATHS[@]}"
check "$BIN/ruff" format --check "${PATHS[@]}"
check "$BIN/mypy"

if [ ${#failed[@]} -gt 0 ]; then
  echo "lint: FAILED: $(IFS=,; echo "${failed[*]}")"
  exit 1
fi
echo "lint: all checks passed"
