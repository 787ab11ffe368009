#!/usr/bin/env bash
# GPU study (issue 22), one command on the device machine: CIFAR-10 + ResNet-18 (OpenOOD recipe), SoftMax /
# IsoMax / IsoMax+ / DisMax / DisMax+FPR, near/far/noise evaluation; about 8 minutes on one H200.
#
# Once, here (CPU): make the data pack, about 58 MiB, in the git-ignored .gpu-data/:
#   python scripts/gpu_study.py pack --data /work/shared/data
# Then with the device tool: run `bash scripts/gpu_study.sh` with carry [".gpu-data"], timeout_s 600;
# results.md, results.json, study.json and log.txt come back under $OUT.
# On a CPU, a seconds-long check of the whole path: TINY=1 bash scripts/gpu_study.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu-study}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 ISOMAX_VERIFY=0
PY=${PYTHON:-python3}
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
set -o pipefail
"$PY" scripts/gpu_study.py run --out "$OUT" "$@" 2>&1 | tee "$OUT/log.txt"
