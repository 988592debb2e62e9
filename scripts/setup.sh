#!/usr/bin/env bash
# Create .venv with everything jepa_ac needs (CPU torch, MuJoCo, MLX on Linux CPU) and install it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# The CPU wheel first: a looser torch spec would pull a multi-GB CUDA build.
.venv/bin/python -m pip install -q "torch==2.13.0" || .venv/bin/python -m pip install -q "torch>=2.4"
.venv/bin/python -m pip install -q -e ".[all,dev]"
# MLX on Linux runs its CPU matmuls through BLAS; OpenBLAS makes it usable (optional).
if [ "$(uname)" = Linux ] && [ ! -e /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  (apt-get install -y -q libopenblas0-pthread >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q libopenblas0-pthread >/dev/null 2>&1)) || echo "note: libopenblas0-pthread not installed; MLX on CPU will be slow"
fi
echo "jepa_ac installed in .venv"
