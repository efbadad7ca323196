#!/usr/bin/env bash
# GPU-ready check (issue 19): run from the repository root on a machine with torch (CUDA), numpy and
# safetensors only. Under 5 minutes on one H200. Extra flags pass through, e.g. --compile, --device cpu --tiny.
# Exits non-zero if CUDA misbehaves (non-finite loss, CPU/GPU mismatch, the end-to-end model not learning).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python3}" -m bench.device_check "$@"
