#!/usr/bin/env bash
# Set up .venv/ and the data, then run the Fashion-MNIST benchmark (SoftMax, IsoMax, IsoMax+; 3 seeds)
# against MNIST, iSUN and noise. Results: runs/fashion-mnist/results.md (and results.json).
# Data: Fashion-MNIST from Debian's dataset-fashion-mnist package; MNIST test and iSUN from
# $ISOMAX_DATA (default ../shared/data). Extra arguments go to `isomax bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  if [ "$(id -u)" = 0 ]; then apt-get install -y -q dataset-fashion-mnist >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q dataset-fashion-mnist >/dev/null; }
  else sudo apt-get install -y -q dataset-fashion-mnist >/dev/null; fi
fi
export ISOMAX_DATA=${ISOMAX_DATA:-$(cd .. && pwd)/shared/data}
exec .venv/bin/isomax bench --preset fashion-mnist --seeds 3 --out runs/fashion-mnist "$@"
