#!/usr/bin/env bash
# Set up .venv/ and the data, then run the fast Fashion-MNIST benchmark (SoftMax, IsoMax, IsoMax+;
# preset fashion-mnist-minute, 1 seed) against MNIST, iSUN and noise: minutes on 2 CPU cores (the
# README's quick start says how long it took). Results: runs/fashion-mnist-minute/results.md (and
# results.json). The full 3-seed benchmark of docs/results/fashion-mnist/ is the command written there.
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
exec .venv/bin/isomax bench --preset fashion-mnist-minute --seeds 1 --out runs/fashion-mnist-minute "$@"
