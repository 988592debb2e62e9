#!/usr/bin/env bash
# Regenerates experiments/latency/ (about an hour on the shared 2-core CPU machine).
# 1 torch thread: the machine runs other CPU-bound jobs, and with 2 threads OpenMP barriers
# stall under that oversubscription (up to 30x slower, for every path alike).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
COMMON="--samples 800 --iterations 10 --reference --threads 1"
nice -n 5 $PY -m jepa_ac.bench latency --sizes tiny,mid --horizon 1 --backends torch,torch_compiled $COMMON --repeats 3 --out experiments/latency
nice -n 5 $PY -m jepa_ac.bench latency --sizes tiny --horizon 3 --backends torch,torch_compiled $COMMON --repeats 3 --out experiments/latency/tiny_h3
nice -n 5 $PY -m jepa_ac.bench latency --sizes mid --horizon 2 --backends torch $COMMON --repeats 2 --out experiments/latency/mid_h2
if [ -e /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 ]; then  # MLX's Linux CPU build needs OpenBLAS
  LD_PRELOAD=/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 nice -n 5 $PY -m jepa_ac.bench latency \
    --sizes tiny --horizon 1 --backends torch,mlx $COMMON --repeats 3 --out experiments/latency/mlx_tiny
fi
