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
# lower precision (issue 30): fp32 and bf16 fast paths in the same interleaved run, the reference in fp32;
# the shipped default model at its reach (128 x 4) and push-like (64 x 3, H=3) settings, tiny and mid at 800 x 10
PREC="--backends torch --dtype float32,bfloat16 --reference --threads 1"
nice -n 5 $PY -m jepa_ac.bench latency --sizes default --samples 128 --iterations 4 --topk 12 $PREC --repeats 5 --out experiments/latency/bf16_default_128x4
nice -n 5 $PY -m jepa_ac.bench latency --sizes default --samples 64 --iterations 3 --topk 12 --horizon 3 $PREC --repeats 5 --out experiments/latency/bf16_default_64x3_h3
nice -n 5 $PY -m jepa_ac.bench latency --sizes tiny,mid --samples 800 --iterations 10 $PREC --repeats 3 --out experiments/latency/bf16
# the same step on this CPU capped at AVX2, as an AVX2-only host runs it (auto picks float32 there)
ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 nice -n 5 $PY -m jepa_ac.bench latency \
  --sizes default --samples 128 --iterations 4 --topk 12 --backends torch --dtype auto,bfloat16 --threads 1 --repeats 3 \
  --out experiments/latency/bf16_default_avx2
# GEMMs per dtype and bf16's effect on the energies' order; threads with and without a second busy process
OMP_NUM_THREADS=1 nice -n 5 $PY experiments/latency/probe_precision.py --out experiments/latency/precision_probe.json
ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 OMP_NUM_THREADS=1 nice -n 5 \
  $PY experiments/latency/probe_precision.py --gemm-only --out experiments/latency/precision_probe_avx2.json
env -u OMP_NUM_THREADS $PY experiments/latency/probe_threads.py --rounds 3 --out experiments/latency/threads_probe.json
# the rollout's worker threads (issue 30): the same cells plus `2 workers`, in the dtype planning picks here;
# the 800 x 10 bench on 2 threads (fast paths on 2 workers, the reference on 2 OpenMP threads)
env -u OMP_NUM_THREADS $PY experiments/latency/probe_threads.py --rounds 2 --dtype auto --workers \
  --out experiments/latency/threads_probe_workers.json
$PY -m jepa_ac.bench latency --sizes tiny,mid --samples 800 --iterations 10 --backends torch --dtype float32,bfloat16 \
  --reference --threads 2 --repeats 3 --out experiments/latency/bf16_2threads
# the compiled graphs frozen (session 22; freezing was then set in TorchBackend.set_compile, since removed:
# probe_freezing.py is the A/B): tiny and mid, bf16, 2 threads
$PY -m jepa_ac.bench latency --sizes tiny,mid --samples 800 --iterations 10 --backends torch,torch_compiled \
  --dtype bfloat16 --reference --threads 2 --repeats 3 --out experiments/latency/bf16_frozen
# on a host with AMX (session 24): the same-run 800 x 10 bench, fp32 and bf16, eager and compiled
if grep -q amx_bf16 /proc/cpuinfo; then
  $PY -m jepa_ac.bench latency --sizes tiny,mid --samples 800 --iterations 10 --backends torch,torch_compiled \
    --dtype float32,bfloat16 --reference --threads 2 --repeats 3 --out experiments/latency/amx
fi
# where the default's step spends its time (one process, default threads), per task and dtype
for task in reach push; do for dtype in auto float32; do
  env -u OMP_NUM_THREADS $PY experiments/latency/probe_step.py --env $task --dtype $dtype \
    --out experiments/latency/step_${task}_${dtype}.json
done; done
# closed loop with the default threads, time to success, bf16 training: their own scripts / READMEs
#   bf16_evaluate/README.md, time_to_success/run.sh, bf16_training/run.sh
