#!/usr/bin/env bash
# The prepared GPU check on a fresh copy of the repository: install with the constraints, then measure.
#   bash perf/gpu_check.sh [OUT.json]        (≤ 8 minutes on a GPU machine; runs on CPU too, GPU rows skipped)
# On a GPU machine the CPU torch pin is dropped and the machine's own CUDA torch is used (the venv sees the
# system site-packages), so nothing needs downloading there when torch is preinstalled.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-gpu_check.json}"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv --system-site-packages .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
if command -v nvidia-smi >/dev/null 2>&1 && python -c "import torch, sys; sys.exit(not torch.cuda.is_available())" \
    2>/dev/null; then
  grep -v '^torch==' constraints.txt > .venv/gpu-constraints.txt
  pip install -q -c .venv/gpu-constraints.txt -e ".[all]" || pip install -q --no-deps -e .
else
  pip install -q -c constraints.txt -e ".[all]"
fi
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
timeout 480 python perf/gpu_check.py -o "$out"
