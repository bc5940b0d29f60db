#!/usr/bin/env bash
# The optimizer steps (Adam, AdamW, SGD with momentum) on tf-mnist-cnn's 3.27M
# parameters against this machine's bound: a pass with the same memory traffic
# and no arithmetic (tests/bench_kernels.cpp). Also Adam with 22% denormal
# moments, with denormals flushed to zero (as ranksweep runs) and without.
# Prints the date and CPU model first: figures belong to one machine.
#
# usage: jobs/bench-optimizer.sh [THREADS=2] [PARAMS=3274634]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
bash jobs/build.sh >/dev/null
echo "$(date -u +%Y-%m-%d), $(lscpu | sed -n 's/^Model name: *//p'), up to $threads thread(s)"
OMP_NUM_THREADS=$threads build/tests/bench_kernels --params "${2:-3274634}"
