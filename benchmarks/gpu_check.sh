#!/usr/bin/env bash
# GPU readiness check (benchmarks/gpu_check.py): pretrain + SFT of a ~100M OLMo 2 in bf16 on one
# CUDA GPU with no network, tokens/s, MFU, bf16 run-to-run digests, eval batch invariance.
#   bash benchmarks/gpu_check.sh                # on the GPU machine -> results/gpu-check-cuda.json
#   bash benchmarks/gpu_check.sh --device cpu   # CI smoke test (micro model, seconds)
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
[ -x "$python" ] || python=python3
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec "$python" benchmarks/gpu_check.py "$@"
