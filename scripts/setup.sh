#!/usr/bin/env bash
# Create .venv with the CPU build of torch first (so pip never resolves a CUDA
# wheel), then install spikede in editable mode.
#   bash scripts/setup.sh        runtime only (what `spikede train` needs)
#   bash scripts/setup.sh test   runtime + test and docs tools (what `pytest` needs)
#   bash scripts/setup.sh bench  runtime + SpikingJelly for benchmarks/neurons.py (without its
#                                own dependencies: they would pull torchvision and a CUDA torch)
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
    "") extras="" ;;
    test) extras="[test,docs]" ;;
    bench) extras="" ;;
    *) echo "usage: bash scripts/setup.sh [test|bench]" >&2; exit 2 ;;
esac
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".${extras}"
if [ "${1:-}" = bench ]; then
    .venv/bin/python -m pip install --quiet --no-deps spikingjelly
    .venv/bin/python -m pip install --quiet loguru
fi
